package dev.goldfinch.model.sampling;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.model.GoldFinchException;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;

class SamplerTest {
    static final float[] LOGITS = {1.0f, 3.0f, 2.0f, 2.9f, -1f, 0.5f};

    @Test
    void greedyPicksTheArgmaxAndTiesGoToTheLowestId() {
        Sampler s = new Sampler(SamplingParams.greedy(5), LOGITS.length);
        assertEquals(1, s.sample(LOGITS));
        assertEquals(0, new Sampler(SamplingParams.greedy(5), 3).sample(new float[] {2, 2, 1}));
    }

    @Test
    void topKOfOneIsGreedyAtAnyTemperature() {
        Sampler s = new Sampler(
                SamplingParams.defaults().withTemperature(5).withTopK(1).withSeed(3L), LOGITS.length);
        for (int i = 0; i < 50; i++) {
            assertEquals(1, s.sample(LOGITS));
        }
    }

    @Test
    void topPKeepsTheSmallestSetReachingP() {
        // softmax(LOGITS): token 1 ≈ 0.38, token 3 ≈ 0.35, token 2 ≈ 0.14 ... top_p 0.7 keeps {1, 3}.
        Sampler s = new Sampler(SamplingParams.defaults().withTopP(0.7).withSeed(11L), LOGITS.length);
        int[] hits = new int[LOGITS.length];
        for (int i = 0; i < 20000; i++) {
            hits[s.sample(LOGITS)]++;
        }
        assertEquals(0, hits[0] + hits[2] + hits[4] + hits[5], "only tokens 1 and 3 may appear");
        double expected1 = Math.exp(3.0) / (Math.exp(3.0) + Math.exp(2.9));
        assertEquals(expected1, hits[1] / 20000.0, 0.015);
    }

    @Test
    void minPDropsTokensFarBelowTheTop() {
        Sampler s = new Sampler(SamplingParams.defaults().withMinP(0.5).withSeed(5L), LOGITS.length);
        for (int i = 0; i < 2000; i++) {
            int t = s.sample(LOGITS);
            assertTrue(t == 1 || t == 3, "token " + t + " is below min_p");
        }
    }

    @Test
    void fullDistributionFrequenciesMatchSoftmax() {
        Sampler s = new Sampler(SamplingParams.defaults().withTemperature(2).withSeed(9L), LOGITS.length);
        int[] hits = new int[LOGITS.length];
        int n = 40000;
        for (int i = 0; i < n; i++) {
            hits[s.sample(LOGITS)]++;
        }
        double z = 0;
        for (float l : LOGITS) {
            z += Math.exp(l / 2);
        }
        for (int t = 0; t < LOGITS.length; t++) {
            assertEquals(Math.exp(LOGITS[t] / 2) / z, hits[t] / (double) n, 0.012, "token " + t);
        }
    }

    @Test
    void penaltiesMoveTheArgmaxAndDecay() {
        SamplingParams presence = SamplingParams.greedy(5).withPenalties(0.5, 0, 1, 1);
        Sampler s = new Sampler(presence, LOGITS.length);
        s.accept(1);
        assertEquals(3, s.sample(LOGITS), "presence penalty moves off token 1");

        Sampler freq = new Sampler(SamplingParams.greedy(5).withPenalties(0, 0.05, 1, 1), LOGITS.length);
        freq.accept(1);
        assertEquals(1, freq.sample(LOGITS), "one occurrence costs 0.05 < 0.1 margin");
        freq.accept(1);
        freq.accept(1);
        assertEquals(3, freq.sample(LOGITS), "three occurrences cost 0.15");

        Sampler decayed = new Sampler(SamplingParams.greedy(5).withPenalties(0, 0.15, 1, 0.5), LOGITS.length);
        decayed.accept(1);
        assertEquals(3, decayed.sample(LOGITS));
        decayed.accept(5);
        decayed.accept(5); // token 1's count decays to 0.25 → penalty 0.0375
        assertEquals(1, decayed.sample(LOGITS));

        Sampler rep = new Sampler(SamplingParams.greedy(5).withPenalties(0, 0, 1.2, 1), LOGITS.length);
        rep.observePrompt(new int[] {1});
        assertEquals(3, rep.sample(LOGITS), "3.0/1.2 = 2.5 < 2.9");
    }

