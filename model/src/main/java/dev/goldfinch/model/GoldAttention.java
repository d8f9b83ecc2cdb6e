package dev.goldfinch.model;

import static dev.goldfinch.model.Ops.lerp;
import static dev.goldfinch.model.Ops.matmul;

import dev.goldfinch.model.ModelWeights.GoldWeights;
import dev.goldfinch.model.state.KvRows;
import dev.goldfinch.model.state.SequenceState;
import dev.goldfinch.model.tensor.Kernels;
import dev.goldfinch.model.tensor.KvKernels;
import dev.goldfinch.model.tensor.Parallel;

/**
 * GOLD attention (spec §3), the upper layers of GoldFinch: a query with its own token shift, softmax attention over
 * keys and values that come from the compressed key cache and the token embeddings, not from projections of the
 * layer's input. Keys and values depend only on positions {@code s} and {@code s-1}, so they are materialised once
 * per position ({@link #extendKeysAndValues}). Arrays are {@code [T, width]} over the pass's rows; {@code C = A}.
 */
final class GoldAttention {
    private GoldAttention() {}

    /** Spec §3 "query" and "multi-head softmax attention": {@code out = W_o LN_x(softmax(q k^T / sqrt(N)) v)}. */
    static float[] apply(ModelWeights w, GoldWeights a, Batch b, int l, float[] x, ForwardScratch scratch) {
        ModelConfig cfg = w.config();
        int rows = b.rows();
        int c = cfg.nEmbd();
        int hs = cfg.headSize();
        int g = l - cfg.finchLayers();
        float[] dx = b.tokenShift(x, c, l, true, scratch); // [T, C]  dx = shift(x; sx) - x ; sx <- x_last
        float[] xq = lerp(x, dx, a.maaX(), null, c, scratch); // [T, C]  x + dx*maa_x
        float[] mq = Ops.tanhLora(a.qW1(), a.qW2(), xq, rows, scratch); // [T, C]  mq = tanh(. @ q_w1) @ q_w2
        float[] q = matmul(
                a.query(), lerp(x, dx, a.maaQ(), mq, c, scratch), rows, scratch); // [T, A]  W_q (x + dx*(maa_q + mq))
        Kernels.layerNorm(q, rows, a.lnQWeight(), a.lnQBias(), ModelConfig.LAYER_NORM_EPS, q); // [T, A]  q = LN_q(.)
        b.extendKeyBlocks(g, hs);
        float[] y = attention(b, g, q, cfg, scratch); // [T, A]  softmax(q k^T / sqrt(N) + mask) v
        for (int s = 0; s < b.segments(); s++) {
            if (b.segments.get(s).gold() == GoldFinchModel.GoldMode.STREAMED) {
                streamedAttention(w, b, s, g, q, y, scratch); // the same, keys and values never held
            }
        }
        Kernels.layerNorm(
                y, rows, a.lnXWeight(), a.lnXBias(), ModelConfig.LAYER_NORM_EPS, y); // [T, A]  LN_x(concat_heads(y))
        return matmul(a.output(), y, rows, scratch); // [T, C]  out = W_o .
    }

