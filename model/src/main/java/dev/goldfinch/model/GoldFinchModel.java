package dev.goldfinch.model;

import dev.goldfinch.model.tensor.Kernels;
import dev.goldfinch.model.tensor.Matrix;
import dev.goldfinch.model.tensor.Parallel;
import dev.goldfinch.model.tensor.Wkv;

import static dev.goldfinch.model.tensor.Kernels.layerNorm;
import static dev.goldfinch.model.tensor.Kernels.layerNormSlice;
import static dev.goldfinch.model.tensor.Kernels.rmsNorm;
import static dev.goldfinch.model.tensor.Kernels.tanh;

import dev.goldfinch.model.ModelWeights.ChannelMix;
import dev.goldfinch.model.ModelWeights.FinchAttention;
import dev.goldfinch.model.ModelWeights.GoldAttention;
import dev.goldfinch.model.ModelWeights.Layer;
import dev.goldfinch.model.state.FloatRows;
import dev.goldfinch.model.state.GoldKvDonors;
import dev.goldfinch.model.state.HeadRows;
import dev.goldfinch.model.state.SequenceState;
import java.util.List;

/**
 * The GoldFinch / Finch forward pass (spec §0–§3). One call advances any number of sequences by any
 * number of tokens each: all rows go through every projection together (matrix × matrix), while the
 * token shifts, the WKV recurrence and GOLD attention run per sequence. A prefill is one segment of
 * many tokens; a batched decode step is many segments of one token.
 *
 * <p>The Finch stack runs over every row. The GOLD stack runs only over each segment's trailing
 * {@link ModelConfig#goldWindow() window} and over the rows whose logits are asked for: the exact
 * GOLD state after the last row depends on no earlier GOLD work (spec §5.1).
 */
public final class GoldFinchModel implements AutoCloseable {
    private final ModelWeights w;
    private final ModelConfig cfg;
    private final GoldKvDonors goldKvDonors = new GoldKvDonors();

    GoldFinchModel(ModelWeights weights) {
        this.w = weights;
        this.cfg = weights.config();
    }

    public ModelConfig config() {
        return cfg;
    }

    public ModelWeights weights() {
        return w;
    }

    public long fingerprint() {
        return w.fingerprint();
    }

    public SequenceState newState() {
        return new SequenceState(cfg, w.fingerprint());
    }

    /** GOLD keys and values restored states of this model may share instead of rebuilding. */
    public GoldKvDonors goldKvDonors() {
        return goldKvDonors;
    }

    /**
     * Tokens to feed one sequence. Logits are returned for rows {@code logitsFrom .. tokens.length-1}:
     * {@code tokens.length - 1} for the next-token logits only, {@code tokens.length} for none, 0 for all.
     */
    public record Segment(SequenceState state, int[] tokens, int logitsFrom) {
        public Segment {
            if (tokens.length == 0) {
                throw new GoldFinchException.InvalidInput("no tokens to process (empty prompt)");
            }
            if (logitsFrom < 0 || logitsFrom > tokens.length) {
                throw new IllegalArgumentException("logitsFrom " + logitsFrom + " outside 0.." + tokens.length);
            }
        }

        public static Segment lastLogits(SequenceState state, int[] tokens) {
            return new Segment(state, tokens, tokens.length - 1);
        }
    }

    /** Feeds one sequence and returns the logits of its last token ({@code [V]}). */
    public float[] prefill(SequenceState state, int[] tokens) {
        return forward(List.of(Segment.lastLogits(state, tokens)))[0];
    }

    /** Feeds one token and returns the next-token logits. */
    public float[] step(SequenceState state, int token) {
        return prefill(state, new int[]{token});
    }

    /** Feeds every segment; returns, per segment, its requested logits as {@code [rows, V]} row-major (new arrays). */
    public float[][] forward(List<Segment> segments) {
        float[][] out = new float[segments.size()][];
        for (int s = 0; s < out.length; s++) {
            Segment seg = segments.get(s);
            out[s] = new float[(seg.tokens().length - seg.logitsFrom()) * cfg.vocabSize()];
        }
        forward(segments, out);
        return out;
    }

