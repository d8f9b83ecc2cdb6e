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

    /**
     * One RWKV-5 time mix. The stored mixes ({@code x*mix + sx*(1-mix)}) are kept as {@code 1 - mix}, the engine's
     * {@code x + dx*maa} form; the decay and bonus are expanded to one value per channel, the decay as {@code
     * exp(-exp(w))} and 5.1's bonus as {@code exp(time_first)}.
     */
    record EagleWeights(
            float[][] mix, // [4][C] k, v, r, g ({@link TensorNames#EAGLE_MIX}; g null in 5.1)
            float[] decay, // [A]
            float[] bonus, // [A]
            Matrix receptance, // [A, C]
            Matrix key,
            Matrix value,
            Matrix gate, // [A, C], null in 5.1
            Matrix output, // [C, A]
            float[] lnXWeight,
            float[] lnXBias) {}

    /** Eagle's mix slots. */
    static final int EAGLE_K = 0, EAGLE_V = 1, EAGLE_R = 2, EAGLE_G = 3;

    /** One RWKV-7 time mix; LoRA factors transposed ({@code W x}). */
    record GooseWeights(
            float[][] mix, // [6][C] r, w, k, v, a, g ({@link TensorNames#GOOSE_MIX})
            float[] w0,
            Matrix w1, // [Dw, C]
            Matrix w2, // [A, Dw]
            float[] a0,
            Matrix a1,
            Matrix a2,
            float[] v0, // null in layer 0 (so v1, v2)
            Matrix v1,
            Matrix v2,
            Matrix g1,
            Matrix g2,
            float[] kK, // [A]
            float[] kA, // [A]
            float[] rK, // [A] (stored [H, N])
            Matrix receptance,
            Matrix key,
            Matrix value,
            Matrix output,
            float[] lnXWeight,
            float[] lnXBias) {}

    /** Goose's mix slots. */
    static final int GOOSE_R = 0, GOOSE_W = 1, GOOSE_K = 2, GOOSE_V = 3, GOOSE_A = 4, GOOSE_G = 5;

    /** The channel mix; RWKV-7's has no receptance ({@code maaR} and {@code receptance} null). */
    record ChannelMixWeights(
            float[] maaK,
            float[] maaR,
            Matrix key /* [F, C] */,
            Matrix receptance /* [C, C] */,
            Matrix value /* [C, F] */) {}

    /** One layer: exactly one of the time mixes is set. */
    record Layer(
            float[] ln1Weight,
            float[] ln1Bias,
            float[] ln2Weight,
            float[] ln2Bias,
            FinchWeights finch,
            GoldWeights gold,
            EagleWeights eagle,
            GooseWeights goose,
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
            Architecture arch = config.architecture();
            ChannelMixWeights ffn = arch == Architecture.RWKV7
                    ? new ChannelMixWeights(
                            vec(tensors, n.ffn(TensorNames.X_K)),
                            null,
                            mat(tensors, n.ffn(TensorNames.KEY)),
                            null,
                            mat(tensors, n.ffn(TensorNames.VALUE)))
                    : new ChannelMixWeights(
                            arch.isEagle()
                                    ? oneMinus(vec(tensors, n.ffn(TensorNames.MIX_K)))
                                    : vec(tensors, n.ffn(TensorNames.MAA_K)),
                            arch.isEagle()
                                    ? oneMinus(vec(tensors, n.ffn(TensorNames.MIX_R)))
                                    : vec(tensors, n.ffn(TensorNames.MAA_R)),
                            mat(tensors, n.ffn(TensorNames.KEY)),
                            mat(tensors, n.ffn(TensorNames.RECEPTANCE)),
                            mat(tensors, n.ffn(TensorNames.VALUE)));
            FinchWeights finch = null;
            GoldWeights gold = null;
            EagleWeights eagle = null;
            GooseWeights goose = null;
            if (arch.isEagle()) {
                eagle = eagle(tensors, n, config);
            } else if (arch == Architecture.RWKV7) {
                goose = goose(tensors, n, l);
            } else if (config.isGold(l)) {
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
                    eagle,
                    goose,
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

    private static float[] oneMinus(float[] mix) {
        for (int i = 0; i < mix.length; i++) {
            mix[i] = 1f - mix[i];
        }
        return mix;
    }

    private EagleWeights eagle(Map<String, Tensor> t, TensorNames n, ModelConfig config) {
        boolean v51 = config.architecture() == Architecture.RWKV5_1;
        float[][] mix = new float[TensorNames.EAGLE_MIX.length][];
        for (int i = 0; i < mix.length; i++) {
            String name = n.att(TensorNames.EAGLE_MIX[i]);
            mix[i] = t.containsKey(name) ? oneMinus(vec(t, name)) : null;
        }
        float[] decay = perChannel(vec(t, n.att(TensorNames.DECAY)), config);
        float[] bonus = perChannel(vec(t, n.att(v51 ? TensorNames.FIRST : TensorNames.BONUS)), config);
        for (int i = 0; i < decay.length; i++) {
            decay[i] = (float) Math.exp(-Math.exp(decay[i]));
            if (v51) {
                bonus[i] = (float) Math.exp(bonus[i]);
            }
        }
        return new EagleWeights(
                mix,
                decay,
                bonus,
                mat(t, n.att(TensorNames.RECEPTANCE)),
                mat(t, n.att(TensorNames.KEY)),
                mat(t, n.att(TensorNames.VALUE)),
                v51 ? null : mat(t, n.att(TensorNames.GATE)),
                mat(t, n.att(TensorNames.OUTPUT)),
                vec(t, n.attNormWeight(TensorNames.LN_X)),
                vec(t, n.attNormBias(TensorNames.LN_X)));
    }

    /** A value per head ({@code [H]}, RWKV-5.1) repeated over its channels; per-channel values ({@code [H, N]}) as they are. */
    private static float[] perChannel(float[] v, ModelConfig config) {
        if (v.length == config.dimAtt()) {
            return v;
        }
        float[] out = new float[config.dimAtt()];
        for (int i = 0; i < out.length; i++) {
            out[i] = v[i / config.headSize()];
        }
        return out;
    }

    private GooseWeights goose(Map<String, Tensor> t, TensorNames n, int layer) {
        float[][] mix = new float[TensorNames.GOOSE_MIX.length][];
        for (int i = 0; i < mix.length; i++) {
            mix[i] = vec(t, n.att(TensorNames.GOOSE_MIX[i]));
        }
        boolean residual = layer > 0;
        return new GooseWeights(
                mix,
                vec(t, n.att(TensorNames.W0)),
                transposed(t, n.att(TensorNames.W1)),
                transposed(t, n.att(TensorNames.W2)),
                vec(t, n.att(TensorNames.A0)),
                transposed(t, n.att(TensorNames.A1)),
                transposed(t, n.att(TensorNames.A2)),
                residual ? vec(t, n.att(TensorNames.V0)) : null,
                residual ? transposed(t, n.att(TensorNames.V1)) : null,
                residual ? transposed(t, n.att(TensorNames.V2)) : null,
                transposed(t, n.att(TensorNames.G1)),
                transposed(t, n.att(TensorNames.G2)),
                vec(t, n.att(TensorNames.K_K)),
                vec(t, n.att(TensorNames.K_A)),
                vec(t, n.att(TensorNames.R_K)),
                mat(t, n.att(TensorNames.RECEPTANCE)),
                mat(t, n.att(TensorNames.KEY)),
                mat(t, n.att(TensorNames.VALUE)),
                mat(t, n.att(TensorNames.OUTPUT)),
                vec(t, n.attNormWeight(TensorNames.LN_X)),
                vec(t, n.attNormBias(TensorNames.LN_X)));
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
