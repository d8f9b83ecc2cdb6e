package dev.goldfinch.model;

import static dev.goldfinch.model.tensor.Kernels.layerNorm;

import dev.goldfinch.model.ModelWeights.Layer;
import dev.goldfinch.model.state.GoldKvDonors;
import dev.goldfinch.model.state.KvFormat;
import dev.goldfinch.model.state.SequenceState;
import dev.goldfinch.model.tensor.Kernels;
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
 *
 * <p>This class is spec §0 (embedding, blocks, head); each block kind is a class of its own, one spec line per
 * statement: {@link FinchTimeMix} (RWKV-6), {@link FinchC2TimeMix} (§1), {@link ChannelMix} (§2),
 * {@link GoldAttention} (§3) and {@link KeyCompression} (§0's key cache). Which rows belong to which sequence, and
 * every read or write of the sequences' states, is {@link Batch}.
 */
public final class GoldFinchModel implements AutoCloseable {
    private final ModelWeights w;
    private final ModelConfig cfg;
    private final GoldKvDonors goldKvDonors = new GoldKvDonors();
    /** How sequences fed to this model hold their GOLD keys and values (the engine option {@code kv-format}). */
    private volatile KvFormat kvFormat = KvFormat.defaultFormat();

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
        SequenceState state = new SequenceState(cfg, w.fingerprint());
        state.kvFormat(kvFormat);
        return state;
    }

    public KvFormat kvFormat() {
        return kvFormat;
    }

    /** Holds live GOLD keys and values in {@code format} from the next pass of each sequence on; returns this model. */
    public GoldFinchModel kvFormat(KvFormat format) {
        this.kvFormat = java.util.Objects.requireNonNull(format, "format");
        return this;
    }

    /** Bytes a live sequence of this model holds per token beyond the cache's (GOLD K/V in {@link #kvFormat()}). */
    public long liveBytesPerToken() {
        return kvFormat.liveBytesPerToken(cfg);
    }

    /** GOLD keys and values restored states of this model may share instead of rebuilding. */
    public GoldKvDonors goldKvDonors() {
        return goldKvDonors;
    }

    /**
     * How a pass runs a segment's GOLD layers (spec §3, §5.1). A prefill whose state is not decoded in this process
     * (it goes to the cache, which holds compressed keys only) needs no live keys and values: chunks with more to
     * come skip GOLD, the last one streams them, and the state holds keys and ids only, as after a restore.
     */
    public enum GoldMode {
        /** GOLD over the segment's trailing window; every new position's keys and values kept in the state. */
        LIVE,
        /**
         * GOLD over the trailing window, reading keys and values computed block by block into scratch (online
         * softmax); the state keeps none of them (a later pass that needs them rebuilds them, as after a restore).
         */
        STREAMED,
        /**
         * No GOLD: the Finch stack, the compressed keys and the ids only. The GOLD layers' token shifts are left
         * stale, so the state's next pass must carry at least {@link ModelConfig#goldWindow()} tokens (the window
         * that makes them exact again, spec §5.1) and ask no logits of this one. See {@link #keysOnlyChunkEnd}.
         */
        SKIPPED
    }

    /**
     * Tokens to feed one sequence. Logits are returned for rows {@code logitsFrom .. tokens.length-1}:
     * {@code tokens.length - 1} for the next-token logits only, {@code tokens.length} for none, 0 for all.
     */
    public record Segment(SequenceState state, int[] tokens, int logitsFrom, GoldMode gold) {
        public Segment {
            if (tokens.length == 0) {
                throw new GoldFinchException.InvalidInput("no tokens to process (empty prompt)");
            }
            if (logitsFrom < 0 || logitsFrom > tokens.length) {
                throw new IllegalArgumentException("logitsFrom " + logitsFrom + " outside 0.." + tokens.length);
            }
            java.util.Objects.requireNonNull(gold, "gold");
            if (gold == GoldMode.SKIPPED && logitsFrom != tokens.length) {
                throw new IllegalArgumentException("a segment that skips GOLD has no logits");
            }
        }

        /** A segment whose GOLD keys and values stay live in its state (decode follows). */
        public Segment(SequenceState state, int[] tokens, int logitsFrom) {
            this(state, tokens, logitsFrom, GoldMode.LIVE);
        }

        public static Segment lastLogits(SequenceState state, int[] tokens) {
            return new Segment(state, tokens, tokens.length - 1);
        }
    }

    /**
     * Where a keys-only prefill chunk starting at {@code at} ends, for chunks of {@code chunk} tokens up to
     * {@code stop}: the last chunk before {@code stop} is never shorter than the GOLD window, so every chunk but that
     * one may be {@link GoldMode#SKIPPED}.
     */
    public int keysOnlyChunkEnd(int at, int stop, int chunk) {
        int to = Math.min(stop, at + chunk);
        int window = cfg.goldWindow();
        if (to < stop && stop - to < window) {
            to = Math.max(at + 1, stop - window); // leaves the window (or all) to a last chunk
        }
        return to;
    }

    /**
     * Feeds a prompt in chunks of {@code chunk} tokens holding no GOLD keys and values ({@link GoldMode#SKIPPED}
     * chunks, a {@link GoldMode#STREAMED} last one): memory beyond the state's compressed keys and ids does not grow
     * with the prompt. Returns the last token's logits.
     */
    public float[] prefillKeysOnly(SequenceState state, int[] tokens, int chunk) {
        if (chunk <= 0) {
            throw new IllegalArgumentException("chunk must be positive, got " + chunk);
        }
        float[] logits = null;
        for (int at = 0; at < tokens.length; ) {
            int to = keysOnlyChunkEnd(at, tokens.length, chunk);
            int[] part = java.util.Arrays.copyOfRange(tokens, at, to);
            boolean last = to == tokens.length;
            logits = forward(List.of(new Segment(
                    state, part, last ? part.length - 1 : part.length, last ? GoldMode.STREAMED : GoldMode.SKIPPED)))[
                    0];
            at = to;
        }
        return logits;
    }

    /** Feeds one sequence and returns the logits of its last token ({@code [V]}). */
    public float[] prefill(SequenceState state, int[] tokens) {
        return forward(List.of(Segment.lastLogits(state, tokens)))[0];
    }

    /** Feeds one token and returns the next-token logits. */
    public float[] step(SequenceState state, int token) {
        return prefill(state, new int[] {token});
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
            if (seg.state().modelFingerprint() != w.fingerprint()
                    || seg.state().config() != cfg && !seg.state().config().equals(cfg)) {
                throw new GoldFinchException.StateMismatch("sequence state belongs to another model");
            }
            for (int t : seg.tokens()) {
                if (t < 0 || t >= cfg.vocabSize()) {
                    throw new GoldFinchException.InvalidInput(
                            "token id " + t + " is outside the vocabulary [0, " + cfg.vocabSize() + ")");
                }
            }
            for (int q = 0; q < s; q++) {
                if (states[q] == states[s]) {
                    throw new IllegalArgumentException("one state appears in two segments of a batch");
                }
            }
            start[s + 1] = start[s] + seg.tokens().length;
        }
        int skippedGold = 0;
        for (int s = 0; s < n; s++) {
            Segment seg = segments.get(s);
            if (seg.gold() == GoldMode.SKIPPED) {
                skippedGold++;
            } else if (states[s].goldPending() && seg.tokens().length < cfg.goldWindow()) {
                throw new IllegalArgumentException("the pass after a chunk that skipped GOLD carries "
                        + seg.tokens().length + " tokens, fewer than the GOLD window of " + cfg.goldWindow());
            }
        }
        if (skippedGold > 0 && skippedGold < n) {
            throw new IllegalArgumentException("segments that skip GOLD cannot share a pass with segments that run it");
        }
        KvFormat format = kvFormat;
        for (SequenceState state : states) {
            state.kvFormat(format); // a restored or foreign state rebuilds its K/V in the model's format
        }
        int[] prior = new int[n];
        for (int s = 0; s < n; s++) {
            prior[s] = states[s].length();
        }
        Batch all = new Batch(segments, states, start, prior, new int[n]);
        int rows = all.rows();
        int c = cfg.nEmbd();

        // Spec §0: e = LN0(Emb[tok]); x = e; then per layer x += TimeMix(LN1(x)); x += ChanMix(LN2(x)).
        float[] x = scratch.take(rows * c);
        all.embed(w.emb, x, c); // [T, C]  Emb[tok]
        layerNorm(x, rows, w.ln0Weight, w.ln0Bias, ModelConfig.LAYER_NORM_EPS, x); // [T, C]  e = LN0(.)
        if (tap != null) {
            tap.embedded(x, rows);
        }
        // RWKV-7: layer 0's value of every row, mixed into every later layer's.
        float[] vFirst = cfg.architecture() == Architecture.RWKV7 ? scratch.take(rows * c) : null;
        for (int l = 0; l < cfg.finchLayers(); l++) {
            block(l, all, x, scratch, vFirst);
            if (tap != null) {
                tap.afterBlock(l, x, rows);
            }
        }
        if (!cfg.architecture().hasGold()) {
            all.appendToStates(null, 0);
            logits(all, x, scratch, logits);
            return;
        }
        float[] compressed = KeyCompression.compress(w, x, rows, scratch); // [T, c]  c_t = W_a x_t, after block Lf-1
        all.appendToStates(compressed, cfg.compressedDim());
        if (skippedGold == n) { // keys and ids only: a later pass's window brings the GOLD state up to date
            for (SequenceState state : states) {
                state.goldPending(true);
            }
            return;
        }
        GoldAttention.extendKeysAndValues(w, liveStates(segments, states), scratch); // k_s, v_s of new positions (§3)
        Batch top = all.goldRows(cfg.goldWindow()); // the rows GOLD runs over (§5.1)
        float[] h = scratch.take(top.rows() * c);
        top.gather(all, x, h, c); // [T', C]
        for (SequenceState state : states) {
            state.goldPending(false); // the window now runs over every GOLD layer
        }
        for (int l = cfg.finchLayers(); l < cfg.nLayer(); l++) {
            block(l, top, h, scratch, null);
            if (tap != null) {
                tap.afterBlock(l, h, top.rows());
            }
        }
        logits(top, h, scratch, logits);
    }

    /** Spec §0, one layer: {@code x += TimeMix_l(LN1_l(x)); x += ChanMix_l(LN2_l(x))}, over the batch's rows. */
    private void block(int l, Batch b, float[] x, ForwardScratch scratch, float[] vFirst) {
        Layer layer = w.layers[l];
        int rows = b.rows();
        int c = cfg.nEmbd();
        float[] xn = scratch.take(rows * c);
        layerNorm(x, rows, layer.ln1Weight(), layer.ln1Bias(), ModelConfig.LAYER_NORM_EPS, xn); // [T, C]  LN1(x)
        float[] att;
        if (layer.gold() != null) {
            att = GoldAttention.apply(w, layer.gold(), b, l, xn, scratch); // [T, C]  GOLD (§3)
        } else if (layer.eagle() != null) {
            att = EagleTimeMix.apply(layer.eagle(), b, l, xn, cfg, scratch); // [T, C]  RWKV-5
        } else if (layer.goose() != null) {
            att = GooseTimeMix.apply(layer.goose(), b, l, xn, cfg, scratch, vFirst); // [T, C]  RWKV-7
        } else if (layer.finch().isC2()) {
            att = FinchC2TimeMix.apply(layer.finch(), b, l, xn, cfg, scratch); // [T, C]  Finch-C2 (§1)
        } else {
            att = FinchTimeMix.apply(layer.finch(), b, l, xn, cfg, scratch); // [T, C]  Finch / RWKV-6
        }
        Ops.addInto(x, att); // [T, C]  x += TimeMix(LN1(x))
        layerNorm(x, rows, layer.ln2Weight(), layer.ln2Bias(), ModelConfig.LAYER_NORM_EPS, xn); // [T, C]  LN2(x)
        Ops.addInto(x, ChannelMix.apply(layer.ffn(), b, l, xn, c, scratch)); // [T, C]  x += ChanMix(LN2(x)) (§2)
    }

    /** The states whose segments keep their GOLD keys and values live: all of them but in a streamed prefill. */
    private static SequenceState[] liveStates(List<Segment> segments, SequenceState[] states) {
        int live = 0;
        for (int s = 0; s < states.length; s++) {
            live += segments.get(s).gold() == GoldMode.LIVE ? 1 : 0;
        }
        if (live == states.length) {
            return states; // a decode step: no copy
        }
        SequenceState[] out = new SequenceState[live];
        for (int s = 0, i = 0; s < states.length; s++) {
            if (segments.get(s).gold() == GoldMode.LIVE) {
                out[i++] = states[s];
            }
        }
        return out;
    }

    /** Spec §0: {@code logits = Head(LNout(x))} of the rows whose logits the segments ask for, into their arrays. */
    private void logits(Batch b, float[] h, ForwardScratch scratch, float[][] logits) {
        int c = cfg.nEmbd();
        int total = b.logitRows();
        if (total == 0) {
            return;
        }
        float[] sel = scratch.take(total * c);
        b.gatherLogitRows(h, sel, c); // [R, C]
        layerNorm(sel, total, w.lnOutWeight, w.lnOutBias, ModelConfig.LAYER_NORM_EPS, sel); // [R, C]  LNout(x)
        if (logits.length == 1) {
            Kernels.matmul(w.head, sel, total, logits[0]); // [R, V]  straight into the caller's array
            return;
        }
        Batch.scatterLogits(Ops.matmul(w.head, sel, total, scratch), logits); // [R, V]  Head(.)
    }

    /**
     * Nothing to release eagerly: the packed weights live in automatic arenas, freed once the model is unreachable
     * (the source file or generated tensors were closed as soon as they were packed).
     */
    @Override
    public void close() {}
}