    /**
     * As {@link #forward(List)}, writing segment {@code s}'s logits into {@code logits[s]}, which holds exactly its
     * requested rows times the vocabulary. Apart from the growth of the states, a pass of a shape this thread ran
     * before allocates nothing: its activations live in the thread's {@link ForwardScratch}.
     */
    public void forward(List<Segment> segments, float[][] logits) {
        forward(segments, logits, null);
    }

    /**
     * Sees the residual stream of a pass as it goes, for per-block golden tests and debugging. The arrays are the
     * pass's own ({@code [rows, C]} row-major, segments one after another): read them, do not keep or change them.
     */
    public interface BlockTap {
        /** {@code e = LN0(Emb[tok])} of every row of the pass (spec §0). */
        void embedded(float[] e, int rows);

        /**
         * The residual stream after block {@code layer} (both residual adds). A GOLD block's rows are only those the
         * GOLD stack ran over: each segment's trailing window and its rows from the first requested logit on.
         */
        void afterBlock(int layer, float[] x, int rows);
    }

    /** As {@link #forward(List, float[][])}, showing {@code tap} (if not null) the hidden state after each block. */
    public void forward(List<Segment> segments, float[][] logits, BlockTap tap) {
        int n = segments.size();
        if (logits.length != n) {
            throw new IllegalArgumentException(n + " segments but " + logits.length + " logits arrays");
        }
        for (int s = 0; s < n; s++) {
            Segment seg = segments.get(s);
            int want = (seg.tokens().length - seg.logitsFrom()) * cfg.vocabSize();
            if (logits[s] == null || logits[s].length != want) {
                throw new IllegalArgumentException("segment " + s + " needs a logits array of " + want + " floats");
            }
        }
        ForwardScratch scratch = ForwardScratch.begin();
        int[] start = new int[n + 1];
        SequenceState[] states = new SequenceState[n];
        for (int s = 0; s < n; s++) {
            Segment seg = segments.get(s);
            states[s] = seg.state();
            if (seg.state().modelFingerprint() != w.fingerprint() || seg.state().config() != cfg
                    && !seg.state().config().equals(cfg)) {
                throw new GoldFinchException.StateMismatch("sequence state belongs to another model");
            }
            for (int t : seg.tokens()) {
                if (t < 0 || t >= cfg.vocabSize()) {
                    throw new GoldFinchException.InvalidInput("token id " + t + " is outside the vocabulary [0, " + cfg.vocabSize() + ")");
                }
            }
            for (int q = 0; q < s; q++) {
                if (states[q] == states[s]) {
                    throw new IllegalArgumentException("one state appears in two segments of a batch");
                }
            }
            start[s + 1] = start[s] + seg.tokens().length;
        }
        int rows = start[n];
        int c = cfg.nEmbd();
        int[] prior = new int[n];
        for (int s = 0; s < n; s++) {
            prior[s] = states[s].length();
        }

        float[] x = scratch.take(rows * c);
        for (int s = 0; s < n; s++) {
            int[] toks = segments.get(s).tokens();
            for (int t = 0; t < toks.length; t++) {
                w.emb.copyRow(toks[t], x, (start[s] + t) * c);
            }
        }
        layerNorm(x, rows, w.ln0Weight, w.ln0Bias, ModelConfig.LAYER_NORM_EPS, x);
        if (tap != null) {
            tap.embedded(x, rows);
        }

        Batch all = new Batch(states, start, prior, new int[n]);
        for (int l = 0; l < cfg.finchLayers(); l++) {
            block(l, all, x, scratch);
            if (tap != null) {
                tap.afterBlock(l, x, rows);
            }
        }

        Batch top = all;
        float[] h = x;
        if (cfg.architecture().hasGold()) {
            float[] compressed = matmul(w.kvCacheA, x, rows, scratch);
            int cd = cfg.compressedDim();
            for (int s = 0; s < n; s++) {
                states[s].compressedKeys().append(compressed, start[s] * cd, start[s + 1] - start[s]);
                states[s].appendTokens(segments.get(s).tokens());
            }
            materializeGoldKv(states, scratch);
            // GOLD rows: the trailing window and everything from the first requested logit on.
            int[] gStart = new int[n + 1];
            int[] skipped = new int[n];
            for (int s = 0; s < n; s++) {
                int len = start[s + 1] - start[s];
                skipped[s] = Math.max(0, Math.min(segments.get(s).logitsFrom(), len - cfg.goldWindow()));
                gStart[s + 1] = gStart[s] + len - skipped[s];
            }
            h = scratch.take(gStart[n] * c);
            for (int s = 0; s < n; s++) {
                System.arraycopy(x, (start[s] + skipped[s]) * c, h, gStart[s] * c, (gStart[s + 1] - gStart[s]) * c);
            }
            top = new Batch(states, gStart, prior, skipped);
            for (int l = cfg.finchLayers(); l < cfg.nLayer(); l++) {
                block(l, top, h, scratch);
                if (tap != null) {
                    tap.afterBlock(l, h, gStart[n]);
                }
            }
        } else {
            for (int s = 0; s < n; s++) {
                states[s].appendTokens(segments.get(s).tokens());
            }
        }
        logits(segments, top, h, scratch, logits);
    }

