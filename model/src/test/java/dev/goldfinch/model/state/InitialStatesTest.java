package dev.goldfinch.model.state;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.GoldFinchModel;
import dev.goldfinch.model.ModelConfig;
import dev.goldfinch.model.ModelShapes;
import dev.goldfinch.model.RandomWeights;
import dev.goldfinch.model.io.SafeTensorsWriter;
import dev.goldfinch.model.tensor.DType;
import dev.goldfinch.model.tensor.Tensor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class InitialStatesTest {
    private static final String RWKV7 = "layers=2,width=64,head=16,vocab=256,arch=rwkv7";

    /** {@code time_state[h][value][key]}: a value that tells its indices apart. */
    private static float timeState(int layer, int h, int value, int key) {
        return layer * 1000 + h * 100 + value + key / 100f;
    }

    private static Map<String, Tensor> timeStates(ModelConfig c, int layers, long[] shapeOfLayer1) {
        int heads = c.nHead();
        int n = c.headSize();
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        for (int l = 0; l < layers; l++) {
            long[] shape = l == 1 && shapeOfLayer1 != null ? shapeOfLayer1 : new long[] {heads, n, n};
            float[] v = new float[Math.toIntExact(Tensor.numel(shape))];
            for (int i = 0; i < v.length; i++) {
                v[i] = i < heads * n * n ? timeState(l, i / (n * n), i / n % n, i % n) : 0;
            }
            String name = "blocks." + l + ".att.time_state";
            tensors.put(name, Tensor.ofFloats(name, shape, v));
        }
        return tensors;
    }

    @Test
    void aTimeStateFileSetsOnlyTheWkvStateTransposed(@TempDir Path dir) throws Exception {
        try (GoldFinchModel model = RandomWeights.model(ModelShapes.parse(RWKV7), 3, DType.F32)) {
            ModelConfig c = model.config();
            Path file = dir.resolve("tuned.safetensors");
            SafeTensorsWriter.write(file, timeStates(c, c.nLayer(), null), Map.of(), (done, total) -> {});

            SequenceState s = InitialStates.load(file, c, model.fingerprint());

            assertEquals(0, s.length(), "a tuned state holds no positions");
            int n = c.headSize();
            for (int l = 0; l < c.nLayer(); l++) {
                assertArrayEquals(new float[c.nEmbd()], s.attShift(l), "token shifts stay zero");
                assertArrayEquals(new float[c.nEmbd()], s.ffnShift(l), "token shifts stay zero");
                for (int h = 0; h < c.nHead(); h++) {
                    for (int key = 0; key < n; key++) {
                        for (int value = 0; value < n; value++) {
                            assertEquals(
                                    timeState(l, h, value, key),
                                    s.wkv(l)[h * n * n + key * n + value],
                                    "layer " + l + " head " + h + " key " + key + " value " + value);
                        }
                    }
                }
            }
            int[] prompt = {72, 105, 33};
            float[] tuned = model.prefill(s.fork(), prompt);
            float[] plain = model.prefill(model.newState(), prompt);
            assertFalse(Arrays.equals(tuned, plain), "the tuned state changes the answer");
        }
    }

    @Test
    void aWrongOrMissingTimeStateIsABadModelNamingTheTensor(@TempDir Path dir) throws Exception {
        try (GoldFinchModel model = RandomWeights.model(ModelShapes.parse(RWKV7), 3, DType.F32)) {
            ModelConfig c = model.config();
            Path wrong = dir.resolve("wrong.safetensors");
            SafeTensorsWriter.write(
                    wrong, timeStates(c, c.nLayer(), new long[] {c.nHead(), c.headSize()}), Map.of(), (d, t) -> {});
            GoldFinchException.BadModel e = assertThrows(
                    GoldFinchException.BadModel.class, () -> InitialStates.load(wrong, c, model.fingerprint()));
            assertTrue(e.getMessage().contains("blocks.1.att.time_state"), e.getMessage());
            assertTrue(e.getMessage().contains("expected [4, 16, 16]"), e.getMessage());

            Path missing = dir.resolve("missing.safetensors");
            SafeTensorsWriter.write(missing, timeStates(c, 1, null), Map.of(), (d, t) -> {});
            e = assertThrows(
                    GoldFinchException.BadModel.class, () -> InitialStates.load(missing, c, model.fingerprint()));
            assertTrue(e.getMessage().contains("lacks blocks.1.att.time_state"), e.getMessage());

            Path extra = dir.resolve("extra.safetensors");
            SafeTensorsWriter.write(extra, timeStates(c, 3, null), Map.of(), (d, t) -> {});
            e = assertThrows(
                    GoldFinchException.BadModel.class, () -> InitialStates.load(extra, c, model.fingerprint()));
            assertTrue(e.getMessage().contains("blocks.2.att.time_state"), e.getMessage());
        }
    }

    @Test
    void aSavedStateContinuesAsItsPrompt(@TempDir Path dir) throws Exception {
        for (String shape : new String[] {RWKV7, "layers=3,width=64,head=16,vocab=256"}) {
            try (GoldFinchModel model = RandomWeights.model(ModelShapes.parse(shape), 3, DType.F32)) {
                int[] preamble = {79, 110, 99, 101, 32, 117, 112, 111, 110};
                int[] prompt = {32, 97, 32, 116, 105, 109, 101};
                SequenceState s = model.newState();
                model.prefill(s, preamble);
                Path file = dir.resolve("saved-" + model.config().architecture() + ".gfst");
                Files.write(file, InitialStates.encodeForSaving(s));

                SequenceState loaded = InitialStates.load(file, model.config(), model.fingerprint());
                boolean gold = model.config().compressedDim() > 0;
                assertEquals(gold ? preamble.length : 0, loaded.length(), shape + ": positions kept only with GOLD");
                float[] resumed = model.prefill(loaded, prompt);
                int[] whole = Arrays.copyOf(preamble, preamble.length + prompt.length);
                System.arraycopy(prompt, 0, whole, preamble.length, prompt.length);
                float[] direct = model.prefill(model.newState(), whole);
                for (int i = 0; i < direct.length; i++) {
                    assertEquals(direct[i], resumed[i], 1e-4, shape + " logit " + i);
                }
            }
        }
    }

    @Test
    void aStateOfAnotherModelIsRefused(@TempDir Path dir) throws Exception {
        try (GoldFinchModel a = RandomWeights.model(ModelShapes.parse(RWKV7), 3, DType.F32);
                GoldFinchModel b = RandomWeights.model(ModelShapes.parse(RWKV7), 4, DType.F32)) {
            Path file = dir.resolve("a.gfst");
            Files.write(file, InitialStates.encodeForSaving(a.newState()));
            assertThrows(
                    GoldFinchException.StateMismatch.class,
                    () -> InitialStates.load(file, b.config(), b.fingerprint()));
        }
    }
}
