package dev.goldfinch.model.sampling;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class StopSequenceMatcherTest {
    /**
     * The pathological case of a naive matcher: a stream of {@code a}s against {@code aaa…ab}, where every
     * position is a partial match that fails only at its last character. Counted automaton steps stay within
     * twice the characters seen per stop sequence (KMP's amortized bound), one character at a time or not.
     */
    @Test
    void workIsLinearInTheTextForAPathologicalStop() {
        String stop = "a".repeat(SamplingParams.MAX_STOP_LENGTH - 1) + "b";
        int chars = 200_000;
        for (int piece : new int[] {1, 7, 4096}) {
            StopSequenceMatcher m = new StopSequenceMatcher(List.of(stop, stop.substring(1)));
            long setup = m.work();
            StringBuilder emitted = new StringBuilder();
            String chunk = "a".repeat(piece);
            for (int sent = 0; sent < chars; sent += piece) {
                StopSequenceMatcher.Result r = m.push(chunk);
                assertFalse(r.stopped());
                emitted.append(r.emit());
            }
            long sent = (long) Math.ceilDiv(chars, piece) * piece;
            emitted.append(m.finish());
            assertEquals(sent, emitted.length(), "every character comes out once");
            long steps = m.work() - setup;
            assertTrue(
                    steps <= 2 * 2 * sent,
                    "piece " + piece + ": " + steps + " steps for " + sent + " characters and 2 stops;"
                            + " a quadratic matcher takes ~" + sent * stop.length());
        }
    }

    /** Against a plain reference (search all text so far after each piece) on random small texts. */
    @Test
    void agreesWithTheReferenceOnRandomStreams() {
        SplittableRandom random = new SplittableRandom(11);
        for (int round = 0; round < 5_000; round++) {
            List<String> stops = new ArrayList<>();
            for (int s = 1 + random.nextInt(3); s > 0; s--) {
                stops.add(text(random, 1 + random.nextInt(4)));
            }
            List<String> pieces = new ArrayList<>();
            for (int p = random.nextInt(8); p > 0; p--) {
                pieces.add(text(random, random.nextInt(5)));
            }
            StopSequenceMatcher m = new StopSequenceMatcher(stops);
            StringBuilder out = new StringBuilder();
            boolean stopped = false;
            for (String p : pieces) {
                StopSequenceMatcher.Result r = m.push(p);
                out.append(r.emit());
                if (r.stopped()) {
                    stopped = true;
                    break;
                }
            }
            if (!stopped) {
                out.append(m.finish());
            }
            // The reference: after each piece, the earliest occurrence in all text so far ends the stream.
            StringBuilder seen = new StringBuilder();
            String expected = null;
            for (String p : pieces) {
                seen.append(p);
                int cut = -1;
                for (String s : stops) {
                    int at = seen.indexOf(s);
                    if (at >= 0 && (cut < 0 || at < cut)) {
                        cut = at;
                    }
                }
                if (cut >= 0) {
                    expected = seen.substring(0, cut);
                    break;
                }
            }
            String context = "stops " + stops + " pieces " + pieces;
            assertEquals(expected != null, stopped, context);
            assertEquals(expected != null ? expected : seen.toString(), out.toString(), context);
        }
    }

    private static String text(SplittableRandom random, int length) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < length; i++) {
            b.append((char) ('a' + random.nextInt(2)));
        }
        return b.toString();
    }
}
