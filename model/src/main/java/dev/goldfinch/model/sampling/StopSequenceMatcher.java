package dev.goldfinch.model.sampling;

import java.util.List;

/**
 * Finds stop sequences in streamed text. Text that could still be the start of a stop sequence is
 * held back; text of a completed stop sequence is never emitted (OpenAI behaviour).
 *
 * <p>Each stop sequence runs as a Knuth–Morris–Pratt automaton over the characters as they arrive, so the
 * work is linear in the text (amortized at most two steps per character and stop sequence), whatever the
 * client chose as stops: {@code "aaa…b"} against a stream of {@code a}s costs what any other text does.
 */
public final class StopSequenceMatcher {
    /** What may be sent now, and whether a stop sequence completed (generation ends). */
    public record Result(String emit, boolean stopped) {}

    private final String[] stops;
    /** Per stop: KMP failure function, {@code fail[i]} = longest proper border of {@code stop[0..i]}. */
    private final int[][] fail;
    /** Per stop: how many of its leading characters the text now ends with. */
    private final int[] matched;
    /** Text not yet emitted starts at {@code held[start]}; compacted when half of it is spent. */
    private final StringBuilder held = new StringBuilder();

    private int start;
    private boolean stopped;
    private long work;

    public StopSequenceMatcher(List<String> stops) {
        this.stops = stops.toArray(String[]::new);
        this.fail = new int[this.stops.length][];
        this.matched = new int[this.stops.length];
        for (int s = 0; s < this.stops.length; s++) {
            fail[s] = failureFunction(this.stops[s]);
        }
    }

    private int[] failureFunction(String s) {
        int[] f = new int[s.length()];
        int k = 0;
        for (int i = 1; i < s.length(); i++) {
            while (k > 0 && s.charAt(i) != s.charAt(k)) {
                k = f[k - 1];
                work++;
            }
            if (s.charAt(i) == s.charAt(k)) {
                k++;
            }
            f[i] = k;
            work++;
        }
        return f;
    }

    public Result push(String piece) {
        if (stopped) {
            return new Result("", true);
        }
        int base = held.length();
        held.append(piece);
        int firstStop = -1; // where the earliest-starting completed stop sequence begins, in held
        for (int s = 0; s < stops.length; s++) {
            String stop = stops[s];
            int k = matched[s];
            for (int i = 0; i < piece.length(); i++) {
                char c = piece.charAt(i);
                while (k > 0 && stop.charAt(k) != c) {
                    k = fail[s][k - 1];
                    work++;
                }
                if (stop.charAt(k) == c) {
                    k++;
                }
                work++;
                if (k == stop.length()) {
                    int at = base + i + 1 - stop.length();
                    firstStop = firstStop < 0 ? at : Math.min(firstStop, at);
                    break; // later occurrences of this stop start later
                }
            }
            matched[s] = k;
        }
        if (firstStop >= 0) {
            stopped = true;
            String emit = held.substring(start, Math.max(start, firstStop));
            held.setLength(0);
            start = 0;
            return new Result(emit, true);
        }
        int keep = 0;
        for (int k : matched) {
            keep = Math.max(keep, k);
        }
        int end = Math.max(start, held.length() - keep);
        String emit = held.substring(start, end);
        start = end;
        if (start > held.length() / 2) {
            held.delete(0, start);
            start = 0;
        }
        return new Result(emit, false);
    }

    /** Releases held-back text when generation ends for another reason. */
    public String finish() {
        String rest = stopped ? "" : held.substring(start);
        held.setLength(0);
        start = 0;
        return rest;
    }

    /** Automaton steps taken so far: what a test bounds to show the matcher is linear in its input. */
    public long work() {
        return work;
    }
}
