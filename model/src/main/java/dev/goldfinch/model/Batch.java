package dev.goldfinch.model;

import dev.goldfinch.model.GoldFinchModel.Segment;
import dev.goldfinch.model.state.HeadRows;
import dev.goldfinch.model.state.KvRows;
import dev.goldfinch.model.state.SequenceState;
import dev.goldfinch.model.tensor.Tensor;
import java.util.List;

/**
 * The rows of one forward pass and the sequences they belong to: segment {@code s} is rows
 * {@code [start[s], start[s+1])} of every {@code [rows, C]} array of the pass, beginning {@code skipped[s]} tokens
 * into the segment. Every gather from the sequences' states and every scatter back to them is here, so the block
 * classes see arrays of rows and do only the math.
 */
final class Batch {
    final List<Segment> segments;
    final SequenceState[] states;
    final int[] start;
    /** Per segment: the state's length before this pass. */
    final int[] prior;

    final int[] skipped;

    Batch(List<Segment> segments, SequenceState[] states, int[] start, int[] prior, int[] skipped) {
        this.segments = segments;
        this.states = states;
        this.start = start;
        this.prior = prior;
        this.skipped = skipped;
    }

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

    /** {@code x[r] = Emb[token of row r]} (all rows of the segments: skips none). */
    void embed(Tensor emb, float[] x, int c) {
        for (int s = 0; s < segments(); s++) {
            int[] tokens = segments.get(s).tokens();
            for (int t = 0; t < tokens.length; t++) {
                emb.copyRow(tokens[t], x, (start[s] + t) * c);
            }
        }
    }

    /**
     * The token shift {@code dx = sx - x_t; sx <- x_t} ([rows, C]): inside a segment {@code sx} is the previous row,
     * for its first row the shift carried in the state (the time mix's or the channel mix's of {@code layer}),
     * which then carries the segment's last row.
     */
    float[] tokenShift(float[] xn, int c, int layer, boolean timeMix, ForwardScratch scratch) {
        float[] dx = scratch.take(xn.length);
        for (int s = 0; s < segments(); s++) {
            float[] carry = timeMix ? states[s].attShift(layer) : states[s].ffnShift(layer);
            for (int r = start[s]; r < start[s + 1]; r++) {
                int o = r * c;
                if (r == start[s]) {
                    for (int i = 0; i < c; i++) {
                        dx[o + i] = carry[i] - xn[o + i];
                    }
                } else {
                    for (int i = 0; i < c; i++) {
                        dx[o + i] = xn[o - c + i] - xn[o + i];
                    }
                }
            }
            System.arraycopy(xn, (start[s + 1] - 1) * c, carry, 0, c);
        }
        return dx;
    }

    /** Appends each segment's compressed keys ({@code [rows, cd]}, may be null without GOLD) and tokens to its state. */
    void appendToStates(float[] compressed, int cd) {
        for (int s = 0; s < segments(); s++) {
            if (compressed != null) {
                states[s].compressedKeys().append(compressed, start[s] * cd, start[s + 1] - start[s]);
            }
            states[s].appendTokens(segments.get(s).tokens());
        }
    }

    /**
     * The rows the GOLD stack runs over (spec §5.1): each segment's trailing {@code window} and everything from its
     * first requested logit on. Rows of this batch (which skips none).
     */
    Batch goldRows(int window) {
        int n = segments();
        int[] gStart = new int[n + 1];
        int[] gSkipped = new int[n];
        for (int s = 0; s < n; s++) {
            int len = start[s + 1] - start[s];
            gSkipped[s] = Math.max(0, Math.min(segments.get(s).logitsFrom(), len - window));
            gStart[s + 1] = gStart[s] + len - gSkipped[s];
        }
        return new Batch(segments, states, gStart, prior, gSkipped);
    }

    /** This batch's rows of {@code x}, an array of the rows of {@code all} (which skips none), into {@code out}. */
    void gather(Batch all, float[] x, float[] out, int c) {
        for (int s = 0; s < segments(); s++) {
            System.arraycopy(x, (all.start[s] + skipped[s]) * c, out, start[s] * c, (start[s + 1] - start[s]) * c);
        }
    }

