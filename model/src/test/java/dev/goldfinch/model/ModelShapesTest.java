package dev.goldfinch.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.model.state.SequenceState;
import dev.goldfinch.model.tensor.DType;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Shapes against the parameter counts of the reference modules (spec §4) and the cache formula (spec §5). */
class ModelShapesTest {
    @Test
    void parameterCountsMatchTheReleasedCheckpoints() {
        assertEquals(186_617_856L, ModelShapes.parse("L12-D768").parameterCount());
        assertEquals(1_445_257_216L, ModelShapes.parse("L24-D2048").parameterCount());
        assertEquals(196_955_136L, ModelShapes.parse("finch-L12-D768").parameterCount());
        assertEquals(1_599_873_024L, ModelShapes.parse("finch-L24-D2048").parameterCount());
        assertEquals(191_056_896L, ModelShapes.parse("finchc2-L12-D768").parameterCount());
    }

    @Test
    void cacheBytesFollowTheSpecFormula() {
        CacheSizes big = CacheSizes.of(ModelShapes.parse("L24-D2048"));
        assertEquals(2 * 2_195_456L, big.fixedBytes());
        assertEquals(260, big.bytesPerToken());
        assertEquals(516, big.bytesPerTokenF32());
        assertEquals(196_608, big.transformerKvBytesPerToken());
        assertEquals(756.2, big.compressionRatio(), 0.05);
        CacheSizes small = CacheSizes.of(ModelShapes.parse("L12-D768"));
        assertEquals(2 * 411_648L, small.fixedBytes());
        assertEquals(100, small.bytesPerToken());
        CacheSizes tiny = CacheSizes.of(ModelShapes.parse("layers=6,width=128,head=32,vocab=512"));
        assertEquals(71_680, tiny.fixedBytesF32());
        assertEquals(36, tiny.bytesPerTokenF32());
    }

    @Test
    void customAndBadShapes() {
        ModelConfig c = ModelShapes.parse("layers=24,width=2048,head=64,vocab=65536");
        assertEquals(ModelShapes.parse("L24-D2048"), c);
        assertEquals(
                Architecture.FINCH,
                ModelShapes.parse("layers=2,width=64,head=16,arch=finch").architecture());
        for (String bad :
                new String[] {"L0-D768", "huge", "layers=2", "layers=2,width=100,head=64", "layers=2,width=64,color=red"
                }) {
            assertThrows(GoldFinchException.InvalidInput.class, () -> ModelShapes.parse(bad), bad);
        }
    }

    @Test
    void randomModelsAreDeterministicAndWellScaled() {
        ModelConfig c = ModelShapes.parse("layers=3,width=64,head=16,vocab=300");
        try (GoldFinchModel a = RandomWeights.model(c, 9, DType.F32);
                GoldFinchModel b = RandomWeights.model(c, 9, DType.F32);
                GoldFinchModel bf = RandomWeights.model(c, 9, DType.BF16)) {
            assertEquals(a.fingerprint(), b.fingerprint());
            assertTrue(a.fingerprint() != bf.fingerprint());
            float[] la = a.prefill(a.newState(), new int[] {1, 2, 3});
            float[] lb = b.prefill(b.newState(), new int[] {1, 2, 3});
            assertEquals(0f, Golden.maxAbsDiff(la, lb));
            double sq = 0;
            for (float v : la) {
                assertTrue(Float.isFinite(v));
                sq += v * v;
            }
            double rms = Math.sqrt(sq / la.length);
            assertTrue(rms > 0.1 && rms < 10, "logit rms " + rms);
            float[] lbf = bf.prefill(bf.newState(), new int[] {1, 2, 3});
            assertTrue(Golden.maxAbsDiff(la, lbf) < 0.5f);
        }
    }

    @Test
    void batchedStepsEqualSeparateSteps() {
        // Continuous batching: sequences of different lengths advanced in one pass give what they give alone.
        ModelConfig c = ModelShapes.parse("layers=3,width=64,head=16,vocab=300");
        try (GoldFinchModel m = RandomWeights.model(c, 3, DType.F32)) {
            int[][] prompts = {{5, 6, 7, 8, 9, 10, 11, 12}, {42}, {7, 7, 7}};
            SequenceState[] alone = new SequenceState[3];
            SequenceState[] together = new SequenceState[3];
            for (int i = 0; i < 3; i++) {
                alone[i] = m.newState();
                m.prefill(alone[i], prompts[i]);
                together[i] = alone[i].fork();
            }
            float[][] batched = m.forward(List.of(
                    GoldFinchModel.Segment.lastLogits(together[0], new int[] {100}),
                    GoldFinchModel.Segment.lastLogits(together[1], new int[] {101, 102, 103}),
                    GoldFinchModel.Segment.lastLogits(together[2], new int[] {104})));
            float[][] separate = {
                m.step(alone[0], 100), m.prefill(alone[1], new int[] {101, 102, 103}), m.step(alone[2], 104)
            };
            for (int i = 0; i < 3; i++) {
                assertTrue(Golden.maxAbsDiff(batched[i], separate[i]) < 1e-5f, "sequence " + i);
            }
        }
    }
}
