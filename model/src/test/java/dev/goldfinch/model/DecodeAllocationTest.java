package dev.goldfinch.model;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.goldfinch.model.state.SequenceState;
import dev.goldfinch.model.tensor.DType;
import dev.goldfinch.model.tensor.Kernels;
import dev.goldfinch.model.tensor.Matrix;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * A steady batched decode allocates no activations: every array of a step comes from the thread's scratch, and
 * the states' rows grow inside their reserve. Measured in bytes allocated by the calling thread and the engine's
 * gang, per token, after warm-up; what is left is a few small objects per step (lambdas, the batch's bookkeeping).
 */
class DecodeAllocationTest {
    private static final int WARM_UP = 1500;
    private static final int STEPS = 500;

    @ParameterizedTest
    @CsvSource({"finch, 4", "goldfinch, 1", "goldfinch, 4"})
    void steadyDecodeAllocatesAlmostNothingPerToken(String name, int batch) {
        GoldFinchModel model = ModelLoader.load(Golden.resource(name).resolve("weights.safetensors"));
        long activationsPerToken = activationBytes(model.config());
        long perToken = perToken(model, batch);
        System.out.println(name + " b" + batch + ": " + perToken + " B/token allocated; one token's activations "
                + activationsPerToken + " B");
        assertTrue(
                perToken * 20 < activationsPerToken,
                name + " b" + batch + " decode allocates " + perToken + " B per token");
    }

    /** Bytes allocated per token by a steady batched decode, after warm-up; closes the model. */
    private static long perToken(GoldFinchModel model, int batch) {
        try (model) {
            int vocab = model.config().vocabSize();
            List<GoldFinchModel.Segment> segments = new ArrayList<>();
            float[][] logits = new float[batch][vocab];
            for (int s = 0; s < batch; s++) {
                SequenceState state = model.newState();
                model.prefill(state, new int[] {1 + s, 2, 3, 4, 5, 6, 7, 8});
                state.reserve(
                        state.length() + WARM_UP + STEPS); // GOLD K/V grow by copying otherwise (amortized, but lumpy)
                segments.add(new GoldFinchModel.Segment(state, new int[] {9 + s}, 0));
            }
            for (int i = 0; i < WARM_UP; i++) { // warm-up: compiled, and the scratch holds this shape's arrays
                step(model, segments, logits);
            }
            long before = Kernels.allocatedBytesHereAndInGang();
            assumeTrue(before >= 0, "this JVM does not count allocated bytes per thread");
            for (int i = 0; i < STEPS; i++) {
                step(model, segments, logits);
            }
            return (Kernels.allocatedBytesHereAndInGang() - before) / ((long) STEPS * batch);
        }
    }

    /**
     * A matrix of fewer rows than a panel (a vector of outputs) costs no more per token than a whole panel: the golden
     * GoldFinch's 8-wide key compression is a partial panel on AVX-512 (16 lanes) but not on AVX2, and its masked
     * vector store once cost 800 B per token there. Two models of the golden shape at half width, whose compressed
     * keys are one vector and half a vector wide, reproduce that on any machine.
     */
    @Test
    void aPartialPanelAllocatesNoMoreThanAWholeOne() {
        long whole = perToken(halfWidthGolden(Matrix.PANEL), 1);
        long partial = perToken(halfWidthGolden(Matrix.PANEL / 2), 1);
        System.out.println("half-width goldfinch b1: " + whole + " B/token with a whole key panel, " + partial
                + " with half of one");
        assertTrue(
                partial * 10 <= whole * 11,
                "a partial panel allocates " + partial + " B per token, a whole one " + whole);
    }

    private static GoldFinchModel halfWidthGolden(int compressedDim) {
        ModelConfig g;
        try (GoldFinchModel golden =
                ModelLoader.load(Golden.resource("goldfinch").resolve("weights.safetensors"))) {
            g = golden.config();
        }
        var half = new ModelConfig(
                g.architecture(),
                g.nLayer(),
                g.nEmbd() / 2,
                g.dimFfn() / 2,
                g.headSize() / 2,
                g.vocabSize(),
                g.finchLayers(),
                compressedDim,
                g.maaLoraRank() / 2,
                g.decayLoraRank() / 2,
                g.valueLoraRank() / 2,
                g.goldQueryLoraRank() / 2,
                g.goldKvLoraRank() / 2,
                g.goldKeyLoraRank() / 2,
                g.goldValueLoraRank() / 2,
                0,
                0);
        return RandomWeights.model(half, 7, DType.F32);
    }

    /** Feeds each sequence the argmax of its last logits (so the prompts stay distinct and realistic). */
    private static void step(GoldFinchModel model, List<GoldFinchModel.Segment> segments, float[][] logits) {
        model.forward(segments, logits);
        for (int s = 0; s < segments.size(); s++) {
            int best = 0;
            for (int t = 1; t < logits[s].length; t++) {
                if (logits[s][t] > logits[s][best]) {
                    best = t;
                }
            }
            segments.get(s).tokens()[0] = best;
        }
    }

    /** A rough lower bound on one token's activation floats: a few rows of every layer's width plus the logits. */
    private static long activationBytes(ModelConfig c) {
        return 4L * (c.nLayer() * (8L * c.nEmbd() + c.dimFfn()) + c.vocabSize());
    }
}
