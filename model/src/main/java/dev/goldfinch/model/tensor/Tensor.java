package dev.goldfinch.model.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * A named, typed, shaped view of little-endian bytes: a slice of a memory-mapped file or of heap
 * memory. It never copies unless asked ({@link #toFloats()}).
 */
public record Tensor(String name, DType dtype, long[] shape, MemorySegment data) {
    static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);

    public Tensor {
        shape = shape.clone();
        long expected = numel(shape) * dtype.bytes();
        if (data.byteSize() != expected) {
            throw new IllegalArgumentException("tensor " + name + ": " + data.byteSize() + " bytes for shape "
                    + Arrays.toString(shape) + " of " + dtype + " (expected " + expected + ")");
        }
    }

    public static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    public long numel() {
        return numel(shape);
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    public String shapeString() {
        return Arrays.toString(shape);
    }

    /** Element i as a float, whatever the stored floating-point type. */
    public float getFloat(long i) {
        return switch (dtype) {
            case F32 -> data.getAtIndex(F32, i);
            case BF16 -> Floats.bf16ToFloat(data.getAtIndex(I16, i));
            case F16 -> Floats.f16ToFloat(data.getAtIndex(I16, i));
            case F64 ->
                (float) data.getAtIndex(
                        ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN), i);
            default -> throw new UnsupportedOperationException("tensor " + name + " has non-float type " + dtype);
        };
    }

    /** A heap copy as float32; for small tensors (norms, mixes, LoRAs), never for the large matrices. */
    public float[] toFloats() {
        long n = numel();
        if (n > Integer.MAX_VALUE - 8) {
            throw new IllegalStateException("tensor " + name + " is too large to copy to the heap");
        }
        float[] out = new float[(int) n];
        if (dtype == DType.F32) {
            MemorySegment.copy(data, F32, 0, out, 0, out.length);
        } else {
            for (int i = 0; i < out.length; i++) {
                out[i] = getFloat(i);
            }
        }
        return out;
    }

    /** Row {@code row} of a 2-D tensor as float32 into {@code dst[off..)} (the embedding look-up). */
    public void copyRow(long row, float[] dst, int off) {
        int width = (int) shape[1];
        if (dtype == DType.F32) {
            MemorySegment.copy(data, F32, row * width * 4, dst, off, width);
            return;
        }
        for (int j = 0; j < width; j++) {
            dst[off + j] = getFloat(row * width + j);
        }
    }

    /** The same tensor in memory of its own (off-heap, freed when unreachable), independent of its source's lifetime. */
    public Tensor copy() {
        MemorySegment own = java.lang.foreign.Arena.ofAuto().allocate(data.byteSize(), 64);
        own.copyFrom(data);
        return new Tensor(name, dtype, shape, own);
    }

    public static Tensor ofFloats(String name, long[] shape, float[] values) {
        MemorySegment seg = MemorySegment.ofArray(values);
        return new Tensor(name, DType.F32, shape, seg);
    }
}