    @Test
    void seedsMakeRunsReproducible() {
        Supplier<int[]> run = () -> {
            Sampler s = new Sampler(SamplingParams.defaults().withTopP(0.95).withSeed(42L), 1000);
            Random r = new Random(7);
            int[] out = new int[200];
            float[] logits = new float[1000];
            for (int i = 0; i < out.length; i++) {
                for (int j = 0; j < logits.length; j++) {
                    logits[j] = (float) r.nextGaussian();
                }
                out[i] = s.sample(logits);
                s.accept(out[i]);
            }
            return out;
        };
        assertArrayEquals(run.get(), run.get());
        Sampler a = new Sampler(SamplingParams.defaults().withSeed(1L), 1000);
        Sampler b = new Sampler(SamplingParams.defaults().withSeed(2L), 1000);
        float[] flat = new float[1000];
        int same = 0;
        for (int i = 0; i < 50; i++) {
            same += a.sample(flat) == b.sample(flat) ? 1 : 0;
        }
        assertTrue(same < 10, "different seeds gave the same tokens " + same + " times");
    }

    @Test
    void aReplayedSamplerContinuesExactlyWhereTheFirstStopped() {
        for (SamplingParams params : List.of(
                SamplingParams.defaults()
                        .withTopP(0.9)
                        .withPenalties(0.3, 0.2, 1.1, 0.95)
                        .withSeed(42L),
                SamplingParams.defaults().withTemperature(1).withSeed(7L),
                SamplingParams.greedy(100).withPenalties(0.5, 0.5, 1.3, 0.9))) {
            // Steps that look alike, so the penalty counts decide what greedy picks, not just the logits.
            Random r = new Random(3);
            float[] base = new float[1000];
            for (int j = 0; j < base.length; j++) {
                base[j] = (float) r.nextGaussian() * 2;
            }
            float[][] logits = new float[80][1000];
            for (float[] row : logits) {
                for (int j = 0; j < row.length; j++) {
                    row[j] = base[j] + (float) r.nextGaussian() * 0.05f;
                }
            }
            int[] prompt = {5, 17, 99};
            Sampler first = new Sampler(params, 1000);
            first.observePrompt(prompt);
            int[] undisturbed = new int[logits.length];
            for (int i = 0; i < logits.length; i++) {
                undisturbed[i] = first.sample(logits[i]);
                first.accept(undisturbed[i]);
            }
            int cut = 31;
            Sampler resumed = new Sampler(params, 1000);
            resumed.observePrompt(prompt);
            resumed.replay(java.util.Arrays.copyOf(undisturbed, cut));
            int[] continued = undisturbed.clone();
            for (int i = cut; i < logits.length; i++) {
                continued[i] = resumed.sample(logits[i]);
                resumed.accept(continued[i]);
            }
            assertArrayEquals(undisturbed, continued, params.toString());
            // Without the replay the seeded draws start over, so a resumed run would differ: the test can fail.
            Sampler fresh = new Sampler(params, 1000);
            fresh.observePrompt(prompt);
            int differs = 0;
            for (int i = cut; i < logits.length; i++) {
                int t = fresh.sample(logits[i]);
                fresh.accept(t);
                differs += t != undisturbed[i] ? 1 : 0;
            }
            assertTrue(differs > 0, "a sampler without the replay gave the same tokens: " + params);
        }
    }

    @Test
    void callerLogitsAreUntouchedAndLogprobsReported() {
        float[] copy = LOGITS.clone();
        Sampler s = new Sampler(
                SamplingParams.defaults()
                        .withTemperature(0.7)
                        .withPenalties(1, 1, 1.3, 1)
                        .withLogprobs(2)
                        .withSeed(1L),
                LOGITS.length);
        s.accept(1);
        Sampler.Sample r = s.sampleWithLogprobs(LOGITS);
        assertArrayEquals(copy, LOGITS);
        assertEquals(2, r.topTokens().length);
        assertTrue(r.logprob() <= 0);
        assertTrue(r.topLogprobs()[0] >= r.topLogprobs()[1]);
    }

