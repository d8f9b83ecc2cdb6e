package dev.goldfinch.model.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.GoldFinchModel;
import dev.goldfinch.model.Golden;
import dev.goldfinch.model.ModelConverter;
import dev.goldfinch.model.ModelLoader;
import dev.goldfinch.model.ModelWeights;
import dev.goldfinch.model.WeightFormat;
import dev.goldfinch.model.tensor.DType;
import dev.goldfinch.model.tensor.Floats;
import dev.goldfinch.model.tensor.Tensor;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TorchCheckpointTest {
    static final Path DIR = Golden.resource("goldfinch");
    static final Path PTH = DIR.resolve("pth/weights-bf16.pth");

    @TempDir
    Path tmp;

    @Test
    void releasedFormatConvertsBitExactly() throws IOException {
        AtomicLong last = new AtomicLong();
        ModelConverter.convert(PTH, tmp, (done, total) -> last.set(done == total ? total : -1));
        assertTrue(last.get() > 0, "progress reached the total");
        try (SafeTensors f32 = SafeTensors.open(DIR.resolve("weights.safetensors"));
                SafeTensors converted = SafeTensors.open(tmp.resolve(ModelConverter.WEIGHTS_FILE))) {
            assertEquals(188, converted.tensors().size());
            assertEquals(f32.tensors().keySet(), converted.tensors().keySet());
            for (Tensor want : f32.tensors().values()) {
                Tensor got = converted.get(want.name());
                assertEquals(DType.BF16, got.dtype(), want.name());
                assertArrayEquals(want.shape(), got.shape(), want.name());
                short[] bits = got.data().toArray(ValueLayout.JAVA_SHORT_UNALIGNED);
                float[] f = want.toFloats();
                for (int i = 0; i < f.length; i++) {
                    if (bits[i] != Floats.floatToBf16(f[i])) {
                        throw new AssertionError(
                                want.name() + "[" + i + "] is not the bf16 rounding of the f32 weight");
                    }
                }
            }
        }
        try (GoldFinchModel m = ModelLoader.load(tmp)) {
            int[] toks = Npy.read(DIR.resolve("tokens.npy")).toInts();
            float[] got = m.forward(List.of(new GoldFinchModel.Segment(m.newState(), toks, 0)))[0];
            float[] want =
                    Npy.read(DIR.resolve("pth/logits_full_bf16weights.npy")).toFloats();
            float d = Golden.maxAbsDiff(got, want);
            assertTrue(d <= 1e-4f, "bf16 model logits differ by " + d);
        }
    }

    @Test
    void checkpointTensorsAreInStateDictOrder() {
        try (TorchCheckpoint c = TorchCheckpoint.open(PTH)) {
            assertEquals(
                    "blocks.0.att.key.weight", c.tensors().keySet().iterator().next());
        }
    }

    /** A stored zip with one data.pkl, as torch writes it. */
    private Path zipWith(byte[] pickle, String storageName, byte[] storage) throws IOException {
        Path p = tmp.resolve("crafted" + System.nanoTime() + ".pth");
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ZipOutputStream z = new ZipOutputStream(bytes)) {
            put(z, "archive/data.pkl", pickle);
            if (storageName != null) {
                put(z, "archive/data/" + storageName, storage);
            }
        }
        Files.write(p, bytes.toByteArray());
        return p;
    }

    private static void put(ZipOutputStream z, String name, byte[] data) throws IOException {
        ZipEntry e = new ZipEntry(name);
        e.setMethod(ZipEntry.STORED);
        e.setSize(data.length);
        CRC32 crc = new CRC32();
        crc.update(data);
        e.setCrc(crc.getValue());
        z.putNextEntry(e);
        z.write(data);
        z.closeEntry();
    }

    @Test
    void arbitraryGlobalsAreRefused() throws IOException {
        // PROTO 2; GLOBAL os system; SHORT_BINUNICODE "echo pwned"; TUPLE1; REDUCE; STOP
        byte[] evil = {
            (byte) 0x80,
            2,
            'c',
            'o',
            's',
            '\n',
            's',
            'y',
            's',
            't',
            'e',
            'm',
            '\n',
            (byte) 0x8c,
            10,
            'e',
            'c',
            'h',
            'o',
            ' ',
            'p',
            'w',
            'n',
            'e',
            'd',
            (byte) 0x85,
            'R',
            '.'
        };
        var e = assertThrows(GoldFinchException.BadModel.class, () -> TorchCheckpoint.open(zipWith(evil, null, null)));
        assertTrue(e.getMessage().contains("os.system"), e.getMessage());
        byte[] eval = {(byte) 0x80, 2, 'c', 'b', 'u', 'i', 'l', 't', 'i', 'n', 's', '\n', 'e', 'v', 'a', 'l', '\n', '.'
        };
        assertTrue(
                assertThrows(GoldFinchException.BadModel.class, () -> TorchCheckpoint.open(zipWith(eval, null, null)))
                        .getMessage()
                        .contains("builtins.eval"));
    }

    /** An OrderedDict with one bf16 tensor "w" of {@code size} / {@code stride} at {@code offset} in storage "0" of {@code numel}. */
    private static byte[] oneTensor(int numel, int offset, int[] size, int[] stride) {
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        o.writeBytes(new byte[] {(byte) 0x80, 2});
        o.writeBytes("ccollections\nOrderedDict\n".getBytes());
        o.writeBytes(new byte[] {')', 'R', '(', (byte) 0x8c, 1, 'w'});
        o.writeBytes("ctorch._utils\n_rebuild_tensor_v2\n".getBytes());
        o.writeBytes(new byte[] {'(', '(', (byte) 0x8c, 7});
        o.writeBytes("storage".getBytes());
        o.writeBytes("ctorch\nBFloat16Storage\n".getBytes());
        o.writeBytes(new byte[] {
            (byte) 0x8c, 1, '0', (byte) 0x8c, 3, 'c', 'p', 'u', 'K', (byte) numel, 't', 'Q', 'K', (byte) offset
        });
        o.write('(');
        for (int s : size) {
            o.writeBytes(new byte[] {'K', (byte) s});
        }
        o.write('t');
        o.write('(');
        for (int s : stride) {
            o.writeBytes(new byte[] {'K', (byte) s});
        }
        o.writeBytes(new byte[] {'t', (byte) 0x89, 'N', 't', 'R', 'u', '.'});
        return o.toByteArray();
    }

    @Test
    void craftedTensorRecordsAreChecked() throws IOException {
        Path ok = zipWith(oneTensor(6, 0, new int[] {2, 3}, new int[] {3, 1}), "0", new byte[12]);
        try (TorchCheckpoint c = TorchCheckpoint.open(ok)) {
            assertArrayEquals(new long[] {2, 3}, c.tensors().get("w").shape());
        }
        Path outside = zipWith(oneTensor(6, 4, new int[] {2, 3}, new int[] {3, 1}), "0", new byte[12]);
        assertTrue(assertThrows(GoldFinchException.BadModel.class, () -> TorchCheckpoint.open(outside))
                .getMessage()
                .contains("past"));
        Path strided = zipWith(oneTensor(6, 0, new int[] {2, 3}, new int[] {1, 2}), "0", new byte[12]);
        assertTrue(assertThrows(GoldFinchException.BadModel.class, () -> TorchCheckpoint.open(strided))
                .getMessage()
                .contains("contiguous"));
        Path missing = zipWith(oneTensor(6, 0, new int[] {2, 3}, new int[] {3, 1}), null, null);
        assertTrue(assertThrows(GoldFinchException.BadModel.class, () -> TorchCheckpoint.open(missing))
                .getMessage()
                .contains("missing"));
    }

    @Test
    void truncatedCheckpointIsABadModel() throws IOException {
        byte[] all = Files.readAllBytes(PTH);
        for (int len : new int[] {0, 10, all.length / 3, all.length - 30}) {
            Path p = tmp.resolve("cut" + len + ".pth");
            Files.write(p, Arrays.copyOf(all, len));
            assertThrows(
                    GoldFinchException.BadModel.class,
                    () -> TorchCheckpoint.open(p).close(),
                    "length " + len);
        }
    }

    @Test
    void quantizedConversionIsTheSameModelAsQuantizingAtLoad(@TempDir Path q8Dir) throws IOException {
        ModelConverter.convert(PTH, tmp, (done, total) -> {});
        ModelConverter.convert(PTH, q8Dir, WeightFormat.Q8_0, (done, total) -> {});
        long plainBytes = Files.size(tmp.resolve(ModelConverter.WEIGHTS_FILE));
        long q8Bytes = Files.size(q8Dir.resolve(ModelConverter.WEIGHTS_FILE));
        assertTrue(q8Bytes < plainBytes * 0.75, "Q8_0 file " + q8Bytes + " B vs bf16 " + plainBytes + " B");
        try (SafeTensors file = SafeTensors.open(q8Dir.resolve(ModelConverter.WEIGHTS_FILE))) {
            assertEquals(DType.I8, file.get("head.weight").dtype());
            assertEquals(
                    DType.F16,
                    file.get("head.weight" + ModelWeights.Q8_SCALE_SUFFIX).dtype());
            assertEquals(DType.BF16, file.get("emb.weight").dtype(), "the embedding is a look-up, never quantized");
        }
        int[] toks = Npy.read(DIR.resolve("tokens.npy")).toInts();
        try (GoldFinchModel atLoad = ModelLoader.load(tmp, WeightFormat.Q8_0);
                GoldFinchModel stored = ModelLoader.load(q8Dir)) {
            float[] want = atLoad.forward(List.of(new GoldFinchModel.Segment(atLoad.newState(), toks, 0)))[0];
            float[] got = stored.forward(List.of(new GoldFinchModel.Segment(stored.newState(), toks, 0)))[0];
            assertArrayEquals(want, got);
        }
        // Bytes without their scales are refused by name, not misread.
        try (SafeTensors file = SafeTensors.open(q8Dir.resolve(ModelConverter.WEIGHTS_FILE))) {
            java.util.Map<String, Tensor> missing = new java.util.LinkedHashMap<>(file.tensors());
            missing.remove("head.weight" + ModelWeights.Q8_SCALE_SUFFIX);
            Path broken = tmp.resolve("broken");
            Files.createDirectories(broken);
            SafeTensorsWriter.write(
                    broken.resolve(ModelConverter.WEIGHTS_FILE), missing, java.util.Map.of(), (done, total) -> {});
            GoldFinchException.BadModel e =
                    assertThrows(GoldFinchException.BadModel.class, () -> ModelLoader.load(broken));
            assertTrue(e.getMessage().contains("head.weight" + ModelWeights.Q8_SCALE_SUFFIX), e.getMessage());
        }
    }
}
