package dev.goldfinch.model;

import java.util.Arrays;

/**
 * The activation arrays of one forward pass, kept for the next pass on the same thread. A pass asks for
 * its arrays in the same order and of the same lengths whenever its shape repeats (a decode step of the
 * same batch), so the i-th request finds the i-th array of last time and a steady decode allocates nothing.
 * A request whose length differs gets a new array (a batch that grew or shrank; correctness never depends
 * on reuse). Arrays come zeroed, as {@code new float[n]} would.
 *
 * <p>Large arrays (a long prefill chunk's) are handed out but not kept: they are allocated once per chunk of
 * many tokens anyway, and keeping them would pin that memory on every thread that ever ran a prefill.
 */
final class ForwardScratch {
    /** Longest array kept between passes: 1 Mi floats (4 MiB), far beyond a decode step's widest row set. */
    static final int MAX_KEPT_LENGTH = 1 << 20;
    /** Total floats kept per thread (64 MiB). */
    static final long MAX_KEPT_TOTAL = 16L << 20;

    private static final ThreadLocal<ForwardScratch> PER_THREAD = ThreadLocal.withInitial(ForwardScratch::new);

    private float[][] arrays = new float[64][];
    private long kept;
    private int next;

    /** This thread's scratch, rewound for a new pass. */
    static ForwardScratch begin() {
        ForwardScratch s = PER_THREAD.get();
        s.next = 0;
        return s;
    }

    /** A zeroed array of exactly {@code length} floats, valid until the next {@link #begin()} on this thread. */
    float[] take(int length) {
        int slot = nextSlot();
        float[] a = arrays[slot];
        if (a != null && a.length == length) {
            Arrays.fill(a, 0f);
            return a;
        }
        float[] fresh = new float[length];
        keep(slot, fresh);
        return fresh;
    }

    /**
     * An array of at least {@code length} floats with arbitrary contents, for a buffer whose length grows by a little
     * every step (attention scores over a growing context): it grows by half when it must, so it is rarely replaced.
     */
    float[] takeAtLeast(int length) {
        int slot = nextSlot();
        float[] a = arrays[slot];
        if (a != null && a.length >= length) {
            return a;
        }
        int grown = a == null
                ? length
                : (int) Math.min(Integer.MAX_VALUE - 8, Math.max(length, a.length + (long) a.length / 2));
        float[] fresh = new float[grown];
        keep(slot, fresh);
        return fresh;
    }

    /** Where the next request will be served from: {@link #rewind} to it to reuse the arrays taken after it. */
    int mark() {
        return next;
    }

    /**
     * Hands the arrays taken since {@code mark} out again, for a loop inside one pass (attention over a long context,
     * block by block) whose iterations take the same arrays: the slots stay as many as one iteration's.
     */
    void rewind(int mark) {
        next = mark;
    }

    private int nextSlot() {
        if (next == arrays.length) {
            arrays = Arrays.copyOf(arrays, arrays.length * 2);
        }
        return next++;
    }

    /** Keeps {@code a} in {@code slot} if the budget allows, first dropping the arrays of later slots (a larger pass's). */
    private void keep(int slot, float[] a) {
        if (a.length > MAX_KEPT_LENGTH) {
            return;
        }
        if (arrays[slot] != null) {
            kept -= arrays[slot].length;
            arrays[slot] = null;
        }
        for (int i = arrays.length - 1; i > slot && kept + a.length > MAX_KEPT_TOTAL; i--) {
            if (arrays[i] != null) {
                kept -= arrays[i].length;
                arrays[i] = null;
            }
        }
        if (kept + a.length <= MAX_KEPT_TOTAL) {
            arrays[slot] = a;
            kept += a.length;
        }
    }
}
