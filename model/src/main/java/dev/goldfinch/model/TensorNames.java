package dev.goldfinch.model;

/** Checkpoint tensor names, verbatim from the reference state_dict (spec §4), in one place. */
public record TensorNames(int layer) {
    public static final String EMB = "emb.weight";
    public static final String LN0_WEIGHT = "blocks.0.ln0.weight";
    public static final String LN0_BIAS = "blocks.0.ln0.bias";
    public static final String LN_OUT_WEIGHT = "ln_out.weight";
    public static final String LN_OUT_BIAS = "ln_out.bias";
    public static final String HEAD = "head.weight";
    public static final String KV_CACHE_A = "w_kv_cache_a.weight";
    public static final String KV_CACHE_B = "w_kv_cache_b.weight";

    /** Static token-shift mixes of plain Finch; the ddlerp LoRA outputs come in the order w, k, v, r, g. */
    static final String[] FINCH_MAA = {"time_maa_x", "time_maa_w", "time_maa_k", "time_maa_v", "time_maa_r", "time_maa_g"};
    /** Finch-C2; its ddlerp LoRA outputs come in the order r, k, v, w, v2. */
    static final String[] FINCH_C2_MAA = {"time_maa_x", "time_maa_r", "time_maa_k", "time_maa_v", "time_maa_w", "time_maa_v2"};
    static final String[] GOLD_MAA = {"time_maa_x", "time_maa_q", "time_maa_v_cache", "time_maa_k", "time_maa_v"};

    public String att(String name) {
        return "blocks." + layer + ".att." + name;
    }

    public String ffn(String name) {
        return "blocks." + layer + ".ffn." + name;
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
