package dev.goldfinch.model.state;

import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.ModelConfig;
import java.util.Locale;

/**
 * How a live sequence holds its GOLD layers' materialised keys and values (never serialized: the cache holds only
 * compressed keys). bf16 keeps the top half of each float; int8 keeps one byte per value and one float scale per
 * head-row ({@code max |x| / 127} over the head's {@code N} values of one position). Attention widens them on the fly.
 */
public enum KvFormat {
    F32(4),
    BF16(2),
    INT8(1);

    private final int bytesPerValue;

    KvFormat(int bytesPerValue) {
        this.bytesPerValue = bytesPerValue;
    }

    public int bytesPerValue() {
        return bytesPerValue;
    }

    /** The option's spelling ({@code f32}, {@code bf16}, {@code int8}). */
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** {@code f32}, {@code bf16} or {@code int8} (any case); null or blank is the default. */
    public static KvFormat parse(String value) {
        if (value == null || value.isBlank()) {
            return defaultFormat();
        }
        return switch (value.strip().toLowerCase(Locale.ROOT)) {
            case "f32" -> F32;
            case "bf16" -> BF16;
            case "int8" -> INT8;
            default -> throw new GoldFinchException.InvalidInput("kv-format must be f32, bf16 or int8, got " + value);
        };
    }

    /**
     * f32. bf16 was to be the default if it kept the golden GoldFinch's logits within 1e-3 of the reference; it moves
     * them by 6.2e-3 (int8: 2.0e-2; GoldenLiveKvTest), so the compact formats are options.
     */
    public static KvFormat defaultFormat() {
        return F32;
    }

    /**
     * Bytes a live sequence holds per token in the GOLD K/V of {@code cfg}, per GOLD layer three rows of {@code A}
     * values: the keys by position (the last incomplete block reads them), the keys again in attention's transposed
     * blocks, and the values; int8 adds a float scale per head for each.
     */
    public long liveBytesPerToken(ModelConfig cfg) {
        long perRow = (long) cfg.dimAtt() * bytesPerValue + (this == INT8 ? 4L * cfg.nHead() : 0);
        return 3L * perRow * cfg.goldLayers();
    }
}
