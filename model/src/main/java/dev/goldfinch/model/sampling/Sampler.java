package dev.goldfinch.model.sampling;

import dev.goldfinch.model.tensor.Kernels;
import java.util.Arrays;
import java.util.SplittableRandom;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Picks tokens for one sequence: penalties, then temperature, top-k, top-p and min-p, then a draw
 * from the renormalised distribution. Seeded samplers are reproducible and independent of each
 * other. Not thread-safe; allocates its buffers once.
 */
public final class Sampler {
    /** A chosen token, its log-probability under the final distribution, and the top alternatives. */
    public record Sample(int token, float logprob, int[] topTokens, float[] topLogprobs) {}

    private static final VectorSpecies<Float> LANES = FloatVector.SPECIES_PREFERRED;

    private final SamplingParams p;
    private final int vocab;
    private final SplittableRandom random;
    private final float[] work;
    private final int[] order;
    /** Decayed occurrence counts of generated tokens, stored divided by {@code scale}. */
    private final float[] counts;

    /** logit_bias as parallel arrays, so a step adds it without boxing. */
    private final int[] biasTokens;

    private final float[] biases;
    private final boolean[] inPrompt;
    private final int[] touched;
    private int touchedCount;
    private double scale = 1;

    public Sampler(SamplingParams params, int vocabSize) {
        this.p = params;
        this.vocab = vocabSize;
        this.random = params.seed() == null ? new SplittableRandom() : new SplittableRandom(params.seed());
        this.work = new float[vocabSize];
        this.order = new int[vocabSize];
        this.counts = new float[vocabSize];
        this.inPrompt = new boolean[vocabSize];
        this.touched = new int[vocabSize];
        this.biasTokens = new int[params.logitBias().size()];
        this.biases = new float[biasTokens.length];
        int i = 0;
        for (var b : params.logitBias().entrySet()) {
            if (b.getKey() >= vocabSize) {
                throw new dev.goldfinch.model.GoldFinchException.InvalidInput(
                        "logit_bias",
                        "logit_bias key " + b.getKey() + " is outside the vocabulary [0, " + vocabSize + ")");
            }
            biasTokens[i] = b.getKey();
            biases[i++] = b.getValue();
        }
    }

    /** Prompt tokens count for the repetition penalty only (as in vLLM), not for presence/frequency. */
    public void observePrompt(int[] tokens) {
        for (int t : tokens) {
            if (t >= 0 && t < vocab) {
                inPrompt[t] = true;
            }
        }
    }

    /** Records a generated token: every count decays by penalty_decay, then this one gains 1. */
    public void accept(int token) {
        scale /= p.penaltyDecay();
        if (scale > 1e30) { // renormalise before the stored counts lose precision
            for (int i = 0; i < touchedCount; i++) {
                counts[touched[i]] /= (float) scale;
            }
            scale = 1;
        }
        if (counts[token] == 0) {
            touched[touchedCount++] = token;
        }
        counts[token] += (float) scale;
    }

    /**
     * Brings a fresh sampler (prompt observed) to where the one that chose {@code generated} stood after them:
     * one draw per token when sampling (greedy draws none) and every token counted for the penalties. A
     * replica resuming another's sequence then makes exactly the draws the first would have made.
     */
    public void replay(int[] generated) {
        for (int token : generated) {
            if (!p.isGreedy()) {
                random.nextDouble(); // sampleWithLogprobs draws exactly one number per token
            }
            accept(token);
        }
    }

    public int sample(float[] logits) {
        return sampleWithLogprobs(logits).token();
    }

