package dev.goldfinch.model;

import java.util.Locale;

/** How the big matrices are held in memory: as stored in the file, or quantized at load. */
public enum WeightFormat {
    /** f32, bf16 or f16 as the weights come. */
    AS_STORED,
    /** Q8_0: blocks of 32 signed bytes with an f16 scale (ggml's layout); matrices whose width is not a multiple of 32 stay as stored. */
    Q8_0;

    public static WeightFormat parse(String s) {
        return switch (s == null ? "" : s.toLowerCase(Locale.ROOT)) {
            case "", "none", "as-stored" -> AS_STORED;
            case "q8_0", "q8" -> Q8_0;
            default -> throw new GoldFinchException.InvalidInput("unknown quantization '" + s + "' (none or q8_0)");
        };
    }
}