    /** The rows of one pass: per segment its rows {@code [start[s], start[s+1])}, which begin {@code skipped[s]} tokens into the segment. */
    private record Batch(SequenceState[] states, int[] start, int[] prior, int[] skipped) {
        int segments() {
            return states.length;
        }

        int rows() {
            return start[states.length];
        }

        /** Position in its sequence of row {@code r} of segment {@code s}. */
        int position(int s, int r) {
            return prior[s] + skipped[s] + (r - start[s]);
        }
    }

    private void block(int l, Batch b, float[] x, ForwardScratch scratch) {
        Layer layer = w.layers[l];
        int rows = b.rows();
        int c = cfg.nEmbd();
        float[] xn = scratch.take(rows * c);
        layerNorm(x, rows, layer.ln1Weight(), layer.ln1Bias(), ModelConfig.LAYER_NORM_EPS, xn);
        float[] att = layer.gold() != null
                ? goldTimeMix(l, layer.gold(), b, xn, scratch)
                : finchTimeMix(l, layer.finch(), b, xn, scratch);
        addInto(x, att);
        layerNorm(x, rows, layer.ln2Weight(), layer.ln2Bias(), ModelConfig.LAYER_NORM_EPS, xn);
        addInto(x, channelMix(l, layer.ffn(), b, xn, scratch));
    }

    private static float[] matmul(Matrix m, float[] x, int rows, ForwardScratch scratch) {
        float[] y = scratch.take(rows * m.rows());
        Kernels.matmul(m, x, rows, y);
        return y;
    }

    private static float[] columns(float[] x, int n, int width, int c0, int cols, ForwardScratch scratch) {
        float[] out = scratch.take(n * cols);
        Kernels.columns(x, n, width, c0, cols, out);
        return out;
    }

    private static void addInto(float[] acc, float[] v) {
        for (int i = 0; i < acc.length; i++) {
            acc[i] += v[i];
        }
    }

    /** {@code prev - x} per row (the token shift), where the first row of a segment takes the carried shift; then carries the last row. */
    private float[] tokenShift(Batch b, float[] xn, boolean attention, int l, ForwardScratch scratch) {
        int c = cfg.nEmbd();
        float[] dx = scratch.take(xn.length);
        for (int s = 0; s < b.segments(); s++) {
            float[] carry = attention ? b.states[s].attShift(l) : b.states[s].ffnShift(l);
            for (int r = b.start[s]; r < b.start[s + 1]; r++) {
                int o = r * c;
                if (r == b.start[s]) {
                    for (int i = 0; i < c; i++) {
                        dx[o + i] = carry[i] - xn[o + i];
                    }
                } else {
                    for (int i = 0; i < c; i++) {
                        dx[o + i] = xn[o - c + i] - xn[o + i];
                    }
                }
            }
            System.arraycopy(xn, (b.start[s + 1] - 1) * c, carry, 0, c);
        }
        return dx;
    }

    /** {@code x + dx * (mix + lora)}; {@code lora} may be null. */
    private static float[] lerp(float[] x, float[] dx, float[] mix, float[] lora, int c, ForwardScratch scratch) {
        float[] out = scratch.take(x.length);
        Kernels.lerp(x, dx, mix, lora, c, out);
        return out;
    }

