package dev.goldfinch.model.constrain;

import dev.goldfinch.model.GoldFinchException;
import java.util.Arrays;

/**
 * A Thompson-style byte NFA under construction: states with epsilon edges and byte-range edges. Fragments are
 * (start, end) state pairs wired together by the builders below; a builder never reuses a fragment, so callers
 * build a fresh one for every occurrence. Bounded by {@code maxStates} so a hostile schema fails fast.
 */
final class ByteNfa {
    /** A piece of automaton: enters at {@code start}, leaves at {@code end}. */
    record Fragment(int start, int end) {}

    private final int maxStates;
    private final String field;
    private int count;
    private int[][] epsilon = new int[64][];
    private int[] epsilonCount = new int[64];
    // Byte edges per state, as flat triples (lo, hi, target).
    private int[][] ranges = new int[64][];
    private int[] rangeCount = new int[64];

    ByteNfa(int maxStates, String field) {
        this.maxStates = maxStates;
        this.field = field;
    }

    int size() {
        return count;
    }

    int state() {
        if (count == maxStates) {
            throw new GoldFinchException.InvalidInput(
                    field, "the schema compiles to more than " + maxStates + " automaton states; simplify it");
        }
        if (count == epsilon.length) {
            int n = count * 2;
            epsilon = Arrays.copyOf(epsilon, n);
            epsilonCount = Arrays.copyOf(epsilonCount, n);
            ranges = Arrays.copyOf(ranges, n);
            rangeCount = Arrays.copyOf(rangeCount, n);
        }
        return count++;
    }

    void epsilon(int from, int to) {
        int[] e = epsilon[from];
        if (e == null) {
            e = epsilon[from] = new int[2];
        } else if (epsilonCount[from] == e.length) {
            e = epsilon[from] = Arrays.copyOf(e, e.length * 2);
        }
        e[epsilonCount[from]++] = to;
    }

    void range(int from, int lo, int hi, int to) {
        int[] r = ranges[from];
        if (r == null) {
            r = ranges[from] = new int[6];
        } else if (rangeCount[from] * 3 == r.length) {
            r = ranges[from] = Arrays.copyOf(r, r.length * 2);
        }
        int i = rangeCount[from]++ * 3;
        r[i] = lo;
        r[i + 1] = hi;
        r[i + 2] = to;
    }

    int epsilonCount(int s) {
        return epsilonCount[s];
    }

    int epsilonTarget(int s, int i) {
        return epsilon[s][i];
    }

    int rangeCount(int s) {
        return rangeCount[s];
    }

    int rangeLo(int s, int i) {
        return ranges[s][i * 3];
    }

    int rangeHi(int s, int i) {
        return ranges[s][i * 3 + 1];
    }

    int rangeTarget(int s, int i) {
        return ranges[s][i * 3 + 2];
    }

    // ---- fragment builders ----

    Fragment empty() {
        int s = state();
        return new Fragment(s, s);
    }

    Fragment bytes(int lo, int hi) {
        int s = state();
        int e = state();
        range(s, lo, hi, e);
        return new Fragment(s, e);
    }

    Fragment literal(byte[] text) {
        int s = state();
        int at = s;
        for (byte b : text) {
            int next = state();
            range(at, b & 0xff, b & 0xff, next);
            at = next;
        }
        return new Fragment(s, at);
    }

    Fragment literal(String ascii) {
        return literal(ascii.getBytes(java.nio.charset.StandardCharsets.UTF_8));
    }

    Fragment seq(Fragment... parts) {
        if (parts.length == 0) {
            return empty();
        }
        for (int i = 1; i < parts.length; i++) {
            epsilon(parts[i - 1].end(), parts[i].start());
        }
        return new Fragment(parts[0].start(), parts[parts.length - 1].end());
    }

    Fragment union(java.util.List<Fragment> parts) {
        int s = state();
        int e = state();
        for (Fragment f : parts) {
            epsilon(s, f.start());
            epsilon(f.end(), e);
        }
        return new Fragment(s, e);
    }

    Fragment optional(Fragment f) {
        int s = state();
        int e = state();
        epsilon(s, f.start());
        epsilon(f.end(), e);
        epsilon(s, e);
        return new Fragment(s, e);
    }

    /** Zero or more repetitions of {@code f}. */
    Fragment star(Fragment f) {
        int s = state();
        int e = state();
        epsilon(s, f.start());
        epsilon(f.end(), s);
        epsilon(s, e);
        return new Fragment(s, e);
    }
}