    public Sample sampleWithLogprobs(float[] logits) {
        System.arraycopy(logits, 0, work, 0, vocab);
        applyPenalties();
        if (p.isGreedy()) {
            return finish(argmax(work, vocab));
        }
        float inv = (float) (1.0 / p.temperature());
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < vocab; i++) {
            work[i] *= inv;
            max = Math.max(max, work[i]);
        }
        // Candidates, most likely first. Without top-k/top-p every token stays and no sort is needed.
        int n = vocab;
        boolean filtered = p.topK() > 0 || p.topP() < 1 || p.minP() > 0;
        if (filtered) {
            n = sortedCandidates(max);
        }
        double total = 0;
        if (!filtered) {
            for (int i = 0; i < vocab; i++) {
                total += Math.exp(work[i] - max);
            }
            double u = random.nextDouble() * total;
            double acc = 0;
            int chosen = vocab - 1;
            for (int i = 0; i < vocab; i++) {
                acc += Math.exp(work[i] - max);
                if (acc > u) {
                    chosen = i;
                    break;
                }
            }
            return finish(chosen);
        }
        double[] probs = new double[n];
        for (int i = 0; i < n; i++) {
            probs[i] = Math.exp(work[order[i]] - max);
            total += probs[i];
        }
        int keep = n;
        if (p.topP() < 1) {
            double acc = 0;
            for (int i = 0; i < n; i++) {
                acc += probs[i] / total;
                if (acc >= p.topP()) {
                    keep = i + 1;
                    break;
                }
            }
        }
        if (p.minP() > 0) {
            double floor = p.minP() * probs[0];
            int k = 1;
            while (k < keep && probs[k] >= floor) {
                k++;
            }
            keep = k;
        }
        double kept = 0;
        for (int i = 0; i < keep; i++) {
            kept += probs[i];
        }
        double u = random.nextDouble() * kept;
        double acc = 0;
        int chosen = order[keep - 1];
        for (int i = 0; i < keep; i++) {
            acc += probs[i];
            if (acc > u) {
                chosen = order[i];
                break;
            }
        }
        return finish(chosen);
    }

    /**
     * Sorts the candidates that can survive top-k into {@code order[0..n)}, most likely first. Tokens
     * far below the maximum (probability under 1e-12 of the top one) can never matter and are skipped,
     * which keeps the sort short for a 65k vocabulary.
     */
    private int sortedCandidates(float max) {
        float threshold = max - 27.7f; // e^-27.7 ≈ 1e-12
        int n = 0;
        for (int i = 0; i < vocab; i++) {
            if (work[i] >= threshold) {
                order[n++] = i;
            }
        }
        Integer[] boxed = new Integer[n];
        for (int i = 0; i < n; i++) {
            boxed[i] = order[i];
        }
        Arrays.sort(boxed, (a, b) -> work[a] != work[b] ? Float.compare(work[b], work[a]) : Integer.compare(a, b));
        for (int i = 0; i < n; i++) {
            order[i] = boxed[i];
        }
        return p.topK() > 0 ? Math.min(n, p.topK()) : n;
    }

    private void applyPenalties() {
        for (int i = 0; i < biasTokens.length; i++) {
            work[biasTokens[i]] += biases[i];
        }
        if (p.repetitionPenalty() != 1) {
            float rp = (float) p.repetitionPenalty();
            for (int t = 0; t < vocab; t++) {
                if (inPrompt[t] || counts[t] > 0) {
                    work[t] = work[t] > 0 ? work[t] / rp : work[t] * rp;
                }
            }
        }
        if (p.presencePenalty() != 0 || p.frequencyPenalty() != 0) {
            for (int i = 0; i < touchedCount; i++) {
                int t = touched[i];
                double count = counts[t] / scale;
                work[t] -= (float) (p.presencePenalty() + p.frequencyPenalty() * count);
            }
        }
    }

    /** Log-probabilities under the final (penalised, tempered, unfiltered) distribution. */
    private Sample finish(int token) {
        return score(work, 0, vocab, token, p.logprobs());
    }

    /**
     * {@code token}'s log-probability under the softmax of {@code logits[from .. from + vocab)}, and the {@code k}
     * most likely tokens with theirs (ties to the lower id): a chosen token's logprobs, or a prompt position's.
     */
    public static Sample score(float[] logits, int from, int vocab, int token, int k) {
        float max = max(logits, from, vocab);
        double logZ = max + Math.log(sumExp(logits, from, vocab, max));
        int[] top = new int[k];
        float[] topLp = new float[k];
        if (k > 0) {
            Arrays.fill(top, -1);
            for (int i = 0; i < vocab; i++) {
                for (int j = 0; j < k; j++) {
                    if (top[j] < 0 || logits[from + i] > logits[from + top[j]]) {
                        System.arraycopy(top, j, top, j + 1, k - j - 1);
                        top[j] = i;
                        break;
                    }
                }
            }
            for (int j = 0; j < k; j++) {
                topLp[j] = (float) (logits[from + top[j]] - logZ);
            }
        }
        return new Sample(token, (float) (logits[from + token] - logZ), top, topLp);
    }

    /**
     * The first index of the largest of {@code a[0 .. n)}, as a scalar scan keeping the first strictly larger value
     * finds it; the maximum itself is found a vector at a time (a decode step samples every sequence of its batch on
     * the scheduler thread, so a 65k-token scan per token is on the path of every streamed token).
     */
    static int argmax(float[] a, int n) {
        float max = max(a, 0, n);
        for (int i = 0; i < n; i++) {
            if (a[i] == max) {
                return i;
            }
        }
        int best = 0; // NaN present: the scalar rule, whatever it makes of NaN
        for (int i = 1; i < n; i++) {
            if (a[i] > a[best]) {
                best = i;
            }
        }
        return best;
    }

    /** The largest of {@code a[from .. from + n)} (NaN if any is NaN), exact in any lane order. */
    static float max(float[] a, int from, int n) {
        int bound = LANES.loopBound(n);
        float max = Float.NEGATIVE_INFINITY;
        if (bound > 0) {
            FloatVector acc = FloatVector.broadcast(LANES, Float.NEGATIVE_INFINITY);
            for (int i = 0; i < bound; i += LANES.length()) {
                acc = acc.max(FloatVector.fromArray(LANES, a, from + i));
            }
            max = acc.reduceLanes(VectorOperators.MAX);
        }
        for (int i = bound; i < n; i++) {
            max = Math.max(max, a[from + i]);
        }
        return max;
    }

    /** Entries of the vocabulary exponentiated at a time: the scratch stays in the first-level cache. */
    private static final int EXP_CHUNK = 1024;

    /**
     * {@code sum e^(a[i] - max)} over {@code a[from .. from + n)}, with the kernels' vector exp (within 2 ulp of
     * Math.exp, the same bits in every compilation) summed per lane in float over a chunk, then the lanes in order
     * in double: reproducible run to run on one machine (the lane count, so the last bits, follow the vector width).
     */
    static double sumExp(float[] a, int from, int n, float max) {
        float[] chunk = new float[Math.min(n, EXP_CHUNK)];
        float[] lanes = new float[LANES.length()];
        double sum = 0;
        for (int c = 0; c < n; c += EXP_CHUNK) {
            int len = Math.min(EXP_CHUNK, n - c);
            for (int i = 0; i < len; i++) {
                chunk[i] = a[from + c + i] - max;
            }
            Kernels.expInPlace(chunk, 0, len);
            int bound = LANES.loopBound(len);
            FloatVector acc = FloatVector.zero(LANES);
            for (int i = 0; i < bound; i += LANES.length()) {
                acc = acc.add(FloatVector.fromArray(LANES, chunk, i));
            }
            acc.intoArray(lanes, 0);
            for (float lane : lanes) {
                sum += lane;
            }
            for (int i = bound; i < len; i++) {
                sum += chunk[i];
            }
        }
        return sum;
    }
}
