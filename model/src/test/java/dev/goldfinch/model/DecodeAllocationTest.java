package dev.goldfinch.model;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.goldfinch.model.state.SequenceState;
import dev.goldfinch.model.tensor.Kernels;
import java.util.ArrayList;
import java.util.List;
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
        try (GoldFinchModel model = ModelLoader.load(Golden.resource(name).resolve("weights.safetensors"))) {
            int vocab = model.config().vocabSize();
            List<GoldFinchModel.Segment> segments = new ArrayList<>();
            float[][] logits = new float[batch][vocab];
            for (int s = 0; s < batch; s++) {
                SequenceState state = model.newState();
                model.prefill(state, new int[]{1 + s, 2, 3, 4, 5, 6, 7, 8});
                state.reserve(state.length() + WARM_UP + STEPS); // GOLD K/V grow by copying otherwise (amortized, but lumpy)
                segments.add(new GoldFinchModel.Segment(state, new int[]{9 + s}, 0));
            }
            for (int i = 0; i < WARM_UP; i++) { // warm-up: compiled, and the scratch holds this shape's arrays
                step(model, segments, logits);
            }
            long before = Kernels.allocatedBytesHereAndInGang();
            assumeTrue(before >= 0, "this JVM does not count allocated bytes per thread");
            for (int i = 0; i < STEPS; i++) {
                step(model, segments, logits);
            }
            long perToken = (Kernels.allocatedBytesHereAndInGang() - before) / ((long) STEPS * batch);
            long activationsPerToken = activationBytes(model.config());
            System.out.println(name + " b" + batch + ": " + perToken + " B/token allocated; one token's activations " + activationsPerToken + " B");
            assertTrue(perToken * 20 < activationsPerToken, name + " b" + batch + " decode allocates " + perToken + " B per token");
        }
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
