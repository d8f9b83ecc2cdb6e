package dev.goldfinch.model;

import dev.goldfinch.model.tensor.DType;
import dev.goldfinch.model.tensor.Matrix;
import dev.goldfinch.model.tensor.Q8Matrix;
import dev.goldfinch.model.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Map;
import java.util.zip.CRC32C;

/**
 * The weights of one model, arranged per layer the way the forward pass reads them. Every matrix is
 * packed off-heap for the kernels ({@link Matrix}), LoRA factors transposed first so every product is
 * {@code W x}; the small vectors are copied to the heap. Nothing refers to the source tensors afterwards.
 */
public final class ModelWeights {
    /** Plain Finch's ddlerp LoRA slots ({@link TensorNames#FINCH_LORA_ORDER}: w, k, v, r, g). */
    static final int X060_W = 0, X060_K = 1, X060_V = 2, X060_R = 3, X060_G = 4;
    /** Finch-C2's ddlerp LoRA slots ({@link TensorNames#FINCH_C2_LORA_ORDER}: r, k, v, w, v2). */
    static final int C2_R = 0, C2_K = 1, C2_V = 2, C2_W = 3, C2_V2 = 4;

    /** One recurrent time-mix: plain Finch ({@code gate != null}) or Finch-C2 ({@code value2W1 != null}). */
    record FinchWeights(
            float[] maaX, // [C]
            float[][] maa, // [5][C] static mixes in LoRA slot order
            Matrix maaW1, // [5R, C] (transposed time_maa_w1)
            Matrix[] maaW2, // 5 x [C, R]
            float[] timeDecay, // [A]
            Matrix decayW1, // [D, C]
            Matrix decayW2, // [A, D]
            Matrix value2W1, // [D2, C] (Finch-C2 only)
            Matrix value2W2, // [A, D2]
            float[] bonus, // [H*N] time_faaaa (plain Finch only; Finch-C2 stores it unused)
            Matrix receptance, // [A, C]
            Matrix key, // [A, C]
            Matrix value, // [A, C]
            Matrix gate, // [A, C] (plain Finch only)
            Matrix output, // [C, A]
            float[] lnXWeight, // [A]
            float[] lnXBias) { // [A]
        boolean isC2() {
            return gate == null;
        }
    }

    /** One GOLD time-mix (spec §3): a query path; keys and values come from the shared compressed cache. */
    record GoldWeights(
            float[] maaX,
            float[] maaQ,
            float[] maaVCache,
            float[] maaK,
            float[] maaV, // [C] each
            Matrix qW1, // [Rq, C]
            Matrix qW2, // [C, Rq]
            Matrix kvW1, // [2Rkv, C]
            Matrix[] kvW2, // 2 x [C, Rkv] (k, v)
            Matrix keyW1, // [Dk, C]
            Matrix keyW2, // [A, Dk]
            Matrix valueW1, // [Dv, C]
            Matrix valueW2, // [A, Dv]
            Matrix query, // [A, C]
            Matrix output, // [C, A]
            float[] lnQWeight,
            float[] lnQBias,
            float[] lnKWeight,
            float[] lnKBias,
            float[] lnVWeight,
            float[] lnVBias,
            float[] lnXWeight,
            float[] lnXBias) {}

    record ChannelMixWeights(
            float[] maaK,
            float[] maaR,
            Matrix key /* [F, C] */,
            Matrix receptance /* [C, C] */,
            Matrix value /* [C, F] */) {}

    record Layer(
            float[] ln1Weight,
            float[] ln1Bias,
            float[] ln2Weight,
            float[] ln2Bias,
            FinchWeights finch,
            GoldWeights gold,
            ChannelMixWeights ffn) {}

    final ModelConfig config;
    final Tensor emb; // [V, C], row-major: only ever read a row at a time
    final float[] ln0Weight, ln0Bias, lnOutWeight, lnOutBias;
    final Matrix head; // [V, C]
    final Matrix kvCacheA; // [c, C]
    final Matrix kvCacheB; // [A, C + c]
    final Layer[] layers;
    private final long fingerprint;
    private final long weightBytes;
    private final WeightFormat format;
    /** Bytes quantization added (negative: saved), while the constructor runs. */
    private long quantizedSavings;

    ModelWeights(ModelConfig config, Map<String, Tensor> tensors) {
        this(config, tensors, WeightFormat.AS_STORED);
    }

