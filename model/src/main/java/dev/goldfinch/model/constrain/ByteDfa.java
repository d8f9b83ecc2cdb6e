package dev.goldfinch.model.constrain;

import dev.goldfinch.model.GoldFinchException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The determinised byte automaton of an {@link ByteNfa}: int states, a transition table over byte classes, and
 * only live states (each can still reach acceptance) reachable, so any prefix it accepts can be completed.
 * Knows, per state, the fewest bytes to acceptance and whether the language is finite (then its longest word).
 * Immutable.
 */
final class ByteDfa {
    static final int REJECT = -1;

    private final int[] byteClass = new int[256];
    private final int classes;
    private final int[] next; // state * classes + class
    private final boolean[] accepting;
    private final int[] distance; // fewest bytes to acceptance; Integer.MAX_VALUE for dead states
    private final int states;
    private final long longest; // longest accepted word in bytes, or -1 when unbounded
    private final boolean[] universal; // accepts every continuation

    ByteDfa(ByteNfa nfa, int start, int end, int maxStates, String field) {
        // Byte classes: bytes no edge tells apart share a column.
        boolean[] cut = new boolean[257];
        cut[0] = true;
        for (int s = 0; s < nfa.size(); s++) {
            for (int i = 0; i < nfa.rangeCount(s); i++) {
                cut[nfa.rangeLo(s, i)] = true;
                cut[nfa.rangeHi(s, i) + 1] = true;
            }
        }
        int c = -1;
        int[] representative = new int[256];
        for (int b = 0; b < 256; b++) {
            if (cut[b]) {
                representative[++c] = b;
            }
            byteClass[b] = c;
        }
        classes = c + 1;

        Map<Key, Integer> ids = new HashMap<>();
        List<int[]> sets = new ArrayList<>();
        int[] table = new int[64 * classes];
        int[] seen = new int[nfa.size()];
        int stamp = 1;
        int[] first = closure(nfa, new int[] {start}, 1, seen, stamp);
        ids.put(new Key(first), 0);
        sets.add(first);
        boolean[] mark = new boolean[nfa.size()];
        int[] buffer = new int[nfa.size()];
        for (int q = 0; q < sets.size(); q++) {
            int[] set = sets.get(q);
            if ((q + 1) * classes > table.length) {
                table = Arrays.copyOf(table, table.length * 2);
            }
            for (int k = 0; k < classes; k++) {
                int b = representative[k];
                int n = 0;
                for (int s : set) {
                    for (int i = 0; i < nfa.rangeCount(s); i++) {
                        if (nfa.rangeLo(s, i) <= b && b <= nfa.rangeHi(s, i)) {
                            int t = nfa.rangeTarget(s, i);
                            if (!mark[t]) {
                                mark[t] = true;
                                buffer[n++] = t;
                            }
                        }
                    }
                }
                for (int i = 0; i < n; i++) {
                    mark[buffer[i]] = false;
                }
                if (n == 0) {
                    table[q * classes + k] = REJECT;
                    continue;
                }
                int[] target = closure(nfa, buffer, n, seen, ++stamp);
                Key key = new Key(target);
                Integer id = ids.get(key);
                if (id == null) {
                    if (sets.size() == maxStates) {
                        throw new GoldFinchException.InvalidInput(
                                field,
                                "the schema needs more than " + maxStates
                                        + " automaton states; lower its maxLength/maxItems bounds or simplify it");
                    }
                    id = sets.size();
                    ids.put(key, id);
                    sets.add(target);
                }
                table[q * classes + k] = id;
            }
        }
        states = sets.size();
        next = Arrays.copyOf(table, states * classes);
        accepting = new boolean[states];
        for (int q = 0; q < states; q++) {
            accepting[q] = Arrays.binarySearch(sets.get(q), end) >= 0;
        }
        distance = distances();
        if (distance[0] == Integer.MAX_VALUE) {
            throw new GoldFinchException.InvalidInput(field, "the schema accepts no JSON value");
        }
        for (int i = 0; i < next.length; i++) { // cut every edge into a dead state
            if (next[i] != REJECT && distance[next[i]] == Integer.MAX_VALUE) {
                next[i] = REJECT;
            }
        }
        longest = longestWord();
        universal = universalStates();
    }

    /** Greatest fixpoint: accepting, and every byte leads to a universal state. */
    private boolean[] universalStates() {
        boolean[] u = accepting.clone();
        for (boolean changed = true; changed; ) {
            changed = false;
            for (int q = 0; q < states; q++) {
                if (!u[q]) {
                    continue;
                }
                for (int k = 0; k < classes; k++) {
                    int t = next[q * classes + k];
                    if (t == REJECT || !u[t]) {
                        u[q] = false;
                        changed = true;
                        break;
                    }
                }
            }
        }
        return u;
    }

