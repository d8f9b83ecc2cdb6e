package dev.goldfinch.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.model.io.RwkvCppFile;
import dev.goldfinch.model.tensor.DType;
import dev.goldfinch.model.tensor.Tensor;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * rwkv.cpp's model files ({@code .bin}) load directly and compute what the RWKV-LM-named weights of the same model
 * compute: files written here from random weights of every family and precision (needing nothing outside the
 * repository), and rwkv.cpp's own tiny models from ../shared (skipped where it is absent). A malformed file is a
 * {@link GoldFinchException.BadModel} that names what is wrong.
 */
class RwkvCppFileTest {
    private static final int[] TOKENS = {34, 105, 110, 32, 116, 104, 101, 0, 255, 128, 10, 65, 200};

    @TempDir
    Path dir;

    private static float maxDiff(float[] a, float[] b) {
        assertEquals(a.length, b.length);
        float d = 0;
        for (int i = 0; i < a.length; i++) {
            d = Math.max(d, Math.abs(a[i] - b[i]));
        }
        return d;
    }

    private static float[] logits(GoldFinchModel m, int[] tokens) {
        return m.forward(List.of(new GoldFinchModel.Segment(m.newState(), tokens, 0)))[0];
    }

    @ParameterizedTest
    @CsvSource({
        "rwkv5.1, FP32, 1e-5", "rwkv5.2, FP32, 1e-5", "finch, FP32, 1e-5", "rwkv7, FP32, 1e-5",
        "rwkv5.1, FP16, 1e-5", "rwkv5.2, FP16, 1e-5", "finch, FP16, 1e-5", "rwkv7, FP16, 1e-5",
        "rwkv5.1, Q8_0, 1e-4", "rwkv5.2, Q8_0, 1e-4", "finch, Q8_0, 1e-4", "rwkv7, Q8_0, 1e-4"
    })
    void aFileWrittenFromRandomWeightsComputesWhatTheWeightsDo(String arch, String precision, float tolerance)
            throws IOException {
        ModelConfig config = ModelShapes.parse("layers=2,width=64,head=16,vocab=256,arch=" + arch);
        int type = List.of("FP32", "FP16").indexOf(precision) >= 0
                ? List.of("FP32", "FP16").indexOf(precision)
                : RwkvCppWriter.Q8_0;
        Path bin = dir.resolve("random-" + arch + "-" + precision + ".bin");
        float[] want;
        try (Arena arena = Arena.ofShared()) {
            Map<String, Tensor> weights = RandomWeights.generate(config, 3, DType.F32, arena);
            RwkvCppWriter.write(bin, config, weights, type);
            try (GoldFinchModel reference =
                    new GoldFinchModel(new ModelWeights(config, RwkvCppWriter.rounded(weights, type)))) {
                want = logits(reference, TOKENS);
            }
        }
        try (RwkvCppFile file = RwkvCppFile.open(bin)) {
            assertEquals(precision, file.dataType());
            if (type != RwkvCppWriter.FP32) { // the matrices stay in the file's precision, not widened on load
                DType matrices = type == RwkvCppWriter.FP16 ? DType.F16 : DType.I8;
                assertEquals(
                        matrices, file.tensors().get("blocks.0.ffn.key.weight").dtype());
            }
        }
        try (GoldFinchModel m = ModelLoader.load(bin)) {
            assertEquals(config, m.config());
            float diff = maxDiff(want, logits(m, TOKENS));
            assertTrue(diff <= tolerance, arch + " " + precision + ": max |diff| " + diff);
        }
    }

    /** rwkv.cpp's tiny models: the .bin against the .safetensors of the same weights and rwkv.cpp's own logits. */
    @ParameterizedTest
    @CsvSource({"5v1-730K", "5v2-730K", "7v0-834K"})
    void rwkvCppTinyModelsMatchTheirSafetensorsAndRwkvCpp(String name) throws IOException {
        Path tiny = Golden.shared("rwkv-family-tiny");
        byte[] text = Files.readAllBytes(tiny.resolve("text.txt"));
        int[] toks = new int[text.length];
        for (int i = 0; i < text.length; i++) {
            toks[i] = text[i] & 0xff;
        }
        float[] rwkvCpp = Rwkv6TinyTest.rawFloats(tiny.resolve("logits-" + name + ".f32"));
        float[] expected = Rwkv6TinyTest.rawFloats(tiny.resolve("expected-logits-" + name + ".bin"));
        try (GoldFinchModel bin = ModelLoader.load(tiny.resolve("tiny-rwkv-" + name + "-FP32.bin"));
                GoldFinchModel st = ModelLoader.load(tiny.resolve("tiny-rwkv-" + name + ".safetensors"))) {
            assertEquals(st.config(), bin.config());
            float[] got = logits(bin, toks);
            float sameWeights = maxDiff(logits(st, toks), got);
            assertTrue(sameWeights <= 1e-5f, name + ": .bin vs .safetensors, max |diff| " + sameWeights);
            float vsRwkvCpp = maxDiff(rwkvCpp, got);
            assertTrue(vsRwkvCpp <= 1e-4f, name + ": vs rwkv.cpp's logits, max |diff| " + vsRwkvCpp);
            float quoteIn = maxDiff(expected, bin.prefill(bin.newState(), new int[] {'"', 'i', 'n'}));
            assertTrue(quoteIn <= 1e-4f, name + ": vs rwkv.cpp's expected logits, max |diff| " + quoteIn);
        }
    }