    ModelWeights(ModelConfig config, Map<String, Tensor> tensors, WeightFormat format) {
        this.config = config;
        this.format = format;
        emb = tensors.get(TensorNames.EMB).copy();
        ln0Weight = vec(tensors, TensorNames.LN0_WEIGHT);
        ln0Bias = vec(tensors, TensorNames.LN0_BIAS);
        lnOutWeight = vec(tensors, TensorNames.LN_OUT_WEIGHT);
        lnOutBias = vec(tensors, TensorNames.LN_OUT_BIAS);
        head = mat(tensors, TensorNames.HEAD);
        kvCacheA = config.architecture().hasGold() ? mat(tensors, TensorNames.KV_CACHE_A) : null;
        kvCacheB = config.architecture().hasGold() ? mat(tensors, TensorNames.KV_CACHE_B) : null;
        layers = new Layer[config.nLayer()];
        for (int l = 0; l < layers.length; l++) {
            TensorNames n = new TensorNames(l);
            ChannelMixWeights ffn = new ChannelMixWeights(
                    vec(tensors, n.ffn(TensorNames.MAA_K)),
                    vec(tensors, n.ffn(TensorNames.MAA_R)),
                    mat(tensors, n.ffn(TensorNames.KEY)),
                    mat(tensors, n.ffn(TensorNames.RECEPTANCE)),
                    mat(tensors, n.ffn(TensorNames.VALUE)));
            FinchWeights finch = null;
            GoldWeights gold = null;
            if (config.isGold(l)) {
                gold = new GoldWeights(
                        vec(tensors, n.att(TensorNames.MAA_X)),
                        vec(tensors, n.att(TensorNames.MAA_Q)),
                        vec(tensors, n.att(TensorNames.MAA_V_CACHE)),
                        vec(tensors, n.att(TensorNames.MAA_K)),
                        vec(tensors, n.att(TensorNames.MAA_V)),
                        transposed(tensors, n.att(TensorNames.Q_W1)),
                        transposed(tensors, n.att(TensorNames.Q_W2)),
                        transposed(tensors, n.att(TensorNames.KV_W1)),
                        stackedTransposed(tensors, n.att(TensorNames.KV_W2)),
                        transposed(tensors, n.att(TensorNames.KEY_W1)),
                        transposed(tensors, n.att(TensorNames.KEY_W2)),
                        transposed(tensors, n.att(TensorNames.VALUE_W1)),
                        transposed(tensors, n.att(TensorNames.VALUE_W2)),
                        mat(tensors, n.att(TensorNames.QUERY)),
                        mat(tensors, n.att(TensorNames.OUTPUT)),
                        vec(tensors, n.attNormWeight(TensorNames.LN_Q)),
                        vec(tensors, n.attNormBias(TensorNames.LN_Q)),
                        vec(tensors, n.attNormWeight(TensorNames.LN_K)),
                        vec(tensors, n.attNormBias(TensorNames.LN_K)),
                        vec(tensors, n.attNormWeight(TensorNames.LN_V)),
                        vec(tensors, n.attNormBias(TensorNames.LN_V)),
                        vec(tensors, n.attNormWeight(TensorNames.LN_X)),
                        vec(tensors, n.attNormBias(TensorNames.LN_X)));
            } else {
                boolean c2 = config.architecture() != Architecture.FINCH;
                String[] order = c2 ? TensorNames.FINCH_C2_LORA_ORDER : TensorNames.FINCH_LORA_ORDER;
                float[][] maa = new float[order.length][];
                for (int i = 0; i < order.length; i++) {
                    maa[i] = vec(tensors, n.att(order[i]));
                }
                finch = new FinchWeights(
                        vec(tensors, n.att(TensorNames.MAA_X)),
                        maa,
                        transposed(tensors, n.att(TensorNames.MAA_W1)),
                        stackedTransposed(tensors, n.att(TensorNames.MAA_W2)),
                        vec(tensors, n.att(TensorNames.DECAY)),
                        transposed(tensors, n.att(TensorNames.DECAY_W1)),
                        transposed(tensors, n.att(TensorNames.DECAY_W2)),
                        c2 ? transposed(tensors, n.att(TensorNames.VALUE2_W1)) : null,
                        c2 ? transposed(tensors, n.att(TensorNames.VALUE2_W2)) : null,
                        c2 ? null : vec(tensors, n.att(TensorNames.BONUS)),
                        mat(tensors, n.att(TensorNames.RECEPTANCE)),
                        mat(tensors, n.att(TensorNames.KEY)),
                        mat(tensors, n.att(TensorNames.VALUE)),
                        c2 ? null : mat(tensors, n.att(TensorNames.GATE)),
                        mat(tensors, n.att(TensorNames.OUTPUT)),
                        vec(tensors, n.attNormWeight(TensorNames.LN_X)),
                        vec(tensors, n.attNormBias(TensorNames.LN_X)));
            }
            layers[l] = new Layer(
                    vec(tensors, n.ln1Weight()),
                    vec(tensors, n.ln1Bias()),
                    vec(tensors, n.ln2Weight()),
                    vec(tensors, n.ln2Bias()),
                    finch,
                    gold,
                    ffn);
        }
        long bytes = quantizedSavings;
        for (Tensor t : tensors.values()) {
            bytes += t.data().byteSize();
        }
        weightBytes = bytes;
        long fp = fingerprint(config, tensors);
        // A quantized model answers differently: its states must never mix with the original's.
        fingerprint = format == WeightFormat.AS_STORED ? fp : Long.rotateLeft(fp, 17) ^ 0x71385f305f71385fL;
    }

