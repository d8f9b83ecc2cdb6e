package dev.goldfinch.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.model.io.SafeTensorsWriter;
import dev.goldfinch.model.state.SequenceState;
import dev.goldfinch.model.state.StateCodec;
import dev.goldfinch.model.tensor.DType;
import dev.goldfinch.model.tensor.Tensor;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * RWKV-5.1, 5.2 and 7 from random weights of their shapes, needing nothing outside the repository: recognised from
 * their tensor names, a wrong tensor named, the state codec carrying the family, fork and chunked prefill agreeing.
 */
class RwkvFamilyShapesTest {
    @TempDir
    Path tmp;

    private Path saved(ModelConfig c, Consumer<Map<String, Tensor>> edit) throws IOException {
        try (Arena arena = Arena.ofShared()) {
            Map<String, Tensor> t = new LinkedHashMap<>(RandomWeights.generate(c, 3, DType.F32, arena));
            edit.accept(t);
            Path p = tmp.resolve(c.architecture().displayName() + System.nanoTime() + ".safetensors");
            SafeTensorsWriter.write(p, t, Map.of(), (done, total) -> {});
            return p;
        }
    }

    private static ModelConfig shape(String arch) {
        return ModelShapes.parse("layers=3,width=64,head=16,vocab=256,arch=" + arch);
    }

    @ParameterizedTest
    @CsvSource({"rwkv5.1, RWKV5_1", "rwkv5.2, RWKV5_2", "rwkv7, RWKV7", "rwkv5, RWKV5_2", "goose, RWKV7"})
    void savedWeightsAreRecognisedAsTheirFamily(String name, Architecture arch) throws IOException {
        ModelConfig c = shape(name);
        assertEquals(arch, c.architecture());
        try (GoldFinchModel m = ModelLoader.load(saved(c, t -> {}))) {
            assertEquals(c, m.config());
        }
    }

    @ParameterizedTest
    @CsvSource({
        "rwkv5.1, blocks.1.att.time_first",
        "rwkv5.2, blocks.2.att.time_faaaa",
        "rwkv5.2, blocks.0.ffn.receptance.weight",
        "rwkv7, blocks.1.att.v1",
        "rwkv7, blocks.2.att.k_k"
    })
    void aMissingTensorIsNamed(String arch, String tensor) throws IOException {
        Path p = saved(shape(arch), t -> assertTrue(t.remove(tensor) != null, tensor));
        var e = assertThrows(GoldFinchException.BadModel.class, () -> ModelLoader.load(p));
        assertTrue(e.getMessage().contains("missing tensor " + tensor), e.getMessage());
    }

    @ParameterizedTest
    @CsvSource({"rwkv5.2, blocks.1.att.time_decay", "rwkv7, blocks.1.att.r_k"})
    void aMisShapedTensorIsNamed(String arch, String tensor) throws IOException {
        Path p = saved(shape(arch), t -> t.put(tensor, Tensor.ofFloats(tensor, new long[] {2, 32}, new float[64])));
        var e = assertThrows(GoldFinchException.BadModel.class, () -> ModelLoader.load(p));
        assertTrue(e.getMessage().contains(tensor), e.getMessage());
    }

    @ParameterizedTest
    @CsvSource({"rwkv5.1", "rwkv5.2", "rwkv7"})
    void anUnexpectedTensorIsNamed(String arch) throws IOException { // for RWKV-7: layer 0 has no value residual
        ModelConfig c = shape(arch);
        Path p = saved(
                c,
                t -> t.put(
                        "blocks.0.att.v0", Tensor.ofFloats("blocks.0.att.v0", new long[] {1, 1, 64}, new float[64])));
        var e = assertThrows(GoldFinchException.BadModel.class, () -> ModelLoader.load(p));
        assertTrue(e.getMessage().contains("unexpected tensor blocks.0.att.v0"), e.getMessage());
    }

    @ParameterizedTest
    @CsvSource({"rwkv5.1", "rwkv5.2", "rwkv7"})
    void chunksForksAndSerializedStatesAgreeWithOnePass(String arch) {
        ModelConfig c = shape(arch);
        int[] toks = new int[40];
        for (int i = 0; i < toks.length; i++) {
            toks[i] = (i * 37 + 11) % 256;
        }
        try (GoldFinchModel m = RandomWeights.model(c, 5, DType.F32)) {
            float[] whole = m.prefill(m.newState(), toks);
            SequenceState s = m.newState();
            m.prefill(s, java.util.Arrays.copyOf(toks, 25));
            SequenceState forked = s.fork();
            byte[] blob = StateCodec.encode(s, StateCodec.FloatType.F32, 0);
            assertEquals(c.architecture(), StateCodec.inspect(blob).architecture());
            assertEquals(blob.length, StateCodec.encodedSize(c, 25, 0, StateCodec.FloatType.F32));
            SequenceState restored = StateCodec.decode(blob, c, m.fingerprint());
            int[] rest = java.util.Arrays.copyOfRange(toks, 25, toks.length);
            float[] viaState = m.prefill(restored, rest);
            float[] viaFork = m.prefill(forked, rest);
            float[] viaOriginal = m.prefill(s, rest);
            assertTrue(Golden.maxAbsDiff(whole, viaState) <= 1e-4f, "restored state differs");
            assertArrayEquals(viaOriginal, viaFork, "a fork continues exactly as its original");
            assertArrayEquals(viaOriginal, viaState, "a decoded F32 state continues exactly as its original");
            assertTrue(Float.isFinite(whole[0]));
            float[][] batch = m.forward(List.of(
                    GoldFinchModel.Segment.lastLogits(m.newState(), toks),
                    GoldFinchModel.Segment.lastLogits(m.newState(), rest)));
            assertTrue(Golden.maxAbsDiff(whole, batch[0]) <= 1e-4f, "a batch row differs from its lone pass");
        }
    }

    @org.junit.jupiter.api.Test
    void benchmarkShapesHaveTheReleasedSizes() {
        ModelConfig goose = ModelShapes.parse("rwkv7-L12-D768"); // the 0.1B RWKV-7's LoRA widths
        assertEquals(Architecture.RWKV7, goose.architecture());
        assertEquals(
                List.of(64, 64, 32, 128, 3072),
                List.of(
                        goose.decayLoraRank(),
                        goose.aLoraRank(),
                        goose.valueLoraRank(),
                        goose.gateLoraRank(),
                        goose.dimFfn()));
        ModelConfig eagle = ModelShapes.parse("rwkv5-L24-D2048");
        assertEquals(Architecture.RWKV5_2, eagle.architecture());
        assertEquals(8192, eagle.dimFfn());
        assertEquals(32, eagle.nHead());
    }
}