    @Test
    void rwkvCppTinyRwkv6InFp32AndFp16AndItsQ5_1IsRefusedByName() throws IOException {
        Path six = Golden.shared("rwkv6-tiny");
        float[] expected = Rwkv6TinyTest.rawFloats(six.resolve("expected-logits-6v0-1m.bin"));
        int[] quoteIn = {'"', 'i', 'n'};
        try (GoldFinchModel fp32 = ModelLoader.load(six.resolve("tiny-rwkv-6v0-1m-FP32.bin"));
                GoldFinchModel fp16 = ModelLoader.load(six.resolve("tiny-rwkv-6v0-1m-FP16.bin"));
                GoldFinchModel st = ModelLoader.load(six.resolve("tiny-rwkv-6v0-1m.safetensors"))) {
            assertEquals(Architecture.FINCH, fp32.config().architecture());
            float same = maxDiff(logits(st, TOKENS), logits(fp32, TOKENS));
            assertTrue(same <= 1e-5f, "FP32 .bin vs .safetensors: " + same);
            float f32 = maxDiff(expected, fp32.prefill(fp32.newState(), quoteIn));
            assertTrue(f32 <= 1e-4f, "FP32 vs rwkv.cpp: " + f32);
            float f16 = maxDiff(expected, fp16.prefill(fp16.newState(), quoteIn));
            assertTrue(f16 <= 5e-3f, "FP16 vs rwkv.cpp's FP32 logits: " + f16);
        }
        var e = assertThrows(
                GoldFinchException.BadModel.class, () -> ModelLoader.load(six.resolve("tiny-rwkv-6v0-3m-Q5_1.bin")));
        assertTrue(e.getMessage().contains("Q5_1") && e.getMessage().contains("Q8_0"), e.getMessage());
    }

    private Path smallFile() throws IOException {
        ModelConfig config = ModelShapes.parse("layers=1,width=64,head=16,vocab=256,arch=rwkv7");
        Path bin = dir.resolve("small.bin");
        try (Arena arena = Arena.ofShared()) {
            RwkvCppWriter.write(bin, config, RandomWeights.generate(config, 1, DType.F32, arena), RwkvCppWriter.FP32);
        }
        return bin;
    }

    private String refusal(byte[] bytes) throws IOException {
        Path bad = dir.resolve("bad.bin");
        Files.write(bad, bytes);
        return assertThrows(GoldFinchException.BadModel.class, () -> ModelLoader.load(bad))
                .getMessage();
    }

    @Test
    void aMalformedFileIsABadModelNamingTheProblem() throws IOException {
        byte[] good = Files.readAllBytes(smallFile());

        String truncated = refusal(Arrays.copyOf(good, good.length - 100));
        assertTrue(truncated.contains("truncated") && truncated.contains("head.weight"), truncated);

        String header = refusal(Arrays.copyOf(good, 10));
        assertTrue(header.contains("24-byte header"), header);

        byte[] magic = good.clone();
        magic[0] = 'x';
        String notOurs = refusal(magic);
        assertTrue(notOurs.contains("not an rwkv.cpp model file"), notOurs);

        ByteBuffer q51 = ByteBuffer.wrap(good.clone()).order(ByteOrder.LITTLE_ENDIAN);
        q51.putInt(24 + 8, RwkvCppWriter.Q5_1); // the first tensor's type
        String quantized = refusal(q51.array());
        assertTrue(quantized.contains("is Q5_1") && quantized.contains("FP32, FP16 and Q8_0"), quantized);

        ByteBuffer layers = ByteBuffer.wrap(good.clone()).order(ByteOrder.LITTLE_ENDIAN);
        layers.putInt(16, 3);
        String count = refusal(layers.array());
        assertTrue(count.contains("n_layer=3") && count.contains("1 layers"), count);

        ByteBuffer dims = ByteBuffer.wrap(good.clone()).order(ByteOrder.LITTLE_ENDIAN);
        dims.putInt(24, 7);
        String rank = refusal(dims.array());
        assertTrue(rank.contains("7 dimensions"), rank);

        // The first record renamed: a tensor the model needs is then missing, and named.
        byte[] renamed = good.clone();
        int nameAt = 24
                + 12
                + 4 * ByteBuffer.wrap(good).order(ByteOrder.LITTLE_ENDIAN).getInt(24);
        renamed[nameAt] = 'X';
        String missing = refusal(renamed);
        assertTrue(missing.contains("missing tensor") || missing.contains("unexpected tensor"), missing);
    }

    /** Random corruptions of a valid file: each loads or is a BadModel, never another exception or a crash. */
    @Test
    void corruptedFilesLoadOrFailTyped() throws IOException {
        byte[] good = Files.readAllBytes(smallFile());
        java.util.SplittableRandom random = new java.util.SplittableRandom(16);
        Path bad = dir.resolve("corrupt.bin");
        int refused = 0;
        for (int i = 0; i < 150; i++) {
            byte[] b = random.nextBoolean() ? good.clone() : Arrays.copyOf(good, random.nextInt(good.length));
            for (int flips = 1 + random.nextInt(4); flips > 0 && b.length > 0; flips--) {
                // Mostly in the headers and names, where a flip changes what the parser does rather than a value.
                int at = random.nextInt(4) == 0 ? random.nextInt(b.length) : random.nextInt(Math.min(b.length, 400));
                b[at] = (byte) random.nextInt(256);
            }
            Files.write(bad, b);
            try (GoldFinchModel m = ModelLoader.load(bad)) {
                assertEquals(Architecture.RWKV7, m.config().architecture());
            } catch (GoldFinchException.BadModel e) {
                assertTrue(e.getMessage().contains("corrupt.bin"), e.getMessage());
                refused++;
            }
        }
        assertTrue(refused > 0, "some corruptions are refused");
    }
}