    @Test
    void vectorScoreAgreesWithAPlainDoubleSoftmax() {
        // A whole vocabulary plus a tail that is not a multiple of any vector width, offset into a larger array.
        int vocab = 65536 + 13;
        float[] logits = new float[vocab + 7];
        Random r = new Random(3);
        for (int i = 0; i < logits.length; i++) {
            logits[i] = (float) (r.nextGaussian() * 4);
        }
        logits[5 + vocab - 2] = 30f; // the largest sits in the scalar tail
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < vocab; i++) {
            max = Math.max(max, logits[5 + i]);
        }
        double sum = 0;
        for (int i = 0; i < vocab; i++) {
            sum += Math.exp(logits[5 + i] - max);
        }
        double logZ = max + Math.log(sum);
        for (int token : new int[] {0, 17, vocab - 2, vocab - 1}) {
            Sampler.Sample s = Sampler.score(logits, 5, vocab, token, 3);
            assertEquals(logits[5 + token] - logZ, s.logprob(), 1e-5, "token " + token);
            assertEquals(vocab - 2, s.topTokens()[0]);
        }
        assertEquals(30f, Sampler.max(logits, 5, vocab));
    }

    @Test
    void argmaxIsTheFirstLargestAndKeepsTheScalarRuleForNaN() {
        float[] a = new float[1000];
        a[400] = 2;
        a[700] = 2;
        a[999] = 1;
        assertEquals(400, Sampler.argmax(a, a.length));
        a[999] = 3; // in the tail of any vector width
        assertEquals(999, Sampler.argmax(a, a.length));
        assertEquals(400, Sampler.argmax(a, 999));
        float[] nan = {1, Float.NaN, 5, 2};
        assertEquals(2, Sampler.argmax(nan, nan.length)); // NaN compares false: the scalar scan skips it
    }

    @Test
    void invalidParametersNameTheField() {
        SamplingParams d = SamplingParams.defaults();
        assertField("temperature", () -> d.withTemperature(-0.1));
        assertField("top_p", () -> d.withTopP(0));
        assertField("top_p", () -> d.withTopP(1.5));
        assertField("min_p", () -> d.withMinP(1.1));
        assertField("top_k", () -> d.withTopK(-1));
        assertField("max_tokens", () -> d.withMaxTokens(0));
        assertField("max_tokens", () -> d.withMaxTokens(5000).checkMaxTokens(4096));
        assertField("repetition_penalty", () -> d.withPenalties(0, 0, 0, 1));
        assertField("presence_penalty", () -> d.withPenalties(3, 0, 1, 1));
        assertField("penalty_decay", () -> d.withPenalties(0, 0, 1, 0));
        assertField("stop", () -> d.withStop(List.of("")));
        assertField("stop", () -> d.withStop(Collections.nCopies(17, "x")));
        assertField("stop", () -> d.withStop(List.of("x".repeat(SamplingParams.MAX_STOP_LENGTH + 1))));
        assertField("logprobs", () -> d.withLogprobs(21));
    }

    private static void assertField(String field, Runnable r) {
        var e = assertThrows(GoldFinchException.InvalidInput.class, r::run);
        assertTrue(e.getMessage().startsWith(field), e.getMessage());
    }

    @Test
    void stopSequencesSplitAcrossPieces() {
        StopSequenceMatcher m = new StopSequenceMatcher(List.of("\n\nUser:", "END"));
        assertEquals("Hello", m.push("Hello").emit());
        StopSequenceMatcher.Result r = m.push(" there\n");
        assertEquals(" there", r.emit(), "a possible stop start is held back");
        r = m.push("\nUs");
        assertEquals("", r.emit());
        r = m.push("er: hi");
        assertTrue(r.stopped());
        assertEquals("", r.emit());
        assertEquals("", m.finish());

        StopSequenceMatcher n = new StopSequenceMatcher(List.of("END"));
        assertEquals("ab", n.push("abE").emit());
        assertEquals("EN", n.push("N").emit() + n.finish());
        StopSequenceMatcher o = new StopSequenceMatcher(List.of("END"));
        StopSequenceMatcher.Result done = o.push("xENDy");
        assertTrue(done.stopped());
        assertEquals("x", done.emit());
        assertNotEquals(
                true, new StopSequenceMatcher(List.of()).push("anything").stopped());
    }
}
