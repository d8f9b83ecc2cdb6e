package dev.goldfinch.model.sampling;

import java.util.List;

/**
 * Finds stop sequences in streamed text. Text that could still be the start of a stop sequence is
 * held back; text of a completed stop sequence is never emitted (OpenAI behaviour).
 */
public final class StopSequenceMatcher {
    /** What may be sent now, and whether a stop sequence completed (generation ends). */
    public record Result(String emit, boolean stopped) {}

    private final List<String> stops;
    private final StringBuilder held = new StringBuilder();
    private boolean stopped;

    public StopSequenceMatcher(List<String> stops) {
        this.stops = List.copyOf(stops);
    }

    public Result push(String piece) {
        if (stopped) {
            return new Result("", true);
        }
        held.append(piece);
        int first = -1;
        for (String s : stops) {
            int at = held.indexOf(s);
            if (at >= 0 && (first < 0 || at < first)) {
                first = at;
            }
        }
        if (first >= 0) {
            stopped = true;
            String emit = held.substring(0, first);
            held.setLength(0);
            return new Result(emit, true);
        }
        int keep = 0;
        for (String s : stops) {
            for (int k = Math.min(s.length() - 1, held.length()); k > keep; k--) {
                if (held.toString().regionMatches(held.length() - k, s, 0, k)) {
                    keep = k;
                    break;
                }
            }
        }
        String emit = held.substring(0, held.length() - keep);
        held.delete(0, held.length() - keep);
        return new Result(emit, false);
    }

    /** Releases held-back text when generation ends for another reason. */
    public String finish() {
        String rest = stopped ? "" : held.toString();
        held.setLength(0);
        return rest;
    }
}