    /**
     * Per head, per row: scores against every visible key (bottom-right-aligned causal mask: row r of a segment sees
     * positions {@code 0 .. position(r)}), softmax, weighted sum of the values.
     */
    private static float[] attention(Batch b, int g, float[] q, ModelConfig cfg, ForwardScratch scratch) {
        int c = cfg.nEmbd();
        int heads = cfg.nHead();
        int hs = cfg.headSize();
        float[] y = scratch.take(b.rows() * c);
        float scale = (float) (1.0 / Math.sqrt(hs));
        int longest = 0;
        for (int s = 0; s < b.segments(); s++) {
            longest = Math.max(longest, b.position(s, b.start[s + 1] - 1) + 1);
        }
        int scoreLength = longest;
        // Heads are independent: shared out across the engine's threads (reading K and V is the cost at long contexts).
        float[] scores = scratch.takeAtLeast(heads * scoreLength); // head h's at h * scoreLength, written before read
        Parallel.forEach(heads, h -> {
            int so = h * scoreLength;
            for (int s = 0; s < b.segments(); s++) {
                if (b.segments.get(s).gold() == GoldFinchModel.GoldMode.STREAMED) {
                    continue;
                }
                KvRows keys = b.states[s].goldKeys(g);
                KvRows keyBlocks = b.states[s].goldKeyBlocks(g).head(h);
                KvRows values = b.states[s].goldValues(g).head(h);
                for (int r = b.start[s]; r < b.start[s + 1]; r++) {
                    int visible = b.position(s, r) + 1; // bottom-right aligned causal mask
                    int qo = r * c + h * hs;
                    float max = scores(q, qo, keys, keyBlocks, h, heads, hs, visible, scale, scores, so);
                    // Scalar exp here: the vector kernel inside this lambda got its vectors boxed at L12-D768 (40 KB
                    // per token allocated); one exp per score is well under 1 % of a step even at context 4,096.
                    float sum = 0;
                    for (int p = 0; p < visible; p++) {
                        scores[so + p] = Kernels.exp(scores[so + p] - max);
                        sum += scores[so + p];
                    }
                    float inv = 1f / sum;
                    for (int p = 0; p < visible; p++) {
                        scores[so + p] *= inv;
                    }
                    switch (values.format()) {
                        case F32 -> Kernels.weightedRowSum(scores, so, visible, values.floats(), 0, hs, y, qo, hs);
                        case BF16 ->
                            KvKernels.weightedRowSumBf16(scores, so, visible, values.halves(), 0, hs, y, qo, hs);
                        case INT8 ->
                            KvKernels.weightedRowSumInt8(
                                    scores, so, visible, values.bytes(), 0, hs, values.scales(), 0, y, qo, hs);
                    }
                }
            }
        });
        return y;
    }

    /** Positions whose keys and values a streamed attention computes at once: a {@code [block, A]} array each. */
    static final int STREAM_BLOCK = 256;

    /**
     * {@link #attention} of segment {@code s}'s rows over keys and values computed {@link #STREAM_BLOCK} positions
     * at a time from the state's compressed keys and ids (spec §3), with an online softmax: per row and head a running
     * maximum and sum rescale what the earlier blocks added to {@code y}. Memory does not grow with the context.
     */
    private static void streamedAttention(
            ModelWeights w, Batch b, int s, int g, float[] q, float[] y, ForwardScratch scratch) {
        ModelConfig cfg = w.config();
        int c = cfg.nEmbd();
        int heads = cfg.nHead();
        int hs = cfg.headSize();
        float scale = (float) (1.0 / Math.sqrt(hs));
        int first = b.start[s];
        int rows = b.start[s + 1] - first;
        int total = b.position(s, b.start[s + 1] - 1) + 1; // what the last row sees: the whole sequence
        float[] max = scratch.take(rows * heads);
        java.util.Arrays.fill(max, Float.NEGATIVE_INFINITY);
        float[] sum = scratch.take(rows * heads);
        float[] scores = scratch.take(heads * STREAM_BLOCK); // head h's at h * STREAM_BLOCK
        BlockKv kv = new BlockKv();
        int mark = scratch.mark();
        for (int from = 0; from < total; from += STREAM_BLOCK) {
            int to = Math.min(total, from + STREAM_BLOCK);
            scratch.rewind(mark); // one block's arrays, reused by the next
            Batch.CacheRows block = Batch.CacheRows.range(b.states[s], from, to);
            try {
                keysAndValues(w, block, g, g + 1, scratch, kv);
            } finally {
                block.release();
            }
            int blockFrom = from;
            Parallel.forEach(heads, h -> {
                int so = h * STREAM_BLOCK;
                for (int i = 0; i < rows; i++) {
                    int r = first + i;
                    int count = Math.min(to, b.position(s, r) + 1) - blockFrom; // causal mask
                    if (count <= 0) {
                        continue;
                    }
                    int qo = r * c + h * hs;
                    float blockMax = Float.NEGATIVE_INFINITY;
                    for (int p = 0; p < count; p++) {
                        scores[so + p] = Kernels.dot(q, qo, kv.k, p * c + h * hs, hs) * scale;
                        blockMax = Math.max(blockMax, scores[so + p]);
                    }
                    int at = i * heads + h;
                    float newMax = Math.max(max[at], blockMax);
                    float rescale = Kernels.exp(max[at] - newMax); // 0 before the first block
                    float blockSum = 0;
                    for (int p = 0; p < count; p++) {
                        scores[so + p] = Kernels.exp(scores[so + p] - newMax);
                        blockSum += scores[so + p];
                    }
                    for (int d = 0; d < hs; d++) {
                        y[qo + d] *= rescale;
                    }
                    sum[at] = sum[at] * rescale + blockSum;
                    max[at] = newMax;
                    Kernels.weightedRowSum(scores, so, count, kv.v, h * hs, c, y, qo, hs);
                }
            });
        }
        scratch.rewind(mark);
        for (int i = 0; i < rows; i++) {
            for (int h = 0; h < heads; h++) {
                float inv = 1f / sum[i * heads + h];
                int qo = (first + i) * c + h * hs;
                for (int d = 0; d < hs; d++) {
                    y[qo + d] *= inv;
                }
            }
        }
    }