    /** Spec §1 (Finch-C2) and RWKV-6 (plain Finch): data-dependent token shift, WKV recurrence, output norm. */
    private float[] finchTimeMix(int l, FinchAttention a, Batch b, float[] xn, ForwardScratch scratch) {
        int rows = b.rows();
        int c = cfg.nEmbd();
        int heads = cfg.nHead();
        int hs = cfg.headSize();
        float[] dx = tokenShift(b, xn, true, l, scratch);
        float[] xxx = lerp(xn, dx, a.maaX(), null, c, scratch);
        int rank = a.maaW2()[0].cols();
        float[] m = matmul(a.maaW1(), xxx, rows, scratch);
        tanh(m, m.length);
        float[][] mixed = new float[5][];
        for (int i = 0; i < 5; i++) {
            float[] lora = matmul(a.maaW2()[i], columns(m, rows, 5 * rank, i * rank, rank, scratch), rows, scratch);
            mixed[i] = lerp(xn, dx, a.maa()[i], lora, c, scratch);
        }
        boolean c2 = a.isC2();
        float[] xr = mixed[c2 ? ModelWeights.C2_R : ModelWeights.X060_R];
        float[] xk = mixed[c2 ? ModelWeights.C2_K : ModelWeights.X060_K];
        float[] xv = mixed[c2 ? ModelWeights.C2_V : ModelWeights.X060_V];
        float[] xw = mixed[c2 ? ModelWeights.C2_W : ModelWeights.X060_W];
        float[] r = matmul(a.receptance(), xr, rows, scratch);
        float[] k = matmul(a.key(), xk, rows, scratch);
        float[] v = matmul(a.value(), xv, rows, scratch);
        float[] decay = matmul(a.decayW1(), xw, rows, scratch);
        tanh(decay, decay.length);
        decay = matmul(a.decayW2(), decay, rows, scratch);
        float[] d0 = decay;
        // Rows across the engine's threads (two exps per channel: a tenth of a prefill chunk on one thread).
        Parallel.forEach(rows, t -> Kernels.decayRow(a.timeDecay(), d0, t * c, c));
        float[] y = scratch.take(rows * c);
        if (c2) {
            for (int i = 0; i < k.length; i++) {
                k[i] *= 1f - decay[i];
            }
        }
        float[] bonus = c2 ? null : a.bonus();
        float[] d = decay;
        // Every (sequence, head) pair is independent: they are shared out across the engine's threads.
        Parallel.forEach(b.segments() * heads, unit -> {
            int s = unit / heads;
            int h = unit % heads;
            float[] state = b.states[s].wkv(l);
            for (int t = b.start[s]; t < b.start[s + 1]; t++) {
                Wkv.head(state, h * hs * hs, r, k, v, d, bonus, h * hs, y, t * c + h * hs, hs);
            }
        });
        if (c2) {
            float[] xv2 = mixed[ModelWeights.C2_V2];
            float[] v2 = matmul(a.value(), xv2, rows, scratch);
            float[] lora = matmul(a.value2W1(), xv2, rows, scratch);
            tanh(lora, lora.length);
            lora = matmul(a.value2W2(), lora, rows, scratch);
            for (int i = 0; i < y.length; i++) {
                y[i] += v2[i] + lora[i];
            }
            layerNorm(y, rows, a.lnXWeight(), a.lnXBias(), ModelConfig.LAYER_NORM_EPS, y);
        } else {
            float[] g = matmul(a.gate(), mixed[ModelWeights.X060_G], rows, scratch);
            for (int t = 0; t < rows; t++) {
                for (int h = 0; h < heads; h++) {
                    layerNormSlice(y, t * c + h * hs, hs, a.lnXWeight(), a.lnXBias(), h * hs, ModelConfig.GROUP_NORM_EPS, y);
                }
            }
            Parallel.forEach(rows, t -> Kernels.mulSilu(y, g, t * c, (t + 1) * c));
        }
        return matmul(a.output(), y, rows, scratch);
    }