    private static float[] vec(Map<String, Tensor> t, String name) {
        return t.get(name).toFloats();
    }

    /** Beside a matrix stored as Q8_0 bytes (I8, by {@code goldfinch convert --quantize q8_0}): its F16 block scales. */
    public static final String Q8_SCALE_SUFFIX = ".q8_0_scale";

    /** The matrices the forward pass multiplies by (all 2-D weights but the embedding) whose width allows Q8_0 blocks. */
    public static boolean isQuantizable(String name, long[] shape) {
        return shape.length == 2
                && name.endsWith(".weight")
                && !name.equals(TensorNames.EMB)
                && shape[1] % Q8Matrix.BLOCK == 0;
    }

    private Matrix mat(Map<String, Tensor> t, String name) {
        Tensor stored = t.get(name);
        if (stored.dtype() == DType.I8) {
            return Matrix.ofQ8(stored, t.get(name + Q8_SCALE_SUFFIX));
        }
        Matrix m = Matrix.of(stored);
        if (format == WeightFormat.Q8_0) {
            Matrix q = Matrix.quantizeQ8(m);
            quantizedSavings += q.byteSize() - m.byteSize();
            return q;
        }
        return m;
    }

    /**
     * A LoRA factor stored {@code [in, out]} (used as {@code x @ W}), as an {@code [out, in]} matrix of the stored
     * type: never quantized (measured on the golden GoldFinch: q8_0 LoRAs move the logits 0.12 instead of 0.08),
     * and in a bf16 model bf16 like the large matrices, so the kernels meet one format.
     */
    private static Matrix transposed(Map<String, Tensor> t, String name) {
        Tensor tensor = t.get(name);
        long[] s = tensor.shape();
        return Matrix.of(transpose(tensor, 0, (int) s[0], (int) s[1]));
    }

    /** {@code [k, in, out]} LoRA up-projections, as k {@code [out, in]} matrices. */
    private static Matrix[] stackedTransposed(Map<String, Tensor> t, String name) {
        Tensor tensor = t.get(name);
        long[] s = tensor.shape();
        Matrix[] out = new Matrix[(int) s[0]];
        for (int i = 0; i < out.length; i++) {
            out[i] = Matrix.of(transpose(tensor, i * s[1] * s[2], (int) s[1], (int) s[2]));
        }
        return out;
    }

    /** The {@code [in, out]} elements of {@code src} from {@code first}, as an {@code [out, in]} tensor of the same type (bytes moved, not converted). */
    private static Tensor transpose(Tensor src, long first, int in, int out) {
        int size = src.dtype().bytes();
        MemorySegment dst = Arena.ofAuto().allocate((long) in * out * size);
        for (int i = 0; i < in; i++) {
            for (int o = 0; o < out; o++) {
                MemorySegment.copy(
                        src.data(), (first + (long) i * out + o) * size, dst, ((long) o * in + i) * size, size);
            }
        }
        return new Tensor(src.name(), src.dtype(), new long[] {out, in}, dst);
    }

    /** SHA-256 over the config and each tensor's name, type, shape and CRC32C, cut to 64 bits. */
    private static long fingerprint(ModelConfig config, Map<String, Tensor> tensors) {
        MessageDigest sha;
        try {
            sha = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        sha.update(config.canonical().getBytes(StandardCharsets.UTF_8));
        for (String expected : config.expectedTensors().keySet()) {
            for (String name : new String[] {expected, expected + Q8_SCALE_SUFFIX}) {
                Tensor t = tensors.get(name);
                if (t == null) {
                    continue; // only stored Q8_0 matrices have scales
                }
                CRC32C crc = new CRC32C();
                long size = t.data().byteSize();
                for (long off = 0; off < size; off += 1 << 30) {
                    crc.update(
                            t.data().asSlice(off, Math.min(1 << 30, size - off)).asByteBuffer());
                }
                sha.update((name + ":" + t.dtype() + ":" + t.shapeString() + ":" + crc.getValue() + ";")
                        .getBytes(StandardCharsets.UTF_8));
            }
        }
        return ByteBuffer.wrap(sha.digest()).getLong();
    }

    public ModelConfig config() {
        return config;
    }

    /** Identifies config + weights: states carry it, so a state is never continued on another model. */
    public long fingerprint() {
        return fingerprint;
    }

    public String fingerprintHex() {
        return HexFormat.of().toHexDigits(fingerprint);
    }

    public WeightFormat format() {
        return format;
    }

    public long weightBytes() {
        return weightBytes;
    }

    /** Weight bytes one decode step must read: every tensor but the embedding, of which one row. */
    public long bytesReadPerToken() {
        return weightBytes - emb.data().byteSize() + emb.data().byteSize() / emb.shape()[0];
    }
}
