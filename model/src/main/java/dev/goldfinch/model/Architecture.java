package dev.goldfinch.model;

/** The model families the engine runs. The checkpoints carry no config: the loader infers this from tensor names. */
public enum Architecture {
    /** Finch-C2 layers then GOLD attention layers over one compressed key cache (the paper's model). */
    GOLDFINCH("x060c2", "gold"),
    /** Finch-C2 layers only (the paper's ablation). */
    FINCH_C2("x060c2", ""),
    /** Plain Finch, RWKV-6 ({@code x060}). */
    FINCH("x060", "");

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

    public String displayName() {
        return switch (this) {
            case GOLDFINCH -> "goldfinch";
            case FINCH_C2 -> "finchc2";
            case FINCH -> "finch";
        };
    }

    public static Architecture parse(String name) {
        for (Architecture a : values()) {
            if (a.displayName().equalsIgnoreCase(name) || a.name().equalsIgnoreCase(name)) {
                return a;
            }
        }
        throw new GoldFinchException.InvalidInput("unknown architecture '" + name + "' (goldfinch, finchc2 or finch)");
    }
}