    boolean universal(int state) {
        return universal[state];
    }

    /** Epsilon closure, sorted; {@code seen}/{@code stamp} spare a fresh array per call (stamp: this call's mark). */
    private static int[] closure(ByteNfa nfa, int[] seeds, int count, int[] seen, int stamp) {
        int[] stack = new int[Math.max(16, count)];
        int sp = 0;
        int n = 0;
        int[] out = new int[16];
        for (int i = 0; i < count; i++) {
            if (seen[seeds[i]] != stamp) {
                seen[seeds[i]] = stamp;
                if (sp == stack.length) {
                    stack = Arrays.copyOf(stack, sp * 2);
                }
                stack[sp++] = seeds[i];
            }
        }
        while (sp > 0) {
            int s = stack[--sp];
            if (n == out.length) {
                out = Arrays.copyOf(out, n * 2);
            }
            out[n++] = s;
            for (int i = 0; i < nfa.epsilonCount(s); i++) {
                int t = nfa.epsilonTarget(s, i);
                if (seen[t] != stamp) {
                    seen[t] = stamp;
                    if (sp == stack.length) {
                        stack = Arrays.copyOf(stack, sp * 2);
                    }
                    stack[sp++] = t;
                }
            }
        }
        int[] set = Arrays.copyOf(out, n);
        Arrays.sort(set);
        return set;
    }

    private int[] distances() {
        // Reverse BFS from the accepting states.
        int[][] reverse = new int[states][];
        int[] counts = new int[states];
        for (int q = 0; q < states; q++) {
            for (int k = 0; k < classes; k++) {
                int t = next[q * classes + k];
                if (t != REJECT) {
                    counts[t]++;
                }
            }
        }
        for (int q = 0; q < states; q++) {
            reverse[q] = new int[counts[q]];
            counts[q] = 0;
        }
        for (int q = 0; q < states; q++) {
            for (int k = 0; k < classes; k++) {
                int t = next[q * classes + k];
                if (t != REJECT) {
                    reverse[t][counts[t]++] = q;
                }
            }
        }
        int[] d = new int[states];
        Arrays.fill(d, Integer.MAX_VALUE);
        ArrayDeque<Integer> queue = new ArrayDeque<>();
        for (int q = 0; q < states; q++) {
            if (accepting[q]) {
                d[q] = 0;
                queue.add(q);
            }
        }
        while (!queue.isEmpty()) {
            int t = queue.poll();
            for (int q : reverse[t]) {
                if (d[q] == Integer.MAX_VALUE) {
                    d[q] = d[t] + 1;
                    queue.add(q);
                }
            }
        }
        return d;
    }

    /** Longest accepted word, or -1 when a cycle makes the language infinite. Iterative DFS (deep schemas). */
    private long longestWord() {
        long[] memo = new long[states];
        byte[] color = new byte[states]; // 0 new, 1 on stack, 2 done
        int[] stack = new int[states];
        int[] edge = new int[states];
        int sp = 0;
        stack[sp++] = 0;
        color[0] = 1;
        while (sp > 0) {
            int q = stack[sp - 1];
            if (edge[q] < classes) {
                int t = next[q * classes + edge[q]++];
                if (t == REJECT) {
                    continue;
                }
                if (color[t] == 1) {
                    return -1;
                }
                if (color[t] == 0) {
                    color[t] = 1;
                    stack[sp++] = t;
                }
                continue;
            }
            long best = accepting[q] ? 0 : Long.MIN_VALUE;
            for (int k = 0; k < classes; k++) {
                int t = next[q * classes + k];
                if (t != REJECT) {
                    best = Math.max(best, memo[t] + 1);
                }
            }
            memo[q] = best;
            color[q] = 2;
            sp--;
        }
        return memo[0];
    }

    int start() {
        return 0;
    }

    int step(int state, int b) {
        return next[state * classes + byteClass[b & 0xff]];
    }

    boolean accepting(int state) {
        return accepting[state];
    }

    /** Fewest bytes from {@code state} to an accepted word. */
    int distance(int state) {
        return distance[state];
    }

    int states() {
        return states;
    }

    /** The longest accepted word in bytes, or -1 when there is no bound. */
    long longest() {
        return longest;
    }

    /** Whether the whole of {@code text} is accepted from the start. */
    boolean matches(byte[] text) {
        int q = 0;
        for (byte b : text) {
            q = step(q, b);
            if (q == REJECT) {
                return false;
            }
        }
        return accepting[q];
    }

    private record Key(int[] set) {
        @Override
        public boolean equals(Object o) {
            return o instanceof Key k && Arrays.equals(set, k.set);
        }

        @Override
        public int hashCode() {
            return Arrays.hashCode(set);
        }

        @Override
        public String toString() {
            return Arrays.toString(set);
        }
    }
}
