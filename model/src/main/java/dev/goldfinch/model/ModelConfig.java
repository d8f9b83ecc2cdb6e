package dev.goldfinch.model;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Every size of a model, as the reference code names them (spec §0). Immutable; derived from the
 * tensor shapes of a checkpoint or from a shape name.
 *
 * @param finchLayers the number of recurrent (Finch or Finch-C2) layers at the bottom; equals nLayer without GOLD
 * @param compressedDim width of one compressed key (C/16 in the released models); 0 without GOLD
 * @param decayLoraRank Finch's decay LoRA; RWKV-7's {@code w1}/{@code w2}
 * @param valueLoraRank Finch-C2's second value LoRA; RWKV-7's value-residual {@code v1}/{@code v2}
 * @param aLoraRank RWKV-7's in-context learning rate LoRA {@code a1}/{@code a2}; 0 in the other families
 * @param gateLoraRank RWKV-7's gate LoRA {@code g1}/{@code g2}; 0 in the other families
 */
public record ModelConfig(
        Architecture architecture,
        int nLayer,
        int nEmbd,
        int dimFfn,
        int headSize,
        int vocabSize,
        int finchLayers,
        int compressedDim,
        int maaLoraRank,
        int decayLoraRank,
        int valueLoraRank,
        int goldQueryLoraRank,
        int goldKvLoraRank,
        int goldKeyLoraRank,
        int goldValueLoraRank,
        int aLoraRank,
        int gateLoraRank) {

    /** LayerNorm eps everywhere but plain Finch's per-head GroupNorm. */
    public static final float LAYER_NORM_EPS = 1e-5f;
    /** Plain Finch's {@code ln_x} GroupNorm eps: 1e-5 * head_size_divisor(8)^2, fixed in RWKV-LM and rwkv.cpp. */
    public static final float GROUP_NORM_EPS = 64e-5f;
    /** Added to the RMS outside the square root (spec §0, {@code src/norm.py}). */
    public static final float RMS_NORM_EPS = 1e-8f;

    public ModelConfig {
        positive("n_layer", nLayer);
        positive("n_embd", nEmbd);
        positive("dim_ffn", dimFfn);
        positive("head_size", headSize);
        positive("vocab_size", vocabSize);
        if (nEmbd % headSize != 0) {
            throw new GoldFinchException.BadModel("n_embd " + nEmbd + " is not a multiple of head_size " + headSize);
        }
        if (architecture.hasGold()) {
            if (finchLayers < 1 || finchLayers >= nLayer) {
                throw new GoldFinchException.BadModel(
                        "a GoldFinch model needs 1.." + (nLayer - 1) + " Finch-C2 layers, got " + finchLayers);
            }
            positive("compressed key width", compressedDim);
        } else if (finchLayers != nLayer || compressedDim != 0) {
            throw new GoldFinchException.BadModel(architecture.displayName() + " has no GOLD layers or key cache");
        }
    }

    private static void positive(String what, int v) {
        if (v <= 0) {
            throw new GoldFinchException.BadModel(what + " must be positive, got " + v);
        }
    }

    /**
     * The reference's defaults for a width: dim_ffn = int(C*3.5)//32*32 (RWKV-5 and 7: 4C), LoRA ranks 32/64, GOLD
     * LoRA max(C/16, 64); RWKV-7's LoRA ranks as its {@code rwkv_v7_demo.py} sizes them.
     */
    public static ModelConfig standard(Architecture arch, int nLayer, int nEmbd, int headSize, int vocabSize) {
        if (arch == Architecture.RWKV7) {
            double root = Math.sqrt(nEmbd);
            return new ModelConfig(
                    arch,
                    nLayer,
                    nEmbd,
                    4 * nEmbd,
                    headSize,
                    vocabSize,
                    nLayer,
                    0,
                    0,
                    loraRank(1.8 * root),
                    loraRank(1.3 * root),
                    0,
                    0,
                    0,
                    0,
                    loraRank(1.8 * root),
                    loraRank(0.6 * Math.pow(nEmbd, 0.8)));
        }
        if (arch.isEagle()) {
            return new ModelConfig(
                    arch, nLayer, nEmbd, 4 * nEmbd, headSize, vocabSize, nLayer, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
        }
        int ffn = (int) (nEmbd * 3.5) / 32 * 32;
        int finch = arch.hasGold() ? nLayer * 2 / 3 : nLayer; // inv_other_layer_ratio = 3: int(L*(r-1)/r)
        int goldLora = Math.max(nEmbd / 16, 64);
        return new ModelConfig(
                arch,
                nLayer,
                nEmbd,
                ffn,
                headSize,
                vocabSize,
                finch,
                arch.hasGold() ? nEmbd / 16 : 0,
                32,
                64,
                64,
                32,
                32,
                goldLora,
                goldLora,
                0,
                0);
    }

    /** RWKV-7's LoRA sizing: {@code max(32, round(x / 32) * 32)}. */
    private static int loraRank(double x) {
        return Math.max(32, (int) Math.round(x / 32) * 32);
    }

    public int nHead() {
        return nEmbd / headSize;
    }

    /** Attention width A; the reference code assumes A == C. */
    public int dimAtt() {
        return nEmbd;
    }

    public int goldLayers() {
        return nLayer - finchLayers;
    }

    public boolean isGold(int layer) {
        return layer >= finchLayers;
    }

    /** Positions a prefill must run the GOLD stack over to leave an exact state (spec §5.1): 2·Lg+1. */
    public int goldWindow() {
        return architecture.hasGold() ? 2 * goldLayers() + 1 : 0;
    }

    /** Every tensor of a checkpoint of this shape, with the reference names and shapes, in a stable order. */
    public Map<String, long[]> expectedTensors() {
        int c = nEmbd;
        int a = dimAtt();
        Map<String, long[]> t = new LinkedHashMap<>();
        t.put(TensorNames.EMB, new long[] {vocabSize, c});
        t.put(TensorNames.LN0_WEIGHT, new long[] {c});
        t.put(TensorNames.LN0_BIAS, new long[] {c});
        for (int l = 0; l < nLayer; l++) {
            TensorNames n = new TensorNames(l);
            t.put(n.ln1Weight(), new long[] {c});
            t.put(n.ln1Bias(), new long[] {c});
            t.put(n.ln2Weight(), new long[] {c});
            t.put(n.ln2Bias(), new long[] {c});
            if (architecture.isEagle()) {
                eagleTensors(t, n);
            } else if (architecture == Architecture.RWKV7) {
                gooseTensors(t, n, l);
            } else if (isGold(l)) {
                for (String m : TensorNames.GOLD_MAA) {
                    t.put(n.att(m), new long[] {1, 1, c});
                }
                t.put(n.att(TensorNames.Q_W1), new long[] {c, goldQueryLoraRank});
                t.put(n.att(TensorNames.Q_W2), new long[] {goldQueryLoraRank, c});
                t.put(n.att(TensorNames.KV_W1), new long[] {c, 2L * goldKvLoraRank});
                t.put(n.att(TensorNames.KV_W2), new long[] {2, goldKvLoraRank, c});
                t.put(n.att(TensorNames.KEY_W1), new long[] {c, goldKeyLoraRank});
                t.put(n.att(TensorNames.KEY_W2), new long[] {goldKeyLoraRank, a});
                t.put(n.att(TensorNames.VALUE_W1), new long[] {c, goldValueLoraRank});
                t.put(n.att(TensorNames.VALUE_W2), new long[] {goldValueLoraRank, a});
                t.put(n.att(TensorNames.QUERY), new long[] {a, c});
                t.put(n.att(TensorNames.OUTPUT), new long[] {c, a});
                for (String ln : TensorNames.GOLD_LAYER_NORMS) {
                    t.put(n.attNormWeight(ln), new long[] {a});
                    t.put(n.attNormBias(ln), new long[] {a});
                }
            } else {
                boolean c2 = architecture != Architecture.FINCH;
                for (String m : c2 ? TensorNames.FINCH_C2_MAA : TensorNames.FINCH_MAA) {
                    t.put(n.att(m), new long[] {1, 1, c});
                }
                t.put(n.att(TensorNames.MAA_W1), new long[] {c, 5L * maaLoraRank});
                t.put(n.att(TensorNames.MAA_W2), new long[] {5, maaLoraRank, c});
                t.put(n.att(TensorNames.DECAY), new long[] {1, 1, a});
                t.put(n.att(TensorNames.DECAY_W1), new long[] {c, decayLoraRank});
                t.put(n.att(TensorNames.DECAY_W2), new long[] {decayLoraRank, a});
                if (c2) {
                    t.put(n.att(TensorNames.VALUE2_W1), new long[] {c, valueLoraRank});
                    t.put(n.att(TensorNames.VALUE2_W2), new long[] {valueLoraRank, a});
                }
                t.put(n.att(TensorNames.BONUS), new long[] {nHead(), headSize});
                t.put(n.att(TensorNames.RECEPTANCE), new long[] {a, c});
                t.put(n.att(TensorNames.KEY), new long[] {a, c});
                t.put(n.att(TensorNames.VALUE), new long[] {a, c});
                if (!c2) {
                    t.put(n.att(TensorNames.GATE), new long[] {a, c});
                }
                t.put(n.att(TensorNames.OUTPUT), new long[] {c, a});
                t.put(n.attNormWeight(TensorNames.LN_X), new long[] {a});
                t.put(n.attNormBias(TensorNames.LN_X), new long[] {a});
            }
            if (architecture == Architecture.RWKV7) {
                t.put(n.ffn(TensorNames.X_K), new long[] {1, 1, c});
            } else {
                boolean eagle = architecture.isEagle();
                t.put(n.ffn(eagle ? TensorNames.MIX_K : TensorNames.MAA_K), new long[] {1, 1, c});
                t.put(n.ffn(eagle ? TensorNames.MIX_R : TensorNames.MAA_R), new long[] {1, 1, c});
            }
            t.put(n.ffn(TensorNames.KEY), new long[] {dimFfn, c});
            if (architecture != Architecture.RWKV7) {
                t.put(n.ffn(TensorNames.RECEPTANCE), new long[] {c, c});
            }
            t.put(n.ffn(TensorNames.VALUE), new long[] {c, dimFfn});
        }
        t.put(TensorNames.LN_OUT_WEIGHT, new long[] {c});
        t.put(TensorNames.LN_OUT_BIAS, new long[] {c});
        t.put(TensorNames.HEAD, new long[] {vocabSize, c});
        if (architecture.hasGold()) {
            t.put(TensorNames.KV_CACHE_A, new long[] {compressedDim, c});
            t.put(TensorNames.KV_CACHE_B, new long[] {a, c + compressedDim});
        }
        return t;
    }

    /** RWKV-5's time mix (5.1: decay and bonus per head, no gate; 5.2: both per channel, a gate). */
    private void eagleTensors(Map<String, long[]> t, TensorNames n) {
        int c = nEmbd;
        boolean v51 = architecture == Architecture.RWKV5_1;
        for (String m : TensorNames.EAGLE_MIX) {
            if (!(v51 && m.equals(TensorNames.MIX_G))) {
                t.put(n.att(m), new long[] {1, 1, c});
            }
        }
        t.put(n.att(TensorNames.DECAY), v51 ? new long[] {nHead()} : new long[] {nHead(), headSize});
        t.put(
                n.att(v51 ? TensorNames.FIRST : TensorNames.BONUS),
                v51 ? new long[] {nHead()} : new long[] {nHead(), headSize});
        t.put(n.att(TensorNames.RECEPTANCE), new long[] {c, c});
        t.put(n.att(TensorNames.KEY), new long[] {c, c});
        t.put(n.att(TensorNames.VALUE), new long[] {c, c});
        if (!v51) {
            t.put(n.att(TensorNames.GATE), new long[] {c, c});
        }
        t.put(n.att(TensorNames.OUTPUT), new long[] {c, c});
        t.put(n.attNormWeight(TensorNames.LN_X), new long[] {c});
        t.put(n.attNormBias(TensorNames.LN_X), new long[] {c});
    }

    /** RWKV-7's time mix; layer 0 has no value-residual LoRA (its value is the residual). */
    private void gooseTensors(Map<String, long[]> t, TensorNames n, int layer) {
        int c = nEmbd;
        for (String m : TensorNames.GOOSE_MIX) {
            t.put(n.att(m), new long[] {1, 1, c});
        }
        t.put(n.att(TensorNames.W0), new long[] {1, 1, c});
        t.put(n.att(TensorNames.W1), new long[] {c, decayLoraRank});
        t.put(n.att(TensorNames.W2), new long[] {decayLoraRank, c});
        t.put(n.att(TensorNames.A0), new long[] {1, 1, c});
        t.put(n.att(TensorNames.A1), new long[] {c, aLoraRank});
        t.put(n.att(TensorNames.A2), new long[] {aLoraRank, c});
        if (layer > 0) {
            t.put(n.att(TensorNames.V0), new long[] {1, 1, c});
            t.put(n.att(TensorNames.V1), new long[] {c, valueLoraRank});
            t.put(n.att(TensorNames.V2), new long[] {valueLoraRank, c});
        }
        t.put(n.att(TensorNames.G1), new long[] {c, gateLoraRank});
        t.put(n.att(TensorNames.G2), new long[] {gateLoraRank, c});
        t.put(n.att(TensorNames.K_K), new long[] {1, 1, c});
        t.put(n.att(TensorNames.K_A), new long[] {1, 1, c});
        t.put(n.att(TensorNames.R_K), new long[] {nHead(), headSize});
        t.put(n.att(TensorNames.RECEPTANCE), new long[] {c, c});
        t.put(n.att(TensorNames.KEY), new long[] {c, c});
        t.put(n.att(TensorNames.VALUE), new long[] {c, c});
        t.put(n.att(TensorNames.OUTPUT), new long[] {c, c});
        t.put(n.attNormWeight(TensorNames.LN_X), new long[] {c});
        t.put(n.attNormBias(TensorNames.LN_X), new long[] {c});
    }

    public long parameterCount() {
        long n = 0;
        for (long[] shape : expectedTensors().values()) {
            long p = 1;
            for (long d : shape) {
                p *= d;
            }
            n += p;
        }
        return n;
    }

    /** A stable text form, part of the model fingerprint. */
    public String canonical() {
        return architecture.displayName() + ":L" + nLayer + ":C" + nEmbd + ":F" + dimFfn + ":N" + headSize + ":V"
                + vocabSize
                + ":Lf" + finchLayers + ":c" + compressedDim + ":r" + maaLoraRank + "," + decayLoraRank + ","
                + valueLoraRank
                + "," + goldQueryLoraRank + "," + goldKvLoraRank + "," + goldKeyLoraRank + "," + goldValueLoraRank
                // Only RWKV-7 has these: the older families' fingerprints (and so their cached states) stay as they
                // were.
                + (architecture == Architecture.RWKV7 ? ":a" + aLoraRank + ",g" + gateLoraRank : "");
    }
}