    /** Spec §2: {@code sigmoid(W_r xr) * W_v relu(W_k xk)^2}. */
    private float[] channelMix(int l, ChannelMix f, Batch b, float[] xn, ForwardScratch scratch) {
        int rows = b.rows();
        int c = cfg.nEmbd();
        float[] dx = tokenShift(b, xn, false, l, scratch);
        float[] k = matmul(f.key(), lerp(xn, dx, f.maaK(), null, c, scratch), rows, scratch);
        for (int i = 0; i < k.length; i++) {
            float v = Math.max(k[i], 0f);
            k[i] = v * v;
        }
        float[] out = matmul(f.value(), k, rows, scratch);
        float[] r = matmul(f.receptance(), lerp(xn, dx, f.maaR(), null, c, scratch), rows, scratch);
        Parallel.forEach(rows, t -> Kernels.mulSigmoid(out, r, t * c, (t + 1) * c));
        return out;
    }

    /**
     * Extends every GOLD layer's keys and values to each state's length (spec §3: they depend only on positions s and
     * s-1 of the compressed cache and the token embeddings, so they are computed once per position; after a restore
     * they are rebuilt from the serialized compressed keys). All states' new rows go through each projection
     * together, as the layers' rows do: a batched decode step is one product of B rows, not B products of one.
     */
    private void materializeGoldKv(SequenceState[] states, ForwardScratch scratch) {
        int c = cfg.nEmbd();
        int cd = cfg.compressedDim();
        int count = states.length;
        // Per state: rows from position `from` (one earlier position than the first new one: its values feed that
        // one's shift), `first` of them already materialised (0 or 1), at row `base` of the gathered arrays.
        int[] from = new int[count];
        int[] first = new int[count];
        int[] base = new int[count + 1];
        int[] newBase = new int[count + 1];
        for (int s = 0; s < count; s++) {
            int have = states[s].goldKeys(0).rows();
            int total = states[s].length();
            from[s] = Math.max(0, have - 1);
            first[s] = have == 0 ? 0 : 1;
            int rows = have == total ? 0 : total - from[s];
            base[s + 1] = base[s] + rows;
            newBase[s + 1] = newBase[s] + (rows == 0 ? 0 : rows - first[s]);
        }
        int n = base[count];
        int m = newBase[count];
        if (m == 0) {
            return;
        }
        float[] cat = scratch.take(n * (c + cd));
        float[] e = scratch.take(n * c);
        for (int s = 0; s < count; s++) {
            for (int p = 0; p < base[s + 1] - base[s]; p++) {
                w.emb.copyRow(states[s].token(from[s] + p), e, (base[s] + p) * c);
            }
        }
        layerNorm(e, n, w.ln0Weight, w.ln0Bias, ModelConfig.LAYER_NORM_EPS, e);
        for (int s = 0; s < count; s++) {
            float[] keys = states[s].compressedKeys().array();
            for (int p = 0; p < base[s + 1] - base[s]; p++) {
                int r = base[s] + p;
                System.arraycopy(e, r * c, cat, r * (c + cd), c);
                System.arraycopy(keys, (from[s] + p) * cd, cat, r * (c + cd) + c, cd);
            }
        }
        float[] kh = matmul(w.kvCacheB, cat, n, scratch);
        rmsNorm(kh, n, c, ModelConfig.RMS_NORM_EPS, kh);
        float[] xo = scratch.take(n * c);
        rmsNorm(e, n, c, ModelConfig.RMS_NORM_EPS, xo);
        // Rows of the new positions and the differences to their predecessors (zero before position 0).
        float[] khCur = scratch.take(m * c);
        float[] xoCur = scratch.take(m * c);
        float[] dkh = scratch.take(m * c);
        float[] dxo = scratch.take(m * c);
        for (int s = 0; s < count; s++) {
            for (int i = 0; i < newBase[s + 1] - newBase[s]; i++) {
                int r = base[s] + first[s] + i; // this new row in the gathered arrays
                int o = (newBase[s] + i) * c;
                System.arraycopy(kh, r * c, khCur, o, c);
                System.arraycopy(xo, r * c, xoCur, o, c);
                boolean hasPrev = r > base[s];
                for (int j = 0; j < c; j++) {
                    dkh[o + j] = (hasPrev ? kh[(r - 1) * c + j] : 0f) - khCur[o + j];
                    dxo[o + j] = (hasPrev ? xo[(r - 1) * c + j] : 0f) - xoCur[o + j];
                }
            }
        }
        for (int g = 0; g < cfg.goldLayers(); g++) {
            GoldAttention a = w.layers[cfg.finchLayers() + g].gold();
            int rank = a.kvW2()[0].cols();
            float[] mix = matmul(a.kvW1(), lerp(xoCur, dxo, a.maaVCache(), null, c, scratch), m, scratch);
            tanh(mix, mix.length);
            float[] mk = matmul(a.kvW2()[0], columns(mix, m, 2 * rank, 0, rank, scratch), m, scratch);
            float[] mv = matmul(a.kvW2()[1], columns(mix, m, 2 * rank, rank, rank, scratch), m, scratch);
            float[] k = lerp(khCur, dkh, a.maaK(), mk, c, scratch);
            float[] v = lerp(xoCur, dxo, a.maaV(), mv, c, scratch);
            addLoRA(k, a.keyW1(), a.keyW2(), m, scratch);
            addLoRA(v, a.valueW1(), a.valueW2(), m, scratch);
            layerNorm(k, m, a.lnKWeight(), a.lnKBias(), ModelConfig.LAYER_NORM_EPS, k);
            layerNorm(v, m, a.lnVWeight(), a.lnVBias(), ModelConfig.LAYER_NORM_EPS, v);
            for (int s = 0; s < count; s++) {
                int rows = newBase[s + 1] - newBase[s];
                if (rows > 0) {
                    states[s].goldKeys(g).append(k, newBase[s] * c, rows);
                    states[s].goldValues(g).appendSplit(v, newBase[s] * c, rows);
                }
            }
        }
    }