    /** Where {@link #keysAndValues} leaves one GOLD layer's keys and values: {@code [rows, A]} each. */
    interface KvSink {
        void accept(int g, float[] keys, float[] values);
    }

    /** The block of a streamed attention ({@link #keysAndValues} of one layer). */
    private static final class BlockKv implements KvSink {
        float[] k;
        float[] v;

        @Override
        public void accept(int g, float[] keys, float[] values) {
            k = keys;
            v = values;
        }
    }

    /**
     * {@code scores[so + p] = scale * q . k_p} of head {@code h} for the {@code visible} positions; returns the largest.
     * Whole blocks of keys a vector of scores at a time, the rest one by one. The split depends on the row's position
     * only, so a row gets the same bits however the prompt was chunked.
     */
    private static float scores(
            float[] q,
            int qo,
            KvRows keys,
            KvRows keyBlocks,
            int h,
            int heads,
            int hs,
            int visible,
            float scale,
            float[] scores,
            int so) {
        int kb = SequenceState.KEY_BLOCK;
        int c = heads * hs;
        int blocked = visible / kb * kb;
        float max = Float.NEGATIVE_INFINITY;
        switch (keys.format()) {
            case F32 -> {
                float[] kt = keyBlocks.floats();
                float[] k = keys.floats();
                for (int p = 0; p < blocked; p += kb) {
                    max = Math.max(max, Kernels.blockScores(q, qo, kt, p * hs, hs, scale, scores, so + p));
                }
                for (int p = blocked; p < visible; p++) {
                    scores[so + p] = Kernels.dot(q, qo, k, p * c + h * hs, hs) * scale;
                    max = Math.max(max, scores[so + p]);
                }
            }
            case BF16 -> {
                short[] kt = keyBlocks.halves();
                short[] k = keys.halves();
                for (int p = 0; p < blocked; p += kb) {
                    max = Math.max(max, KvKernels.blockScoresBf16(q, qo, kt, p * hs, hs, scale, scores, so + p));
                }
                for (int p = blocked; p < visible; p++) {
                    scores[so + p] = KvKernels.dotBf16(q, qo, k, p * c + h * hs, hs) * scale;
                    max = Math.max(max, scores[so + p]);
                }
            }
            case INT8 -> {
                byte[] kt = keyBlocks.bytes();
                float[] blockScales = keyBlocks.scales();
                byte[] k = keys.bytes();
                float[] keyScales = keys.scales();
                for (int p = 0; p < blocked; p += kb) {
                    max = Math.max(
                            max,
                            KvKernels.blockScoresInt8(q, qo, kt, p * hs, blockScales, p, hs, scale, scores, so + p));
                }
                for (int p = blocked; p < visible; p++) {
                    // the same operations as the blocks: (q . bytes) * key scale * scale
                    scores[so + p] = KvKernels.dotInt8(q, qo, k, p * c + h * hs, hs) * keyScales[p * heads + h] * scale;
                    max = Math.max(max, scores[so + p]);
                }
            }
        }
        return max;
    }

    /**
     * Spec §3 "keys/values for every cached position": extends every GOLD layer's keys and values to each state's
     * length. After a restore they are rebuilt from the serialized compressed keys. All states' new positions go
     * through each projection together: a batched decode step is one product of B rows, not B products of one.
     */
    static void extendKeysAndValues(ModelWeights w, SequenceState[] states, ForwardScratch scratch) {
        int mark = scratch.mark();
        Batch.CacheRows rows;
        // A bounded number of positions at a time: a restored long context is rebuilt without activations of its size.
        // (The first round takes its arrays as a decode step always did, so a steady step still reuses them.)
        for (boolean first = true; (rows = Batch.CacheRows.missing(states, EXTEND_BLOCK)) != null; first = false) {
            if (!first) {
                scratch.rewind(mark);
            }
            try {
                keysAndValues(w, rows, 0, w.config().goldLayers(), scratch, rows);
            } finally {
                rows.release();
            }
        }
    }