    /** Rows whose logits the segments ask for, in all. */
    int logitRows() {
        int total = 0;
        for (int s = 0; s < segments.size(); s++) { // indexed: an iterator here was an allocation per decode step
            Segment seg = segments.get(s);
            total += seg.tokens().length - seg.logitsFrom();
        }
        return total;
    }

    /** The rows of {@code h} whose logits are asked for, segment after segment, into {@code out}. */
    void gatherLogitRows(float[] h, float[] out, int c) {
        int o = 0;
        for (int s = 0; s < segments(); s++) {
            Segment seg = segments.get(s);
            int count = seg.tokens().length - seg.logitsFrom();
            int from = seg.logitsFrom() - skipped[s]; // row within the segment's rows in h
            System.arraycopy(h, (start[s] + from) * c, out, o * c, count * c);
            o += count;
        }
    }

    /** Splits the logits of {@link #gatherLogitRows}'s rows into each segment's array. */
    static void scatterLogits(float[] all, float[][] logits) {
        int o = 0;
        for (float[] mine : logits) {
            System.arraycopy(all, o, mine, 0, mine.length);
            o += mine.length;
        }
    }

    /**
     * Brings every state's transposed key blocks of GOLD layer {@code g} up to its keys: per head, each block of
     * {@link SequenceState#KEY_BLOCK} completed keys copied as {@code [N][KEY_BLOCK]} (attention's layout).
     */
    void extendKeyBlocks(int g, int headSize) {
        for (SequenceState state : states) {
            extendKeyBlocks(state.goldKeys(g), state.goldKeyBlocks(g), headSize);
        }
    }

    private static void extendKeyBlocks(KvRows keys, HeadRows blocks, int headSize) {
        int kb = SequenceState.KEY_BLOCK;
        int have = blocks.rows();
        int complete = keys.rows() / kb;
        if (complete <= have) {
            return;
        }
        int width = keys.width();
        int at = blocks.extend(complete - have) * kb * headSize;
        for (int h = 0; h < blocks.heads(); h++) {
            KvRows t = blocks.head(h);
            for (int blk = have; blk < complete; blk++) {
                int out = at + (blk - have) * kb * headSize;
                for (int i = 0; i < kb; i++) {
                    int row = (blk * kb + i) * width + h * headSize;
                    switch (keys.format()) {
                        case F32 -> transpose(keys.floats(), row, t.floats(), out + i, kb, headSize);
                        case BF16 -> transpose(keys.halves(), row, t.halves(), out + i, kb, headSize);
                        case INT8 -> {
                            transpose(keys.bytes(), row, t.bytes(), out + i, kb, headSize);
                            // the key's scale for this head (goldKeys has one per head per row) goes with it
                            t.scales()[blk * kb + i] = keys.scales()[(blk * kb + i) * blocks.heads() + h];
                        }
                    }
                }
            }
        }
    }

    /** {@code t[out + d * kb] = k[row + d]} for {@code d < n}: one key into a column of its block. */
    private static void transpose(float[] k, int row, float[] t, int out, int kb, int n) {
        for (int d = 0; d < n; d++) {
            t[out + d * kb] = k[row + d];
        }
    }

    private static void transpose(short[] k, int row, short[] t, int out, int kb, int n) {
        for (int d = 0; d < n; d++) {
            t[out + d * kb] = k[row + d];
        }
    }

    private static void transpose(byte[] k, int row, byte[] t, int out, int kb, int n) {
        for (int d = 0; d < n; d++) {
            t[out + d * kb] = k[row + d];
        }
    }

    /**
     * The cache positions whose GOLD keys and values the states lack (spec §3: {@code k_s, v_s} depend on positions
     * {@code s} and {@code s-1} only), gathered from all states together so each projection is one product. Per
     * state: its rows from position {@code from} (one before the first new one, whose values feed that one's
     * shift), {@code first} of them (0 or 1) already materialised, at row {@code base} of the gathered arrays; its
     * new rows at row {@code newBase} of the arrays of new rows. One per thread, its arrays reused: a decode step
     * allocates none of this.
     */
    static final class CacheRows implements GoldAttention.KvSink {
        private static final ThreadLocal<CacheRows> PER_THREAD = ThreadLocal.withInitial(CacheRows::new);
        private SequenceState[] states;
        private int[] from = new int[0];
        private int[] first = new int[0];
        private int[] base = new int[1];
        private int[] newBase = new int[1];

