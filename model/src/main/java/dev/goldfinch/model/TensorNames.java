package dev.goldfinch.model;

/**
 * Checkpoint tensor names, verbatim from the reference state_dict (spec §4): the one table the loader (inferring the
 * config), the config (the expected tensor set) and the weights (arranging them per layer) all read. A per-layer
 * tensor is {@code blocks.{l}.att.<leaf>} or {@code blocks.{l}.ffn.<leaf>}: {@code new TensorNames(l).att(QUERY)}.
 */
public record TensorNames(int layer) {
    public static final String EMB = "emb.weight";
    public static final String LN0_WEIGHT = "blocks.0.ln0.weight";
    public static final String LN0_BIAS = "blocks.0.ln0.bias";
    public static final String LN_OUT_WEIGHT = "ln_out.weight";
    public static final String LN_OUT_BIAS = "ln_out.bias";
    public static final String HEAD = "head.weight";
    public static final String KV_CACHE_A = "w_kv_cache_a.weight";
    public static final String KV_CACHE_B = "w_kv_cache_b.weight";

    // Static token-shift mixes ([1,1,C]): time mixes (att) and the channel mix (ffn: MAA_K, MAA_R).
    public static final String MAA_X = "time_maa_x";
    public static final String MAA_W = "time_maa_w";
    public static final String MAA_K = "time_maa_k";
    public static final String MAA_V = "time_maa_v";
    public static final String MAA_R = "time_maa_r";
    public static final String MAA_G = "time_maa_g";
    public static final String MAA_V2 = "time_maa_v2";
    public static final String MAA_Q = "time_maa_q";
    public static final String MAA_V_CACHE = "time_maa_v_cache";

    // Finch and Finch-C2 time mix (spec §1).
    public static final String MAA_W1 = "time_maa_w1";
    public static final String MAA_W2 = "time_maa_w2";
    public static final String DECAY = "time_decay";
    public static final String DECAY_W1 = "time_decay_w1";
    public static final String DECAY_W2 = "time_decay_w2";
    public static final String VALUE2_W1 = "time_value2_w1";
    public static final String VALUE2_W2 = "time_value2_w2";
    public static final String BONUS = "time_faaaa";
    public static final String GATE = "gate.weight";

    // RWKV-5 (Eagle): static token-shift mixes ([1,1,C], x*mix + sx*(1-mix), att: K, V, R, G; ffn: K, R) and the
    // 5.1 bonus ([H], used as exp(time_first)); 5.2's bonus is BONUS ([H, N]) and both decays are DECAY.
    public static final String MIX_K = "time_mix_k";
    public static final String MIX_V = "time_mix_v";
    public static final String MIX_R = "time_mix_r";
    public static final String MIX_G = "time_mix_g";
    public static final String FIRST = "time_first";

    // RWKV-7 (Goose): token-shift mixes ([1,1,C], x + dx*mix; X_K is also the channel mix's), the LoRA pairs
    // ([C, D] then [D, C]) of the decay (w), in-context rate (a), value residual (v) and gate (g) with their biases
    // ([1,1,C]), and k_k, k_a ([1,1,C]) and r_k ([H, N]).
    public static final String X_R = "x_r";
    public static final String X_W = "x_w";
    public static final String X_K = "x_k";
    public static final String X_V = "x_v";
    public static final String X_A = "x_a";
    public static final String X_G = "x_g";
    public static final String W0 = "w0";
    public static final String W1 = "w1";
    public static final String W2 = "w2";
    public static final String A0 = "a0";
    public static final String A1 = "a1";
    public static final String A2 = "a2";
    public static final String V0 = "v0";
    public static final String V1 = "v1";
    public static final String V2 = "v2";
    public static final String G1 = "g1";
    public static final String G2 = "g2";
    public static final String K_K = "k_k";
    public static final String K_A = "k_a";
    public static final String R_K = "r_k";

    // GOLD time mix (spec §3).
    public static final String Q_W1 = "time_maa_q_w1";
    public static final String Q_W2 = "time_maa_q_w2";
    public static final String KV_W1 = "time_maa_kv_w1";
    public static final String KV_W2 = "time_maa_kv_w2";
    public static final String KEY_W1 = "time_key_w1";
    public static final String KEY_W2 = "time_key_w2";
    public static final String VALUE_W1 = "time_value_w1";
    public static final String VALUE_W2 = "time_value_w2";
    public static final String QUERY = "query.weight";

    // Projections of both time mixes and the channel mix.
    public static final String RECEPTANCE = "receptance.weight";
    public static final String KEY = "key.weight";
    public static final String VALUE = "value.weight";
    public static final String OUTPUT = "output.weight";

    // Time-mix LayerNorms ([A] weight and bias each): ln_x in every time mix, ln_q/ln_k/ln_v in GOLD.
    public static final String LN_X = "ln_x";
    public static final String LN_Q = "ln_q";
    public static final String LN_K = "ln_k";
    public static final String LN_V = "ln_v";

    /** Static token-shift mixes of plain Finch. */
    static final String[] FINCH_MAA = {MAA_X, MAA_W, MAA_K, MAA_V, MAA_R, MAA_G};
    /** Finch-C2's. */
    static final String[] FINCH_C2_MAA = {MAA_X, MAA_R, MAA_K, MAA_V, MAA_W, MAA_V2};

    /** RWKV-5's time-mix mixes, in {@link ModelWeights.EagleWeights#mix} order (5.1 has no G). */
    static final String[] EAGLE_MIX = {MIX_K, MIX_V, MIX_R, MIX_G};
    /** RWKV-7's, in {@link ModelWeights.GooseWeights#mix} order. */
    static final String[] GOOSE_MIX = {X_R, X_W, X_K, X_V, X_A, X_G};

    static final String[] GOLD_MAA = {MAA_X, MAA_Q, MAA_V_CACHE, MAA_K, MAA_V};
    /** The ddlerp LoRA outputs of plain Finch ({@code time_maa_w2}'s order): w, k, v, r, g. */
    static final String[] FINCH_LORA_ORDER = {MAA_W, MAA_K, MAA_V, MAA_R, MAA_G};
    /** Finch-C2's: r, k, v, w, v2 (spec §1). */
    static final String[] FINCH_C2_LORA_ORDER = {MAA_R, MAA_K, MAA_V, MAA_W, MAA_V2};

    static final String[] GOLD_LAYER_NORMS = {LN_Q, LN_K, LN_V, LN_X};

    public String att(String name) {
        return "blocks." + layer + ".att." + name;
    }

    public String ffn(String name) {
        return "blocks." + layer + ".ffn." + name;
    }

    /** The affine weight of a time-mix LayerNorm ({@link #LN_X}, ...). */
    public String attNormWeight(String norm) {
        return att(norm + ".weight");
    }

    public String attNormBias(String norm) {
        return att(norm + ".bias");
    }

    public String ln1Weight() {
        return "blocks." + layer + ".ln1.weight";
    }

    public String ln1Bias() {
        return "blocks." + layer + ".ln1.bias";
    }

    public String ln2Weight() {
        return "blocks." + layer + ".ln2.weight";
    }

    public String ln2Bias() {
        return "blocks." + layer + ".ln2.bias";
    }
}