    /** Positions whose keys and values {@link #extendKeysAndValues} computes at once (more than a decode batch). */
    static final int EXTEND_BLOCK = 4096;

    /**
     * Keys and values of GOLD layers {@code fromLayer .. toLayer-1} at the new positions of {@code rows}, each layer's
     * handed to {@code sink} ({@code [fresh, A]} scratch arrays, valid until the scratch is rewound).
     */
    private static void keysAndValues(
            ModelWeights w, Batch.CacheRows rows, int fromLayer, int toLayer, ForwardScratch scratch, KvSink sink) {
        ModelConfig cfg = w.config();
        int c = cfg.nEmbd();
        int cd = cfg.compressedDim();
        int n = rows.gathered();
        int m = rows.fresh();
        float[] e = scratch.take(n * c);
        rows.embed(w.emb, e, c);
        Kernels.layerNorm(e, n, w.ln0Weight, w.ln0Bias, ModelConfig.LAYER_NORM_EPS, e); // [S, C]  e_s = LN0(Emb[tok_s])
        float[] cat = scratch.take(n * (c + cd));
        rows.tokenCat(e, c, cd, cat); // [S, C+c] [e_s ; c_s]
        float[] kh = KeyCompression.decompress(w, cat, n, c, scratch); // [S, A]  kh_s
        float[] xo = scratch.take(n * c);
        Kernels.rmsNorm(e, n, c, ModelConfig.RMS_NORM_EPS, xo); // [S, C]  xo_s = rmsnorm(e_s)
        float[] khCur = scratch.take(m * c);
        float[] dkh = scratch.take(m * c);
        rows.freshAndShift(kh, c, khCur, dkh); // [S', A] kh_s, kh_{s-1} - kh_s (kh_{-1} = 0)
        float[] xoCur = scratch.take(m * c);
        float[] dxo = scratch.take(m * c);
        rows.freshAndShift(xo, c, xoCur, dxo); // [S', C] xo_s, xo_{s-1} - xo_s (xo_{-1} = 0)
        for (int g = fromLayer; g < toLayer; g++) {
            GoldWeights a = w.layers[cfg.finchLayers() + g].gold();
            int rank = a.kvW2()[0].cols();
            float[] xxx = lerp(xoCur, dxo, a.maaVCache(), null, c, scratch); // [S', C] xxx_s = xo_s + dxo*maa_v_cache
            float[] mix = matmul(a.kvW1(), xxx, m, scratch); // [S', 2R] xxx_s @ kv_w1
            Kernels.tanh(mix, mix.length); // [S', 2R] tanh(.)
            float[] mk =
                    matmul(a.kvW2()[0], Ops.columns(mix, m, 2 * rank, 0, rank, scratch), m, scratch); // [S', C] mk_s
            float[] mv =
                    matmul(a.kvW2()[1], Ops.columns(mix, m, 2 * rank, rank, rank, scratch), m, scratch); // [S', C] mv_s
            float[] k = lerp(khCur, dkh, a.maaK(), mk, c, scratch); // [S', A] k_s = kh_s + dkh*(maa_k + mk_s)
            float[] v = lerp(xoCur, dxo, a.maaV(), mv, c, scratch); // [S', C] v_s = xo_s + dxo*(maa_v + mv_s)
            Ops.addInto(
                    k, Ops.tanhLora(a.keyW1(), a.keyW2(), k, m, scratch)); // [S', A] k_s += tanh(k_s @ key_w1) @ key_w2
            Ops.addInto(
                    v,
                    Ops.tanhLora(
                            a.valueW1(), a.valueW2(), v, m, scratch)); // [S', A] v_s += tanh(v_s @ value_w1) @ value_w2
            Kernels.layerNorm(
                    k, m, a.lnKWeight(), a.lnKBias(), ModelConfig.LAYER_NORM_EPS, k); // [S', A] k_s = LN_k(k_s)
            Kernels.layerNorm(
                    v, m, a.lnVWeight(), a.lnVBias(), ModelConfig.LAYER_NORM_EPS, v); // [S', A] v_s = LN_v(v_s)
            sink.accept(g, k, v);
        }
    }
}
