package dev.goldfinch.model;

import dev.goldfinch.model.tensor.Floats;
import dev.goldfinch.model.tensor.Tensor;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes RWKV-LM tensors as rwkv.cpp's converter would (its file format, and its changes to names, layouts and
 * values), so tests can make rwkv.cpp files of any family and precision from random weights. Also gives, for each
 * precision, the RWKV-LM tensors rounded as the file rounds them: what the file's model must compute with.
 */
final class RwkvCppWriter {
    static final int FP32 = 0;
    static final int FP16 = 1;
    static final int Q5_1 = 8;
    static final int Q8_0 = 9;
    private static final String[] GOOSE_MIXES = {"x_r", "x_w", "x_k", "x_v", "x_a", "x_g"};

    private RwkvCppWriter() {}

    /** A record of the file: its name, PyTorch-order shape, rwkv.cpp type, and data bytes. */
    record Record(String name, long[] shape, int type, byte[] data) {}

    static void write(Path out, ModelConfig config, Map<String, Tensor> rwkvLm, int precision) throws IOException {
        Files.write(out, bytes(config, records(config, rwkvLm, precision), precision));
    }

    static byte[] bytes(ModelConfig config, List<Record> records, int headerType) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(ints(0x67676d66, 101, config.vocabSize(), config.nEmbd(), config.nLayer(), headerType));
        for (Record r : records) {
            byte[] name = r.name().getBytes(StandardCharsets.UTF_8);
            out.writeBytes(ints(r.shape().length, name.length, r.type()));
            for (int d = r.shape().length - 1; d >= 0; d--) {
                out.writeBytes(ints((int) r.shape()[d]));
            }
            out.writeBytes(name);
            out.writeBytes(r.data());
        }
        return out.toByteArray();
    }

    static List<Record> records(ModelConfig config, Map<String, Tensor> rwkvLm, int precision) {
        Architecture arch = config.architecture();
        List<Record> out = new ArrayList<>();
        Map<String, float[]> mixes = new LinkedHashMap<>();
        Map<String, Integer> seen = new LinkedHashMap<>();
        for (Tensor t : rwkvLm.values()) {
            String name = t.name();
            float[] v = t.toFloats();
            long[] shape = t.shape();
            if (arch == Architecture.RWKV7 && name.matches(".*\\.att\\.x_[rwkvag]")) {
                String layer = name.substring(0, name.length() - 3);
                float[] all = mixes.computeIfAbsent(layer, k -> new float[6 * config.nEmbd()]);
                int slot = List.of(GOOSE_MIXES).indexOf(name.substring(name.length() - 3));
                System.arraycopy(v, 0, all, slot * config.nEmbd(), config.nEmbd());
                if (seen.merge(layer, 1, Integer::sum) == GOOSE_MIXES.length) { // all six: the concatenation
                    out.add(record(layer + "x_rwkvag", new long[] {6, 1, config.nEmbd()}, all, precision));
                }
                continue;
            }
            if (name.contains(".time_")) {
                shape = squeeze(shape);
            }
            if (arch == Architecture.RWKV7 && name.matches(".*\\.att\\.[wavg][12]")) {
                v = transpose(v, shape);
                shape = new long[] {shape[1], shape[0]};
            } else if (arch == Architecture.FINCH) {
                if (name.endsWith(".time_faaaa")) {
                    shape = new long[] {shape[0], shape[1], 1};
                } else if (name.endsWith(".time_maa_w1") || name.contains(".time_decay_w")) {
                    v = transpose(v, shape);
                    shape = new long[] {shape[1], shape[0]};
                } else if (name.endsWith(".time_maa_w2")) {
                    float[] w = new float[v.length];
                    int a = (int) shape[0], b = (int) shape[1], c = (int) shape[2];
                    for (int i = 0; i < a; i++) {
                        for (int j = 0; j < b; j++) {
                            for (int k = 0; k < c; k++) {
                                w[(i * c + k) * b + j] = v[(i * b + j) * c + k];
                            }
                        }
                    }
                    v = w;
                    shape = new long[] {a, c, b};
                } else if (name.endsWith(".time_decay")) {
                    shape = new long[] {config.nHead(), config.headSize(), 1};
                }
            } else if (arch.isEagle()) {
                if (name.endsWith(".time_decay")) {
                    v = v.clone();
                    for (int i = 0; i < v.length; i++) {
                        v[i] = (float) Math.exp(-Math.exp(v[i]));
                    }
                    shape = arch == Architecture.RWKV5_2
                            ? new long[] {shape[0], shape[1], 1}
                            : new long[] {v.length, 1, 1};
                } else if (name.endsWith(".time_first")) {
                    v = v.clone();
                    for (int i = 0; i < v.length; i++) {
                        v[i] = (float) Math.exp(v[i]);
                    }
                    shape = new long[] {v.length, 1, 1};
                } else if (name.endsWith(".time_faaaa")) {
                    shape = new long[] {shape[0], shape[1], 1};
                }
            }
            out.add(record(name, shape, v, precision));
        }
        return out;
    }

    /** rwkv.cpp's FP16 converter halves the matrices but the small ones it names; its Q8_0 quantizes big matrices. */
    static int typeOf(String name, long[] shape, int precision) {
        if (precision == FP16
                && shape.length > 1
                && !name.matches(".*(\\.time_|\\.k_k|\\.k_a|\\.r_k|\\.x_rwkvag|\\.x_k|\\.w0|\\.a0|\\.v0).*")) {
            return FP16;
        }
        if (precision == Q8_0 && quantized(name, shape)) {
            return Q8_0;
        }
        return FP32;
    }

    /** The matrices this writer's Q8_0 files quantize: the layers' (not the embedding's or head's) weights. */
    static boolean quantized(String name, long[] shape) {
        return shape.length == 2
                && name.endsWith(".weight")
                && !name.equals("emb.weight")
                && !name.equals("head.weight")
                && shape[1] % 32 == 0;
    }

    private static Record record(String name, long[] shape, float[] v, int precision) {
        int type = typeOf(name, shape, precision);
        ByteBuffer b;
        switch (type) {
            case FP16 -> {
                b = ByteBuffer.allocate(v.length * 2).order(ByteOrder.LITTLE_ENDIAN);
                for (float f : v) {
                    b.putShort(Floats.floatToF16(f));
                }
            }
            case Q8_0 -> {
                b = ByteBuffer.allocate(v.length / 32 * 34).order(ByteOrder.LITTLE_ENDIAN);
                for (int block = 0; block < v.length / 32; block++) {
                    float d = q8Scale(v, block * 32);
                    b.putShort(Floats.floatToF16(d));
                    for (int j = 0; j < 32; j++) {
                        b.put(q8(v[block * 32 + j], d));
                    }
                }
            }
            default -> {
                b = ByteBuffer.allocate(v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
                for (float f : v) {
                    b.putFloat(f);
                }
            }
        }
        return new Record(name, shape, type, b.array());
    }

    /** ggml's Q8_0: the block's largest magnitude over 127, and each weight rounded to a multiple of it. */
    private static float q8Scale(float[] v, int from) {
        float amax = 0;
        for (int j = 0; j < 32; j++) {
            amax = Math.max(amax, Math.abs(v[from + j]));
        }
        return amax / 127f;
    }

    private static byte q8(float x, float d) {
        return (byte) (d == 0 ? 0 : Math.round(x / d));
    }

    /** The RWKV-LM tensors as a file of {@code precision} holds them, read back to float32. */
    static Map<String, Tensor> rounded(Map<String, Tensor> rwkvLm, int precision) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (Tensor t : rwkvLm.values()) {
            float[] v = t.toFloats();
            // RWKV-7's six mixes are stored as their concatenation, which stays FP32.
            String asStored = t.name().matches(".*\\.att\\.x_[rwkvag]") ? ".x_rwkvag" : t.name();
            int type = typeOf(asStored, t.shape(), precision);
            if (type == FP16) {
                for (int i = 0; i < v.length; i++) {
                    v[i] = Floats.f16ToFloat(Floats.floatToF16(v[i]));
                }
            } else if (type == Q8_0) { // not transposed on the way: blocks run along the same rows
                for (int block = 0; block < v.length / 32; block++) {
                    float d = q8Scale(v, block * 32);
                    float stored = Floats.f16ToFloat(Floats.floatToF16(d));
                    for (int j = 0; j < 32; j++) {
                        v[block * 32 + j] = q8(v[block * 32 + j], d) * stored;
                    }
                }
            }
            out.put(t.name(), Tensor.ofFloats(t.name(), t.shape(), v).copy()); // off-heap, as the weights read it
        }
        return out;
    }

    private static long[] squeeze(long[] shape) {
        long[] kept = java.util.Arrays.stream(shape).filter(d -> d != 1).toArray();
        return kept.length == 0 ? new long[] {1} : kept;
    }

    private static float[] transpose(float[] v, long[] shape) {
        int rows = (int) shape[0];
        int cols = (int) shape[1];
        float[] out = new float[v.length];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                out[j * rows + i] = v[i * cols + j];
            }
        }
        return out;
    }

    private static byte[] ints(int... values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (int v : values) {
            b.putInt(v);
        }
        return b.array();
    }
}