    /** {@code x += tanh(x W1) W2}. */
    private static void addLoRA(float[] x, Matrix w1, Matrix w2, int rows, ForwardScratch scratch) {
        float[] hidden = matmul(w1, x, rows, scratch);
        tanh(hidden, hidden.length);
        float[] delta = matmul(w2, hidden, rows, scratch);
        for (int i = 0; i < x.length; i++) {
            x[i] += delta[i];
        }
    }

    /** Spec §3: query with its own token shift, softmax attention over the materialised K/V, causal per position. */
    private float[] goldTimeMix(int l, GoldAttention a, Batch b, float[] xn, ForwardScratch scratch) {
        int rows = b.rows();
        int c = cfg.nEmbd();
        int heads = cfg.nHead();
        int hs = cfg.headSize();
        int g = l - cfg.finchLayers();
        float[] dx = tokenShift(b, xn, true, l, scratch);
        float[] mq = matmul(a.qW1(), lerp(xn, dx, a.maaX(), null, c, scratch), rows, scratch);
        tanh(mq, mq.length);
        mq = matmul(a.qW2(), mq, rows, scratch);
        float[] q = matmul(a.query(), lerp(xn, dx, a.maaQ(), mq, c, scratch), rows, scratch);
        layerNorm(q, rows, a.lnQWeight(), a.lnQBias(), ModelConfig.LAYER_NORM_EPS, q);
        float[] y = scratch.take(rows * c);
        float scale = (float) (1.0 / Math.sqrt(hs));
        int longest = 0;
        for (int s = 0; s < b.segments(); s++) {
            longest = Math.max(longest, b.position(s, b.start[s + 1] - 1) + 1);
        }
        int scoreLength = longest;
        int kb = SequenceState.KEY_BLOCK;
        for (int s = 0; s < b.segments(); s++) {
            extendKeyBlocks(b.states[s].goldKeys(g), b.states[s].goldKeyBlocks(g), hs);
        }
        // Heads are independent: shared out across the engine's threads (reading K and V is the cost at long contexts).
        float[] scores = scratch.takeAtLeast(heads * scoreLength); // head h's at h * scoreLength, written before read
        Parallel.forEach(heads, h -> {
            int so = h * scoreLength;
            for (int s = 0; s < b.segments(); s++) {
                float[] keys = b.states[s].goldKeys(g).array();
                float[] keyBlocks = b.states[s].goldKeyBlocks(g).head(h).array();
                float[] values = b.states[s].goldValues(g).head(h).array();
                for (int r = b.start[s]; r < b.start[s + 1]; r++) {
                    int visible = b.position(s, r) + 1; // bottom-right aligned causal mask
                    int qo = r * c + h * hs;
                    float max = Float.NEGATIVE_INFINITY;
                    // Whole blocks of keys a vector of scores at a time, the rest one by one. The split depends on the
                    // row's position only, so a row gets the same bits however the prompt was chunked.
                    int blocked = visible / kb * kb;
                    for (int p = 0; p < blocked; p += kb) {
                        max = Math.max(max, Kernels.blockScores(q, qo, keyBlocks, p * hs, hs, scale, scores, so + p));
                    }
                    for (int p = blocked; p < visible; p++) {
                        scores[so + p] = Kernels.dot(q, qo, keys, p * c + h * hs, hs) * scale;
                        max = Math.max(max, scores[so + p]);
                    }
                    // Scalar exp here: the vector kernel inside this lambda got its vectors boxed at L12-D768 (40 KB per
                    // token allocated); one exp per score is well under 1 % of a step even at context 4,096.
                    float sum = 0;
                    for (int p = 0; p < visible; p++) {
                        scores[so + p] = Kernels.exp(scores[so + p] - max);
                        sum += scores[so + p];
                    }
                    float inv = 1f / sum;
                    for (int p = 0; p < visible; p++) {
                        scores[so + p] *= inv;
                    }
                    Kernels.weightedRowSum(scores, so, visible, values, 0, hs, y, qo, hs);
                }
            }
        });
        layerNorm(y, rows, a.lnXWeight(), a.lnXBias(), ModelConfig.LAYER_NORM_EPS, y);
        return matmul(a.output(), y, rows, scratch);
    }

