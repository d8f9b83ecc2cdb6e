package dev.goldfinch.model.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * Q8_0 (ggml's values): blocks of 32 weights of a row share a scale; a weight is {@code byte × scale}. In a
 * panel, each block is the panel's scales (f32) then 32 columns of one byte per row: 36 bytes per 32
 * weights, 3.6× less to read than f32.
 */
public final class Q8Matrix extends Matrix {
    /** Weights per scale. */
    public static final int BLOCK = 32;

    static final int BLOCK_BYTES = (4 + BLOCK) * PANEL;
    static final VectorSpecies<Byte> BYTES =
            VectorSpecies.of(byte.class, VectorShape.forBitSize(SPECIES.vectorBitSize() / 4));

    Q8Matrix(int rows, int cols, MemorySegment data) {
        super(rows, cols, BLOCK, BLOCK_BYTES, data);
    }

    /**
     * One input (decode): 8 panels at a time (4 without AVX-512), each weight widened and scaled as it is read
     * (the bytes are what memory bandwidth pays for). Several inputs (batched decode, prefill): strips of 4 panels widened and scaled
     * once into a per-thread float strip, then 4 panels × 4 inputs from it, as {@link PlainMatrix}'s tiles do (widening
     * per tile of inputs, and block sums scaled into totals, ran at half the f32 speed). Panels left over: one
     * at a time.
     */
    @Override
    void tiles(float[] x, int n, float[] y, int p0, int p1) {
        int p = p0;
        if (n == 1) {
            if (WIDE_REGISTER_FILE) {
                for (; p + 8 <= p1; p += 8) {
                    tile8x1(p, x, y);
                }
            }
            for (; p + 4 <= p1; p += 4) {
                tile4x1(p, x, y);
            }
        } else {
            for (; p + 4 <= p1; p += 4) {
                stripTiles(p, x, n, y);
            }
        }
        for (; p < p1; p++) {
            for (int t = 0; t < n; t++) {
                tile1x1(p, t, x, y);
            }
        }
    }

    private void tile8x1(int p, float[] x, float[] y) {
        FloatVector z = FloatVector.zero(SPECIES);
        FloatVector a0 = z;
        FloatVector a1 = z;
        FloatVector a2 = z;
        FloatVector a3 = z;
        FloatVector a4 = z;
        FloatVector a5 = z;
        FloatVector a6 = z;
        FloatVector a7 = z;
        for (int b = 0; b < blocks; b++) {
            long s0 = blockStart(p, b);
            long s1 = s0 + panelBytes;
            long s2 = s1 + panelBytes;
            long s3 = s2 + panelBytes;
            long s4 = s3 + panelBytes;
            long s5 = s4 + panelBytes;
            long s6 = s5 + panelBytes;
            long s7 = s6 + panelBytes;
            int xb = b * blockCols;
            for (int j = 0; j < blockCols; j++) { // not the constant: C2 would unroll all 32 and spill
                FloatVector v = FloatVector.broadcast(SPECIES, x[xb + j]);
                a0 = weights(s0, j).fma(v, a0);
                a1 = weights(s1, j).fma(v, a1);
                a2 = weights(s2, j).fma(v, a2);
                a3 = weights(s3, j).fma(v, a3);
                a4 = weights(s4, j).fma(v, a4);
                a5 = weights(s5, j).fma(v, a5);
                a6 = weights(s6, j).fma(v, a6);
                a7 = weights(s7, j).fma(v, a7);
            }
        }
        a0.intoArray(y, p * PANEL);
        a1.intoArray(y, (p + 1) * PANEL);
        a2.intoArray(y, (p + 2) * PANEL);
        a3.intoArray(y, (p + 3) * PANEL);
        a4.intoArray(y, (p + 4) * PANEL);
        a5.intoArray(y, (p + 5) * PANEL);
        a6.intoArray(y, (p + 6) * PANEL);
        a7.intoArray(y, (p + 7) * PANEL);
    }

    private void tile4x1(int p, float[] x, float[] y) {
        FloatVector z = FloatVector.zero(SPECIES);
        FloatVector a0 = z;
        FloatVector a1 = z;
        FloatVector a2 = z;
        FloatVector a3 = z;
        for (int b = 0; b < blocks; b++) {
            long s0 = blockStart(p, b);
            long s1 = s0 + panelBytes;
            long s2 = s1 + panelBytes;
            long s3 = s2 + panelBytes;
            int xb = b * blockCols;
            for (int j = 0; j < blockCols; j++) { // not the constant: C2 would unroll all 32 and spill
                FloatVector v = FloatVector.broadcast(SPECIES, x[xb + j]);
                a0 = weights(s0, j).fma(v, a0);
                a1 = weights(s1, j).fma(v, a1);
                a2 = weights(s2, j).fma(v, a2);
                a3 = weights(s3, j).fma(v, a3);
            }
        }
        a0.intoArray(y, p * PANEL);
        a1.intoArray(y, (p + 1) * PANEL);
        a2.intoArray(y, (p + 2) * PANEL);
        a3.intoArray(y, (p + 3) * PANEL);
    }

    private void tile1x1(int p, int t, float[] x, float[] y) {
        int x0 = t * cols;
        FloatVector a = FloatVector.zero(SPECIES);
        for (int b = 0; b < blocks; b++) {
            long s0 = blockStart(p, b);
            int xb = x0 + b * blockCols;
            for (int j = 0; j < blockCols; j++) {
                a = weights(s0, j).fma(FloatVector.broadcast(SPECIES, x[xb + j]), a);
            }
        }
        a.intoArray(y, t * rows + p * PANEL);
    }

    /**
     * 512-bit vectors come with 32 vector registers (AVX-512), room for eight panels' totals and scales. With 16
     * (AVX2), C2 kept the eight-panel decode tile's vectors in heap boxes: 21 KB allocated per 2688×768 product
     * and slower than four panels at a time (one thread: 9.8 vs 10.7 GFLOP/s, and no allocation).
     */
    private static final boolean WIDE_REGISTER_FILE = SPECIES.vectorBitSize() >= 512;

    /** Per thread: the float strip of {@link #stripTiles} (grown to the widest matrix seen, then reused). */
    private static final ThreadLocal<float[][]> STRIP = ThreadLocal.withInitial(() -> new float[1][0]);

    /** Panels {@code p .. p+3} times all {@code n} inputs, from the strip widened and scaled once. */
    private void stripTiles(int p, float[] x, int n, float[] y) {
        float[][] holder = STRIP.get();
        if (holder[0].length < 4 * cols * PANEL) {
            holder[0] = new float[4 * cols * PANEL];
        }
        float[] w = holder[0]; // [panel k][column j][lane]
        for (int k = 0; k < 4; k++) {
            for (int b = 0; b < blocks; b++) {
                long s = blockStart(p + k, b);
                for (int j = 0; j < blockCols; j++) {
                    weights(s, j).intoArray(w, (k * cols + b * blockCols + j) * PANEL);
                }
            }
        }
        int t = 0;
        for (; t + 4 <= n; t += 4) {
            strip4x4(p, t, x, w, y);
        }
        for (; t < n; t++) {
            strip4x1(p, t, x, w, y);
        }
    }

    private void strip4x4(int p, int t, float[] x, float[] w, float[] y) {
        int x0 = t * cols;
        int x1 = x0 + cols;
        int x2 = x1 + cols;
        int x3 = x2 + cols;
        int w1 = cols * PANEL;
        int w2 = 2 * w1;
        int w3 = 3 * w1;
        FloatVector z = FloatVector.zero(SPECIES);
        FloatVector a00 = z, a01 = z, a02 = z, a03 = z;
        FloatVector a10 = z, a11 = z, a12 = z, a13 = z;
        FloatVector a20 = z, a21 = z, a22 = z, a23 = z;
        FloatVector a30 = z, a31 = z, a32 = z, a33 = z;
        for (int j = 0, o = 0; j < cols; j++, o += PANEL) {
            FloatVector q0 = FloatVector.fromArray(SPECIES, w, o);
            FloatVector q1 = FloatVector.fromArray(SPECIES, w, w1 + o);
            FloatVector q2 = FloatVector.fromArray(SPECIES, w, w2 + o);
            FloatVector q3 = FloatVector.fromArray(SPECIES, w, w3 + o);
            FloatVector v = FloatVector.broadcast(SPECIES, x[x0 + j]);
            a00 = q0.fma(v, a00);
            a10 = q1.fma(v, a10);
            a20 = q2.fma(v, a20);
            a30 = q3.fma(v, a30);
            v = FloatVector.broadcast(SPECIES, x[x1 + j]);
            a01 = q0.fma(v, a01);
            a11 = q1.fma(v, a11);
            a21 = q2.fma(v, a21);
            a31 = q3.fma(v, a31);
            v = FloatVector.broadcast(SPECIES, x[x2 + j]);
            a02 = q0.fma(v, a02);
            a12 = q1.fma(v, a12);
            a22 = q2.fma(v, a22);
            a32 = q3.fma(v, a32);
            v = FloatVector.broadcast(SPECIES, x[x3 + j]);
            a03 = q0.fma(v, a03);
            a13 = q1.fma(v, a13);
            a23 = q2.fma(v, a23);
            a33 = q3.fma(v, a33);
        }
        a00.intoArray(y, t * rows + p * PANEL);
        a10.intoArray(y, t * rows + (p + 1) * PANEL);
        a20.intoArray(y, t * rows + (p + 2) * PANEL);
        a30.intoArray(y, t * rows + (p + 3) * PANEL);
        a01.intoArray(y, (t + 1) * rows + p * PANEL);
        a11.intoArray(y, (t + 1) * rows + (p + 1) * PANEL);
        a21.intoArray(y, (t + 1) * rows + (p + 2) * PANEL);
        a31.intoArray(y, (t + 1) * rows + (p + 3) * PANEL);
        a02.intoArray(y, (t + 2) * rows + p * PANEL);
        a12.intoArray(y, (t + 2) * rows + (p + 1) * PANEL);
        a22.intoArray(y, (t + 2) * rows + (p + 2) * PANEL);
        a32.intoArray(y, (t + 2) * rows + (p + 3) * PANEL);
        a03.intoArray(y, (t + 3) * rows + p * PANEL);
        a13.intoArray(y, (t + 3) * rows + (p + 1) * PANEL);
        a23.intoArray(y, (t + 3) * rows + (p + 2) * PANEL);
        a33.intoArray(y, (t + 3) * rows + (p + 3) * PANEL);
    }

    private void strip4x1(int p, int t, float[] x, float[] w, float[] y) {
        int x0 = t * cols;
        int w1 = cols * PANEL;
        int w2 = 2 * w1;
        int w3 = 3 * w1;
        FloatVector z = FloatVector.zero(SPECIES);
        FloatVector a0 = z;
        FloatVector a1 = z;
        FloatVector a2 = z;
        FloatVector a3 = z;
        for (int j = 0, o = 0; j < cols; j++, o += PANEL) {
            FloatVector v = FloatVector.broadcast(SPECIES, x[x0 + j]);
            a0 = FloatVector.fromArray(SPECIES, w, o).fma(v, a0);
            a1 = FloatVector.fromArray(SPECIES, w, w1 + o).fma(v, a1);
            a2 = FloatVector.fromArray(SPECIES, w, w2 + o).fma(v, a2);
            a3 = FloatVector.fromArray(SPECIES, w, w3 + o).fma(v, a3);
        }
        a0.intoArray(y, t * rows + p * PANEL);
        a1.intoArray(y, t * rows + (p + 1) * PANEL);
        a2.intoArray(y, t * rows + (p + 2) * PANEL);
        a3.intoArray(y, t * rows + (p + 3) * PANEL);
    }

    /** Column {@code j} of a block as float32 weights: its bytes widened, times the block's scales (exact). */
    private FloatVector weights(long blockStart, int j) {
        return vec(blockStart, j)
                .mul(FloatVector.fromMemorySegment(SPECIES, data, blockStart, ByteOrder.LITTLE_ENDIAN));
    }

    /** The raw bytes of column {@code j} of a block, one lane per row of the panel, as float32. */
    private FloatVector vec(long blockStart, int j) {
        ByteVector q = ByteVector.fromMemorySegment(
                BYTES, data, blockStart + 4L * PANEL + (long) j * PANEL, ByteOrder.LITTLE_ENDIAN);
        return (FloatVector) q.convertShape(VectorOperators.B2F, SPECIES, 0);
    }

    @Override
    float raw(int row, int col) {
        return data.get(ValueLayout.JAVA_BYTE, byteAt(row, col));
    }

    /** Stores block {@code b} of row {@code r}: its scale (f16 bits, kept as f32) and its bytes. */
    void setBlock(int r, int b, short scaleBits, byte[] bytes) {
        data.set(F32_LE, blockStart(r / PANEL, b) + (r % PANEL) * 4L, Float.float16ToFloat(scaleBits));
        for (int i = 0; i < BLOCK; i++) {
            data.set(ValueLayout.JAVA_BYTE, byteAt(r, b * BLOCK + i), bytes[i]);
        }
    }

    /** Where the byte of {@code (row, col)} is: after its block's scales. */
    long byteAt(int row, int col) {
        return offset(row, col, 1) + 4L * PANEL;
    }

    @Override
    float scale(int row, int block) {
        return data.get(F32_LE, blockStart(row / PANEL, block) + (row % PANEL) * 4L);
    }
}