        /**
         * The positions {@code states} lack, at most {@code limit} new ones (the first states' first), or null when
         * they lack none; {@link #release()} it after use.
         */
        static CacheRows missing(SequenceState[] states, int limit) {
            CacheRows rows = PER_THREAD.get();
            rows.plan(states, limit);
            if (rows.fresh() == 0) {
                rows.release();
                return null;
            }
            return rows;
        }

        /**
         * Positions {@code [from, to)} of one state, whatever it holds materialised (a streamed attention's block);
         * {@link #release()} it after use.
         */
        static CacheRows range(SequenceState state, int from, int to) {
            CacheRows rows = PER_THREAD.get();
            rows.plan(new SequenceState[] {state}, 0);
            rows.from[0] = Math.max(0, from - 1);
            rows.first[0] = from == 0 ? 0 : 1;
            rows.base[1] = to - rows.from[0];
            rows.newBase[1] = to - from;
            return rows;
        }

        private void plan(SequenceState[] states, int limit) {
            int count = states.length;
            this.states = states;
            if (from.length < count) {
                from = new int[count];
                first = new int[count];
                base = new int[count + 1];
                newBase = new int[count + 1];
            }
            for (int s = 0; s < count; s++) {
                int have = states[s].goldKeys(0).rows();
                int total = states[s].length();
                from[s] = Math.max(0, have - 1);
                first[s] = have == 0 ? 0 : 1;
                int fresh = Math.min(total - have, limit);
                limit -= fresh;
                base[s + 1] = base[s] + (fresh == 0 ? 0 : fresh + first[s]);
                newBase[s + 1] = newBase[s] + fresh;
            }
        }

        /** Forgets the states (a thread's plan must not keep them reachable). */
        void release() {
            states = null;
        }

        /** Gathered rows: the new positions and their predecessors. */
        int gathered() {
            return base[states.length];
        }

        /** New positions, all states together. */
        int fresh() {
            return newBase[states.length];
        }
        /** {@code e[r] = Emb[token at the gathered row's position]}. */
        void embed(Tensor emb, float[] e, int c) {
            for (int s = 0; s < states.length; s++) {
                for (int p = 0; p < base[s + 1] - base[s]; p++) {
                    emb.copyRow(states[s].token(from[s] + p), e, (base[s] + p) * c);
                }
            }
        }

        /** {@code [e ; c]} per gathered row (TokenCat: the embedding first, then the compressed key). */
        void tokenCat(float[] e, int c, int cd, float[] out) {
            for (int s = 0; s < states.length; s++) {
                float[] keys = states[s].compressedKeys().array();
                for (int p = 0; p < base[s + 1] - base[s]; p++) {
                    int r = base[s] + p;
                    System.arraycopy(e, r * c, out, r * (c + cd), c);
                    System.arraycopy(keys, (from[s] + p) * cd, out, r * (c + cd) + c, cd);
                }
            }
        }

        /**
         * Of gathered rows {@code a}: the new positions' rows into {@code cur} and the shift along the cache,
         * {@code a_{s-1} - a_s} with {@code a_{-1} = 0}, into {@code shift} ({@code [fresh, c]} each).
         */
        void freshAndShift(float[] a, int c, float[] cur, float[] shift) {
            for (int s = 0; s < states.length; s++) {
                for (int i = 0; i < newBase[s + 1] - newBase[s]; i++) {
                    int r = base[s] + first[s] + i; // this new row in the gathered arrays
                    int o = (newBase[s] + i) * c;
                    System.arraycopy(a, r * c, cur, o, c);
                    boolean hasPrev = r > base[s];
                    for (int j = 0; j < c; j++) {
                        shift[o + j] = (hasPrev ? a[(r - 1) * c + j] : 0f) - cur[o + j];
                    }
                }
            }
        }

        /** Appends each state's new keys and values ({@code [fresh, C]}) to GOLD layer {@code g}. */
        @Override
        public void accept(int g, float[] k, float[] v) {
            int c = states[0].config().dimAtt();
            for (int s = 0; s < states.length; s++) {
                int rows = newBase[s + 1] - newBase[s];
                if (rows > 0) {
                    states[s].goldKeys(g).append(k, newBase[s] * c, rows);
                    states[s].goldValues(g).appendSplit(v, newBase[s] * c, rows);
                }
            }
        }
    }
}