    /** Appends, per head, the transposed copy of every block of keys completed since the last call ({@code [N][KEY_BLOCK]} per block). */
    private static void extendKeyBlocks(FloatRows keys, HeadRows blocks, int headSize) {
        int kb = SequenceState.KEY_BLOCK;
        int have = blocks.rows();
        int complete = keys.rows() / kb;
        if (complete <= have) {
            return;
        }
        int width = keys.width();
        int at = blocks.extend(complete - have);
        float[] k = keys.array();
        for (int h = 0; h < blocks.heads(); h++) {
            float[] t = blocks.head(h).array();
            for (int blk = have; blk < complete; blk++) {
                int out = at + (blk - have) * kb * headSize;
                for (int i = 0; i < kb; i++) {
                    int row = (blk * kb + i) * width + h * headSize;
                    for (int d = 0; d < headSize; d++) {
                        t[out + d * kb + i] = k[row + d];
                    }
                }
            }
        }
    }

    private void logits(List<Segment> segments, Batch b, float[] h, ForwardScratch scratch, float[][] logits) {
        int c = cfg.nEmbd();
        int v = cfg.vocabSize();
        int total = 0;
        for (Segment seg : segments) {
            total += seg.tokens().length - seg.logitsFrom();
        }
        if (total == 0) {
            return;
        }
        float[] sel = scratch.take(total * c);
        int o = 0;
        for (int s = 0; s < segments.size(); s++) {
            Segment seg = segments.get(s);
            int count = seg.tokens().length - seg.logitsFrom();
            int from = seg.logitsFrom() - b.skipped[s]; // row within the segment's rows in h
            System.arraycopy(h, (b.start[s] + from) * c, sel, o * c, count * c);
            o += count;
        }
        layerNorm(sel, total, w.lnOutWeight, w.lnOutBias, ModelConfig.LAYER_NORM_EPS, sel);
        if (segments.size() == 1) {
            Kernels.matmul(w.head, sel, total, logits[0]); // straight into the caller's array
            return;
        }
        float[] all = matmul(w.head, sel, total, scratch);
        o = 0;
        for (int s = 0; s < segments.size(); s++) {
            int len = logits[s].length;
            System.arraycopy(all, o, logits[s], 0, len);
            o += len;
        }
    }

    /**
     * Nothing to release eagerly: the packed weights live in automatic arenas, freed once the model is unreachable
     * (the source file or generated tensors were closed as soon as they were packed).
     */
    @Override
    public void close() {
    }
}
