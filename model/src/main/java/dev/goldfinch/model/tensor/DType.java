package dev.goldfinch.model.tensor;

import java.util.Locale;

/** Element types of stored tensors, named as safetensors names them. */
public enum DType {
    F32(4),
    F16(2),
    BF16(2),
    F64(8),
    I64(8),
    I32(4),
    I8(1),
    U8(1);

    private final int bytes;

    DType(int bytes) {
        this.bytes = bytes;
    }

    public int bytes() {
        return bytes;
    }

    public static DType parse(String name) {
        try {
            return valueOf(name.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            return null;
        }
    }
}
