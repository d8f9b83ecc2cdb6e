package dev.goldfinch.model;

/** The model families the engine runs. The checkpoints carry no config: the loader infers this from tensor names. */
public enum Architecture {
    /** Finch-C2 layers then GOLD attention layers over one compressed key cache (the paper's model). */
    GOLDFINCH("x060c2", "gold"),
    /** Finch-C2 layers only (the paper's ablation). */
    FINCH_C2("x060c2", ""),
    /** Plain Finch, RWKV-6 ({@code x060}). */
    FINCH("x060", ""),
    /** Eagle, RWKV-5.1: static token shift, a static decay and bonus per head, no gate. */
    RWKV5_1("x051", ""),
    /** Eagle, RWKV-5.2: as 5.1 with a decay and bonus per channel and a SiLU gate (the World models). */
    RWKV5_2("x052", ""),
    /** Goose, RWKV-7 ({@code x070}): the state corrected by a rank-1 term per step, a value residual from layer 0. */
    RWKV7("x070", "");

    private final String tmix;
    private final String tmix2;

    Architecture(String tmix, String tmix2) {
        this.tmix = tmix;
        this.tmix2 = tmix2;
    }

    /** The reference code's {@code tmix} name for the recurrent layers. */
    public String tmix() {
        return tmix;
    }

    /** The reference code's {@code tmix2} name for the upper layers, empty when there are none. */
    public String tmix2() {
        return tmix2;
    }

    public boolean hasGold() {
        return this == GOLDFINCH;
    }

    /** RWKV-5 (Eagle), 5.1 or 5.2. */
    public boolean isEagle() {
        return this == RWKV5_1 || this == RWKV5_2;
    }

    /**
     * The eps of the per-head GroupNorm {@code ln_x} (Finch-C2's single LayerNorm uses {@link
     * ModelConfig#LAYER_NORM_EPS}): 1e-5 in RWKV-5, 1e-5 × head_size_divisor(8)² in RWKV-6 and 7, as rwkv.cpp has them.
     */
    public float groupNormEps() {
        return isEagle() ? ModelConfig.LAYER_NORM_EPS : ModelConfig.GROUP_NORM_EPS;
    }

    public String displayName() {
        return switch (this) {
            case GOLDFINCH -> "goldfinch";
            case FINCH_C2 -> "finchc2";
            case FINCH -> "finch";
            case RWKV5_1 -> "rwkv5.1";
            case RWKV5_2 -> "rwkv5.2";
            case RWKV7 -> "rwkv7";
        };
    }

    /** A display name, an enum name, or a family's other names: rwkv6 (finch), rwkv5 / eagle (5.2), goose (7). */
    public static Architecture parse(String name) {
        for (Architecture a : values()) {
            if (a.displayName().equalsIgnoreCase(name) || a.name().equalsIgnoreCase(name)) {
                return a;
            }
        }
        return switch (name.toLowerCase(java.util.Locale.ROOT)) {
            case "rwkv6" -> FINCH;
            case "rwkv5", "eagle" -> RWKV5_2;
            case "goose" -> RWKV7;
            default ->
                throw new GoldFinchException.InvalidInput(
                        "unknown architecture '" + name + "' (goldfinch, finchc2, finch, rwkv5.1, rwkv5.2 or rwkv7)");
        };
    }
}
