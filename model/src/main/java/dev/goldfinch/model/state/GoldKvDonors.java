package dev.goldfinch.model.state;

import java.lang.ref.SoftReference;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Iterator;

/**
 * GOLD keys and values recently built for long prefixes, by namespace (cache salt) and token prefix. A state
 * restored from the cache carries only compressed keys, and rebuilding K/V for every position is the bulk
 * of a warm request's cost (twice: once in prefill, once in decode). Row p of the GOLD K/V depends only on
 * the tokens and compressed keys at p and p - 1, so a restored state can share the rows it has in common
 * with a donor (copy-on-write, nothing copied until it appends) and rebuild only the rest.
 *
 * <p>Donors are snapshots (fixed-length views taken on the thread that owns the state), held softly so that
 * memory pressure drops them; a restored state adopts only rows whose tokens and compressed keys are
 * bit-identical to the donor's. Donors are never shared across namespaces, so one tenant's latency says
 * nothing about another's prompts.
 */
public final class GoldKvDonors {
    /** Shorter prefixes are cheap to rebuild: not worth holding. */
    static final int MIN_ROWS = 64;
    /** Each donor can hold hundreds of MB at long contexts; the latest few serve the common case (one hot prefix). */
    private static final int CAPACITY = 2;

    private record Donor(String namespace, int[] tokens, FloatRows compressed, KvRows[] keys, HeadRows[] values) {}

    private final ArrayDeque<SoftReference<Donor>> donors = new ArrayDeque<>();

    /** Offers the GOLD K/V of {@code state} (called by the thread advancing it). */
    public void offer(String namespace, SequenceState state) {
        if (state.goldKeys.length == 0) {
            return;
        }
        int rows = Math.min(state.length(), state.compressedKeys.rows());
        for (int g = 0; g < state.goldKeys.length; g++) {
            rows = Math.min(rows, Math.min(state.goldKeys[g].rows(), state.goldValues[g].rows()));
        }
        if (rows < MIN_ROWS) {
            return;
        }
        KvRows[] keys = new KvRows[state.goldKeys.length];
        HeadRows[] values = new HeadRows[state.goldValues.length];
        for (int g = 0; g < keys.length; g++) {
            keys[g] = state.goldKeys[g].prefix(rows);
            values[g] = state.goldValues[g].prefix(rows);
        }
        Donor donor = new Donor(
                namespace, Arrays.copyOf(state.tokens(), rows), state.compressedKeys.prefix(rows), keys, values);
        synchronized (donors) {
            donors.addFirst(new SoftReference<>(donor));
            while (donors.size() > CAPACITY) {
                donors.removeLast();
            }
        }
    }

    /**
     * Gives {@code state}, which must hold no GOLD rows yet, the rows it shares with the best donor of its
     * namespace; returns how many it adopted (0: none).
     */
    public int adopt(String namespace, SequenceState state) {
        if (state.goldKeys.length == 0 || state.goldKeys[0].rows() != 0) {
            return 0;
        }
        int[] tokens = state.tokens();
        int limit = Math.min(tokens.length, state.compressedKeys.rows());
        Donor best = null;
        int bestRows = 0;
        synchronized (donors) {
            for (Iterator<SoftReference<Donor>> it = donors.iterator(); it.hasNext(); ) {
                Donor d = it.next().get();
                if (d == null) {
                    it.remove();
                    continue;
                }
                if (!java.util.Objects.equals(d.namespace(), namespace)) {
                    continue;
                }
                int common = Math.min(limit, d.tokens().length);
                int mismatch = Arrays.mismatch(tokens, 0, common, d.tokens(), 0, common);
                if (mismatch >= 0) {
                    common = mismatch;
                }
                common = Math.min(common, sameRows(state.compressedKeys, d.compressed(), common));
                if (common > bestRows) {
                    best = d;
                    bestRows = common;
                }
            }
        }
        if (bestRows < MIN_ROWS) {
            return 0;
        }
        // The donor's rows are in its model's format (a freshly decoded state has the default; the model sets its
        // format on the next pass, which keeps these rows unless the model's format changed since the donor's).
        state.kvFormat(best.keys()[0].format());
        for (int g = 0; g < state.goldKeys.length; g++) {
            state.goldKeys[g] = best.keys()[g].prefix(bestRows);
            state.goldValues[g] = best.values()[g].prefix(bestRows);
        }
        return bestRows;
    }

    /** How many of the first {@code rows} rows of {@code a} and {@code b} are bit-identical. */
    private static int sameRows(FloatRows a, FloatRows b, int rows) {
        int width = a.width();
        int mismatch = Arrays.mismatch(a.array(), 0, rows * width, b.array(), 0, rows * width);
        return mismatch < 0 ? rows : mismatch / width;
    }
}
