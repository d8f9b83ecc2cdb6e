package dev.goldfinch.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.model.io.SafeTensors;
import dev.goldfinch.model.io.SafeTensorsWriter;
import dev.goldfinch.model.tensor.DType;
import dev.goldfinch.model.tensor.Tensor;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every bad model file is a BadModel whose message names the file's problem, never another exception. */
class ModelLoaderTest {
    static final Path WEIGHTS = Golden.resource("goldfinch").resolve("weights.safetensors");

    @TempDir
    Path tmp;

    private GoldFinchException.BadModel loadFails(Path p) {
        return assertThrows(
                GoldFinchException.BadModel.class, () -> ModelLoader.load(p).close());
    }

    @Test
    void truncatedFileIsRejected() throws IOException {
        byte[] all = Files.readAllBytes(WEIGHTS);
        for (int len : new int[] {0, 5, 100, all.length / 2, all.length - 1}) {
            Path p = tmp.resolve("cut" + len + ".safetensors");
            Files.write(p, Arrays.copyOf(all, len));
            var e = loadFails(p);
            assertTrue(e.getMessage().contains(p.toString()), e.getMessage());
        }
    }

    @Test
    void corruptHeaderIsRejected() throws IOException {
        byte[] all = Files.readAllBytes(WEIGHTS);
        all[8] = '[';
        Path p = tmp.resolve("bad.safetensors");
        Files.write(p, all);
        assertTrue(loadFails(p).getMessage().contains("header"));
        Path garbage = tmp.resolve("garbage.safetensors");
        Files.write(garbage, "not a model at all, just text".getBytes(StandardCharsets.UTF_8));
        loadFails(garbage);
    }

    private Path rewritten(Consumer<Map<String, Tensor>> edit) throws IOException {
        try (SafeTensors st = SafeTensors.open(WEIGHTS)) {
            Map<String, Tensor> t = new LinkedHashMap<>(st.tensors());
            edit.accept(t);
            Path p = tmp.resolve("edited-" + System.nanoTime() + ".safetensors");
            SafeTensorsWriter.write(p, t, Map.of(), (done, total) -> {});
            return p;
        }
    }

    @Test
    void missingTensorIsNamed() throws IOException {
        Path p = rewritten(t -> t.remove("blocks.2.att.time_decay_w1"));
        assertTrue(loadFails(p).getMessage().contains("missing tensor blocks.2.att.time_decay_w1"));
    }

    @Test
    void misShapedTensorIsNamed() throws IOException {
        Path p = rewritten(t -> t.put(
                "blocks.1.ffn.key.weight",
                Tensor.ofFloats("blocks.1.ffn.key.weight", new long[] {448, 127}, new float[448 * 127])));
        var e = loadFails(p);
        assertTrue(
                e.getMessage().contains("blocks.1.ffn.key.weight")
                        && e.getMessage().contains("[448, 127]"),
                e.getMessage());
    }

    @Test
    void extraTensorIsNamed() throws IOException {
        Path p = rewritten(t ->
                t.put("blocks.0.att.surprise", Tensor.ofFloats("blocks.0.att.surprise", new long[] {2}, new float[2])));
        assertTrue(loadFails(p).getMessage().contains("unexpected tensor blocks.0.att.surprise"));
    }

    @Test
    void integerTensorIsRejected() throws IOException {
        Path p = rewritten(t -> t.put(
                "ln_out.bias",
                new Tensor("ln_out.bias", DType.I32, new long[] {128}, MemorySegment.ofArray(new int[128]))));
        assertTrue(loadFails(p).getMessage().contains("ln_out.bias"));
    }

    @Test
    void configJsonMustAgree() throws IOException {
        Path dir = Files.createDirectory(tmp.resolve("model"));
        Files.copy(WEIGHTS, dir.resolve("weights.safetensors"));
        Files.writeString(
                dir.resolve("config.json"),
                "{\"n_layer\": 6, \"n_embd\": 128, \"tmix2\": \"gold\", \"gold_first_layer\": 4}");
        try (GoldFinchModel m = ModelLoader.load(dir)) {
            assertEquals(6, m.config().nLayer());
        }
        Files.writeString(dir.resolve("config.json"), "{\"n_layer\": 12, \"n_embd\": 128}");
        var e = loadFails(dir);
        assertTrue(e.getMessage().contains("n_layer=12") && e.getMessage().contains("6"), e.getMessage());
        Files.writeString(dir.resolve("config.json"), "{\"head_size\": 64}");
        assertTrue(loadFails(dir).getMessage().contains("head_size"));
    }

    @Test
    void configJsonWrittenForAModelIsAccepted() throws IOException {
        Path dir = Files.createDirectory(tmp.resolve("m2"));
        Files.copy(WEIGHTS, dir.resolve("weights.safetensors"));
        try (GoldFinchModel m = ModelLoader.load(WEIGHTS)) {
            Files.writeString(dir.resolve("config.json"), ModelLoader.configJson(m.config()));
        }
        try (GoldFinchModel m = ModelLoader.load(dir)) {
            assertEquals(Architecture.GOLDFINCH, m.config().architecture());
        }
    }

    @Test
    void missingFileOrEmptyDirectory() throws IOException {
        loadFails(tmp.resolve("nope.safetensors"));
        loadFails(Files.createDirectory(tmp.resolve("empty")));
    }

    @Test
    void tokenOutsideTheVocabularyAndEmptyInputAreInvalid() {
        try (GoldFinchModel m = ModelLoader.load(WEIGHTS)) {
            var e = assertThrows(
                    GoldFinchException.InvalidInput.class, () -> m.prefill(m.newState(), new int[] {1, 512}));
            assertTrue(e.getMessage().contains("512"), e.getMessage());
            assertThrows(GoldFinchException.InvalidInput.class, () -> m.prefill(m.newState(), new int[] {-1}));
            assertThrows(GoldFinchException.InvalidInput.class, () -> m.prefill(m.newState(), new int[0]));
        }
    }

    @Test
    void f16AndBf16WeightsLoadAndStayCloseToF32() throws Exception {
        float[] want;
        int[] toks = dev.goldfinch.model.io.Npy.read(
                        Golden.resource("goldfinch").resolve("tokens.npy"))
                .toInts();
        try (GoldFinchModel m = ModelLoader.load(WEIGHTS)) {
            want = m.forward(java.util.List.of(new GoldFinchModel.Segment(m.newState(), toks, 0)))[0];
        }
        for (DType type : new DType[] {DType.F16, DType.BF16}) {
            Path p = rewritten(t -> t.replaceAll((name, tensor) -> narrowed(tensor, type)));
            try (GoldFinchModel m = ModelLoader.load(p)) {
                float[] got = m.forward(java.util.List.of(new GoldFinchModel.Segment(m.newState(), toks, 0)))[0];
                float d = Golden.maxAbsDiff(got, want);
                // bf16 rounding of the same weights moves the reference logits by up to 0.051 (golden README).
                assertTrue(d > 0 && d < (type == DType.F16 ? 0.01f : 0.1f), type + " logits differ by " + d);
            }
        }
    }

    private static Tensor narrowed(Tensor t, DType type) {
        float[] f = t.toFloats();
        short[] bits = new short[f.length];
        for (int i = 0; i < f.length; i++) {
            bits[i] = type == DType.F16
                    ? dev.goldfinch.model.tensor.Floats.floatToF16(f[i])
                    : dev.goldfinch.model.tensor.Floats.floatToBf16(f[i]);
        }
        return new Tensor(t.name(), type, t.shape(), MemorySegment.ofArray(bits));
    }
}
