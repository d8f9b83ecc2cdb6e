package dev.goldfinch.model.io;

import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.ModelWeights;
import dev.goldfinch.model.tensor.DType;
import dev.goldfinch.model.tensor.Floats;
import dev.goldfinch.model.tensor.Q8Matrix;
import dev.goldfinch.model.tensor.Tensor;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * An rwkv.cpp model file ({@code "ggmf"} version 100 or 101, as its {@code rwkv_file_format.inc} reads them): a
 * 6-word header (magic, version, vocabulary, width, layers, data type), then tensor records to the end of the file,
 * each {@code dims, name length, type, ne[dims]} (ggml order: {@code ne[0]} is the contiguous dimension), the name,
 * the data. FP32 and FP16 tensors and Q8_0 blocks are read; other quantizations are refused by name.
 *
 * <p>{@link #tensors()} gives them as RWKV-LM's checkpoints hold them, undoing what rwkv.cpp's converter changed (it
 * squeezes {@code time_*}; pre-applies RWKV-5's {@code exp(-exp(decay))} and 5.1's {@code exp(first)}; transposes
 * RWKV-6's and RWKV-7's LoRA matrices; concatenates RWKV-7's six token-shift mixes), so the model loads through
 * the same config inference and checks as a {@code .safetensors} of it. Shapes that differ from RWKV-LM's only by
 * size-1 axes are fixed by {@link #conform}, once the config says what they should be.
 */
public final class RwkvCppFile implements AutoCloseable {
    /** {@code "ggmf"} read as a little-endian word (the file starts with the bytes {@code 66 6d 67 67}). */
    public static final int MAGIC = 0x67676d66;

    static final int HEADER_BYTES = 24;
    static final int FP32 = 0;
    static final int FP16 = 1;
    static final int Q8_0 = 9;
    /** rwkv.cpp's type codes, by number; its files may name any of them. */
    static final List<String> TYPE_NAMES = List.of(
            "FP32", "FP16", "Q4_0", "Q4_1", "Q4_1_O", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K",
            "Q4_K", "Q5_K", "Q6_K", "Q8_K");
    /** ggml's Q8_0 block: an F16 scale, then 32 signed bytes. */
    static final int Q8_BLOCK_BYTES = 2 + Q8Matrix.BLOCK;

    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int MAX_NAME_BYTES = 1024;

    /** The RWKV generation the tensor names say the file holds. */
    public enum Family {
        RWKV5_1,
        RWKV5_2,
        RWKV6,
        RWKV7
    }

    /** One record as stored: {@code shape} in PyTorch order (the reverse of ggml's {@code ne}). */
    record Stored(String name, int type, long[] shape, MemorySegment data) {}

    private final Path path;
    private final Arena arena;
    private final int vocab;
    private final int embed;
    private final int layers;
    private final int dataType;
    private final Family family;
    private final Map<String, Tensor> tensors;

    private RwkvCppFile(Path path, Arena arena, int[] header, Map<String, Stored> stored) {
        this.path = path;
        this.arena = arena;
        this.vocab = header[2];
        this.embed = header[3];
        this.layers = header[4];
        this.dataType = header[5];
        this.family = family(stored);
        checkHeader(stored);
        this.tensors = Collections.unmodifiableMap(toRwkvLm(stored));
    }

    /** True when the file starts with rwkv.cpp's magic. */
    public static boolean isRwkvCpp(Path p) {
        if (!Files.isRegularFile(p)) {
            return false;
        }
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
            return ch.read(b) == 4 && b.getInt(0) == MAGIC;
        } catch (IOException e) {
            return false;
        }
    }

    @SuppressWarnings("restricted") // an empty file maps to NULL resized to 0 bytes: nothing is ever read through it
    public static RwkvCppFile open(Path path) {
        Arena arena = Arena.ofShared();
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = channel.size();
            MemorySegment file = size == 0
                    ? MemorySegment.NULL.reinterpret(0)
                    : channel.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            return parse(path, arena, file);
        } catch (IOException e) {
            arena.close();
            throw new GoldFinchException.BadModel("cannot read " + path + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /** Parses a mapped (or, in tests, heap) file; {@code path} only names it in errors. */
    static RwkvCppFile parse(Path path, Arena arena, MemorySegment file) {
        long size = file.byteSize();
        if (size < HEADER_BYTES) {
            throw bad(path, "file is " + size + " bytes, shorter than rwkv.cpp's 24-byte header");
        }
        int[] header = new int[6];
        for (int i = 0; i < header.length; i++) {
            header[i] = file.get(U32, 4L * i);
        }
        if (header[0] != MAGIC) {
            throw bad(
                    path,
                    "not an rwkv.cpp model file: magic 0x" + Integer.toHexString(header[0]) + ", expected 0x"
                            + Integer.toHexString(MAGIC) + " (\"ggmf\")");
        }
        if (header[1] != 100 && header[1] != 101) {
            throw bad(path, "rwkv.cpp file version " + Integer.toUnsignedString(header[1]) + " (100 or 101 supported)");
        }
        checkType(path, header[5], "the file's data type");
        if (header[1] == 100 && header[5] != FP32 && header[5] != FP16) {
            throw bad(path, "a quantized file of rwkv.cpp format version 100 (its old quantization): requantize it");
        }
        for (int i = 2; i <= 4; i++) {
            if (header[i] <= 0) {
                throw bad(
                        path,
                        "header " + List.of("n_vocab", "n_embed", "n_layer").get(i - 2) + " is "
                                + Integer.toUnsignedString(header[i]));
            }
        }
        Map<String, Stored> stored = new LinkedHashMap<>();
        long at = HEADER_BYTES;
        while (at < size) {
            int index = stored.size();
            String where = "tensor record " + index + " at byte " + at;
            need(path, file, at, 12, where + " header");
            int dims = file.get(U32, at);
            int nameLength = file.get(U32, at + 4);
            int type = file.get(U32, at + 8);
            if (dims < 1 || dims > 3) {
                throw bad(path, where + " has " + Integer.toUnsignedString(dims) + " dimensions (1 to 3)");
            }
            need(path, file, at + 12, 4L * dims, where + " shape");
            long[] shape = new long[dims];
            for (int d = 0; d < dims; d++) {
                long n = Integer.toUnsignedLong(file.get(U32, at + 12 + 4L * d));
                if (n == 0) {
                    throw bad(path, where + " has a dimension of 0");
                }
                shape[dims - 1 - d] = n; // ggml's ne[0] is PyTorch's last axis
            }
            long nameAt = at + 12 + 4L * dims;
            if (nameLength <= 0 || nameLength > MAX_NAME_BYTES) {
                throw bad(path, where + " has a name of " + Integer.toUnsignedString(nameLength) + " bytes");
            }
            need(path, file, nameAt, nameLength, where + " name");
            String name = utf8(path, file.asSlice(nameAt, nameLength).toArray(ValueLayout.JAVA_BYTE), where);
            checkType(path, type, "tensor " + name);
            long numel;
            long bytes;
            try {
                numel = Tensor.numel(shape);
                bytes = switch (type) {
                    case FP32 -> Math.multiplyExact(numel, 4);
                    case FP16 -> Math.multiplyExact(numel, 2);
                    default -> {
                        if (shape[dims - 1] % Q8Matrix.BLOCK != 0) {
                            throw bad(
                                    path,
                                    "tensor " + name + " is Q8_0 but its rows of " + shape[dims - 1]
                                            + " are not whole blocks of " + Q8Matrix.BLOCK);
                        }
                        yield Math.multiplyExact(numel / Q8Matrix.BLOCK, Q8_BLOCK_BYTES);
                    }
                };
            } catch (ArithmeticException e) {
                throw bad(path, "tensor " + name + " shape " + Arrays.toString(shape) + " overflows");
            }
            long dataAt = nameAt + nameLength;
            if (bytes > size - dataAt) {
                throw bad(
                        path,
                        "tensor " + name + " " + Arrays.toString(shape) + " " + TYPE_NAMES.get(type) + " needs "
                                + bytes + " bytes at byte " + dataAt + " but the file ends at " + size
                                + " (truncated file?)");
            }
            if (stored.put(name, new Stored(name, type, shape, file.asSlice(dataAt, bytes))) != null) {
                throw bad(path, "tensor " + name + " appears twice");
            }
            at = dataAt + bytes;
        }
        return new RwkvCppFile(path, arena, header, stored);
    }

    private static void need(Path path, MemorySegment file, long at, long bytes, String what) {
        if (bytes > file.byteSize() - at) {
            throw bad(
                    path,
                    what + " needs " + bytes + " bytes but the file ends at " + file.byteSize() + " (truncated file?)");
        }
    }

    private static String utf8(Path path, byte[] bytes, String where) {
        try {
            return StandardCharsets.UTF_8
                    .newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes))
                    .toString();
        } catch (CharacterCodingException e) {
            throw bad(path, where + " has a name that is not UTF-8");
        }
    }

    /** FP32, FP16 and Q8_0 are read; any other of rwkv.cpp's types is refused by its name. */
    private static void checkType(Path path, int type, String what) {
        if (type == FP32 || type == FP16 || type == Q8_0) {
            return;
        }
        if (type < 0 || type >= TYPE_NAMES.size()) {
            throw bad(path, what + " has unknown rwkv.cpp data type " + Integer.toUnsignedString(type));
        }
        throw bad(
                path,
                what + " is " + TYPE_NAMES.get(type) + ", which this engine does not read (rwkv.cpp files of FP32,"
                        + " FP16 and Q8_0 are); quantize the FP32 or FP16 file to Q8_0 with rwkv.cpp, or use"
                        + " `--quantize q8_0` on it");
    }

    private Family family(Map<String, Stored> t) {
        if (t.containsKey("blocks.0.att.k_k")) {
            return Family.RWKV7;
        }
        if (t.containsKey("blocks.0.att.time_maa_x")) {
            return Family.RWKV6;
        }
        if (t.containsKey("blocks.0.att.ln_x.weight")) {
            return t.containsKey("blocks.0.att.gate.weight") ? Family.RWKV5_2 : Family.RWKV5_1;
        }
        if (t.containsKey("blocks.0.att.time_decay")) {
            throw bad(path, "an RWKV-4 model (no blocks.0.att.ln_x.weight), which this engine does not run");
        }
        throw bad(path, "no RWKV layer found (missing tensor blocks.0.att.ln_x.weight)");
    }

    /** The header's sizes agree with the tensors: the embedding's shape and the count of layers. */
    private void checkHeader(Map<String, Stored> t) {
        Stored emb = t.get("emb.weight");
        if (emb == null) {
            throw bad(path, "missing tensor emb.weight");
        }
        long[] want = {Integer.toUnsignedLong(vocab), Integer.toUnsignedLong(embed)};
        if (!Arrays.equals(emb.shape(), want)) {
            throw bad(
                    path,
                    "header says n_vocab=" + want[0] + ", n_embed=" + want[1] + " but emb.weight has shape "
                            + Arrays.toString(emb.shape()));
        }
        int found = 0;
        while (t.containsKey("blocks." + found + ".ln1.weight")) {
            found++;
        }
        if (found != layers) {
            throw bad(
                    path,
                    "header says n_layer=" + Integer.toUnsignedString(layers) + " but the file holds " + found
                            + " layers");
        }
    }

    /** Undoes rwkv.cpp's converter: RWKV-LM's names, layouts and values. */
    private Map<String, Tensor> toRwkvLm(Map<String, Stored> stored) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (Stored s : stored.values()) {
            String name = s.name();
            if (family == Family.RWKV7 && name.endsWith(".att.x_rwkvag")) {
                splitMixes(s, out);
            } else if (transposed(name)) {
                float[] v = floats(s);
                long[] shape = s.shape();
                if (shape.length == 3) { // RWKV-6's time_maa_w2: its last two axes were swapped
                    out.put(name, offHeap(name, new long[] {shape[0], shape[2], shape[1]}, swapLast(v, shape)));
                } else if (shape.length == 2) {
                    out.put(name, offHeap(name, new long[] {shape[1], shape[0]}, swapLast(v, new long[] {
                        1, shape[0], shape[1]
                    })));
                } else {
                    throw bad(path, "tensor " + name + " has shape " + Arrays.toString(shape) + ", expected a matrix");
                }
            } else if (isEagle() && name.endsWith(".att.time_decay")) {
                // Stored as the decay itself, exp(-exp(w)); RWKV-LM holds w.
                float[] v = floats(s);
                for (int i = 0; i < v.length; i++) {
                    v[i] = (float) Math.log(-Math.log(v[i]));
                }
                out.put(name, offHeap(name, eagleShape(s), v));
            } else if (family == Family.RWKV5_1 && name.endsWith(".att.time_first")) {
                float[] v = floats(s); // stored as exp(u)
                for (int i = 0; i < v.length; i++) {
                    v[i] = (float) Math.log(v[i]);
                }
                out.put(name, offHeap(name, eagleShape(s), v));
            } else if (name.endsWith(".att.time_faaaa")) {
                out.put(name, reshaped(stored(s), dropTrailingOne(s.shape())));
            } else {
                out.put(name, stored(s, out));
            }
        }
        return out;
    }

    private boolean isEagle() {
        return family == Family.RWKV5_1 || family == Family.RWKV5_2;
    }

    /** 5.1's per-head values are {@code [H]}, 5.2's per-channel ones {@code [H, N]}; rwkv.cpp adds size-1 axes. */
    private long[] eagleShape(Stored s) {
        long[] shape = s.shape();
        return family == Family.RWKV5_1 ? new long[] {Tensor.numel(shape)} : dropTrailingOne(shape);
    }

    private static long[] dropTrailingOne(long[] shape) {
        return shape.length > 1 && shape[shape.length - 1] == 1 ? Arrays.copyOf(shape, shape.length - 1) : shape;
    }

    /** The LoRA matrices the converter transposed: RWKV-6's mix and decay ones, RWKV-7's eight. */
    private boolean transposed(String name) {
        return switch (family) {
            case RWKV6 ->
                name.endsWith(".att.time_maa_w1")
                        || name.endsWith(".att.time_maa_w2")
                        || name.endsWith(".att.time_decay_w1")
                        || name.endsWith(".att.time_decay_w2");
            case RWKV7 -> name.matches(".*\\.att\\.[wavg][12]");
            default -> false;
        };
    }

    /** RWKV-7's {@code x_r, x_w, x_k, x_v, x_a, x_g}, concatenated in that order. */
    private void splitMixes(Stored s, Map<String, Tensor> out) {
        float[] v = floats(s);
        String[] names = {"x_r", "x_w", "x_k", "x_v", "x_a", "x_g"};
        if (v.length % names.length != 0) {
            throw bad(path, "tensor " + s.name() + " of " + v.length + " values is not six mixes");
        }
        int c = v.length / names.length;
        String prefix = s.name().substring(0, s.name().length() - "x_rwkvag".length());
        for (int i = 0; i < names.length; i++) {
            String name = prefix + names[i];
            out.put(name, offHeap(name, new long[] {1, 1, c}, Arrays.copyOfRange(v, i * c, (i + 1) * c)));
        }
    }

    /** {@code v} of shape {@code [a, b, c]} as {@code [a, c, b]}. */
    private static float[] swapLast(float[] v, long[] shape) {
        int a = (int) shape[0];
        int b = (int) shape[1];
        int c = (int) shape[2];
        float[] out = new float[v.length];
        for (int i = 0; i < a; i++) {
            for (int j = 0; j < b; j++) {
                for (int k = 0; k < c; k++) {
                    out[(i * c + k) * b + j] = v[(i * b + j) * c + k];
                }
            }
        }
        return out;
    }

    /** A stored tensor as it is: FP32 or FP16 as mapped; Q8_0 as the engine's I8 with F16 scales, or dequantized. */
    private Tensor stored(Stored s, Map<String, Tensor> out) {
        if (s.type() == Q8_0 && ModelWeights.isQuantizable(s.name(), s.shape())) {
            long rows = s.shape()[0];
            long blocks = s.shape()[1] / Q8Matrix.BLOCK;
            MemorySegment q = arena.allocate(rows * blocks * Q8Matrix.BLOCK, 64);
            MemorySegment scales = arena.allocate(rows * blocks * 2, 64);
            for (long b = 0; b < rows * blocks; b++) {
                long at = b * Q8_BLOCK_BYTES;
                scales.set(I16, b * 2, s.data().get(I16, at));
                MemorySegment.copy(s.data(), at + 2, q, b * Q8Matrix.BLOCK, Q8Matrix.BLOCK);
            }
            String scaleName = s.name() + ModelWeights.Q8_SCALE_SUFFIX;
            out.put(scaleName, new Tensor(scaleName, DType.F16, new long[] {rows, blocks}, scales));
            return new Tensor(s.name(), DType.I8, s.shape(), q);
        }
        return stored(s);
    }

    private Tensor stored(Stored s) {
        return switch (s.type()) {
            case FP32 -> new Tensor(s.name(), DType.F32, s.shape(), s.data());
            case FP16 -> new Tensor(s.name(), DType.F16, s.shape(), s.data());
            default -> offHeap(s.name(), s.shape(), floats(s));
        };
    }

    /** Every value as float32 (Q8_0 dequantized: each block's 32 bytes times its scale). */
    private float[] floats(Stored s) {
        long n = Tensor.numel(s.shape());
        if (n > Integer.MAX_VALUE - 8) {
            throw bad(path, "tensor " + s.name() + " is too large to transform");
        }
        float[] v = new float[(int) n];
        switch (s.type()) {
            case FP32 -> MemorySegment.copy(s.data(), F32, 0, v, 0, v.length);
            case FP16 -> {
                for (int i = 0; i < v.length; i++) {
                    v[i] = Floats.f16ToFloat(s.data().getAtIndex(I16, i));
                }
            }
            default -> {
                for (int b = 0; b < v.length / Q8Matrix.BLOCK; b++) {
                    long at = (long) b * Q8_BLOCK_BYTES;
                    float d = Floats.f16ToFloat(s.data().get(I16, at));
                    for (int j = 0; j < Q8Matrix.BLOCK; j++) {
                        v[b * Q8Matrix.BLOCK + j] = s.data().get(ValueLayout.JAVA_BYTE, at + 2 + j) * d;
                    }
                }
            }
        }
        return v;
    }

    /** In the file's arena: the weights read tensors as bytes (their fingerprint), which a float[] cannot give. */
    private Tensor offHeap(String name, long[] shape, float[] v) {
        MemorySegment seg = arena.allocate(4L * v.length, 64);
        MemorySegment.copy(v, 0, seg, F32, 0, v.length);
        return new Tensor(name, DType.F32, shape, seg);
    }

    private static Tensor reshaped(Tensor t, long[] shape) {
        return new Tensor(t.name(), t.dtype(), shape, t.data());
    }

    /**
     * The tensors with the shapes a config expects where they differ only by axes rwkv.cpp squeezed or added (the
     * same values in the same order); a matrix keeps its shape, so a wrong one is still named by the loader's check.
     */
    public static Map<String, Tensor> conform(Map<String, Tensor> tensors, Map<String, long[]> expected) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (Tensor t : tensors.values()) {
            long[] want = expected.get(t.name());
            boolean reshape = want != null
                    && !Arrays.equals(want, t.shape())
                    && t.dtype() != DType.I8
                    && Tensor.numel(want) == t.numel()
                    && !(isMatrix(want) && isMatrix(t.shape()));
            out.put(t.name(), reshape ? reshaped(t, want) : t);
        }
        return out;
    }

    private static boolean isMatrix(long[] shape) {
        return shape.length == 2 && shape[0] > 1 && shape[1] > 1;
    }

    /** RWKV-LM's tensors (names, layouts, values); valid until {@link #close()}. */
    public Map<String, Tensor> tensors() {
        return tensors;
    }

    public Family family() {
        return family;
    }

    /** The header's data type by rwkv.cpp's name (FP32, FP16, Q8_0). */
    public String dataType() {
        return TYPE_NAMES.get(dataType);
    }

    public Path path() {
        return path;
    }

    @Override
    public void close() {
        arena.close();
    }

    private static GoldFinchException.BadModel bad(Path path, String what) {
        return new GoldFinchException.BadModel(path + ": " + what);
    }
}
