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
 * panel, each block is 32 columns of one byte per row (off-heap), and its scales (f32) sit in a heap array beside:
 * 36 bytes per 32 weights, 3.6× less to read than f32. (Scales read from the segment, between the bytes, cost the
 * decode tile enough C2 nodes to pass its inlining cutoff: a scale load left a call returning a boxed vector.)
 */
public final class Q8Matrix extends Matrix {
    /** Weights per scale. */
    public static final int BLOCK = 32;

    static final int BLOCK_BYTES = BLOCK * PANEL;
    static final VectorSpecies<Byte> BYTES =
            VectorSpecies.of(byte.class, VectorShape.forBitSize(SPECIES.vectorBitSize() / 4));

    /** {@code [panel][block][lane]}: the scales of each block of a panel, one vector. */
    private final float[] scales;

    Q8Matrix(int rows, int cols, MemorySegment data) {
        super(rows, cols, BLOCK, BLOCK_BYTES, data);
        this.scales = new float[Math.multiplyExact(panels * blocks, PANEL)];
    }

    /**
     * One input (decode): 4 panels at a time. Each block's bytes are widened and multiplied by the input into a block
     * total, which one fma by the block's scales folds into the output. A scale multiply per column (each weight
     * widened and scaled before its fma, as before) made decode compute-bound at 53 GFLOP/s on one AVX-512 core with
     * the matrix in cache; this runs at 75–80. Eight panels at a time (as f32 decodes) measured slower here, 48–57
     * GFLOP/s, in cache and from memory on two threads: eight read streams' addresses spill the general registers.
     * Several inputs (batched decode, prefill): strips of 4 panels widened once into a per-thread float strip, then 4
     * panels × 4 inputs from it, as {@link PlainMatrix}'s tiles do (widening per tile of inputs ran at half the f32
     * speed), each block's totals folded into the outputs in {@code y}. Panels left over: one at a time. Every path
     * is {@link #dotScalarOrder}'s arithmetic, so all give its bits, whatever the batch.
     */
    @Override
    void tiles(float[] x, int n, float[] y, int p0, int p1) {
        int p = p0;
        if (n == 1) {
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

    private void tile4x1(int p, float[] x, float[] y) {
        FloatVector z = FloatVector.zero(SPECIES);
        FloatVector a0 = z, a1 = z, a2 = z, a3 = z;
        int scalesPerPanel = blocks * PANEL;
        long s0 = p * panelBytes;
        for (int b = 0, xb = 0, k0 = p * scalesPerPanel; b < blocks; b++, xb += BLOCK, s0 += blockBytes, k0 += PANEL) {
            long s1 = s0 + panelBytes;
            long s2 = s1 + panelBytes;
            long s3 = s2 + panelBytes;
            FloatVector c0 = z, c1 = z, c2 = z, c3 = z;
            for (int j = 0; j < blockCols; j++) { // not the constant: C2 would unroll all 32 and spill
                FloatVector v = FloatVector.broadcast(SPECIES, x[xb + j]);
                c0 = vec(s0, j).fma(v, c0);
                c1 = vec(s1, j).fma(v, c1);
                c2 = vec(s2, j).fma(v, c2);
                c3 = vec(s3, j).fma(v, c3);
            }
            a0 = c0.fma(scales(k0), a0);
            a1 = c1.fma(scales(k0 + scalesPerPanel), a1);
            a2 = c2.fma(scales(k0 + 2 * scalesPerPanel), a2);
            a3 = c3.fma(scales(k0 + 3 * scalesPerPanel), a3);
        }
        a0.intoArray(y, p * PANEL);
        a1.intoArray(y, (p + 1) * PANEL);
        a2.intoArray(y, (p + 2) * PANEL);
        a3.intoArray(y, (p + 3) * PANEL);
    }

    private void tile1x1(int p, int t, float[] x, float[] y) {
        FloatVector a = FloatVector.zero(SPECIES);
        long s = p * panelBytes;
        for (int b = 0, xb = t * cols, k = p * blocks * PANEL;
                b < blocks;
                b++, xb += BLOCK, s += blockBytes, k += PANEL) {
            FloatVector c = FloatVector.zero(SPECIES);
            for (int j = 0; j < blockCols; j++) {
                c = vec(s, j).fma(FloatVector.broadcast(SPECIES, x[xb + j]), c);
            }
            a = c.fma(scales(k), a);
        }
        a.intoArray(y, t * rows + p * PANEL);
    }

    /**
     * Per thread: the float strip of {@link #stripTiles} (grown to the widest matrix seen, then reused) and the block
     * totals of one tile.
     */
    private static final ThreadLocal<float[][]> STRIP =
            ThreadLocal.withInitial(() -> new float[][] {new float[0], new float[16 * PANEL]});

    /** Panels {@code p .. p+3} times all {@code n} inputs, from the strip of their bytes widened once. */
    private void stripTiles(int p, float[] x, int n, float[] y) {
        float[][] holder = STRIP.get();
        if (holder[0].length < 4 * cols * PANEL) {
            holder[0] = new float[4 * cols * PANEL];
        }
        float[] w = holder[0]; // [panel k][column j][lane], unscaled
        float[] totals = holder[1];
        for (int k = 0; k < 4; k++) {
            for (int b = 0; b < blocks; b++) {
                long s = blockStart(p + k, b);
                for (int j = 0; j < blockCols; j++) {
                    vec(s, j).intoArray(w, (k * cols + b * blockCols + j) * PANEL);
                }
            }
        }
        for (int b = 0; b < blocks; b++) { // the block's 8 KB of strip stays in L1 across the inputs
            int t = 0;
            for (; t + 4 <= n; t += 4) {
                strip4x4(p, b, t, x, w, totals, y);
            }
            for (; t < n; t++) {
                strip4x1(p, b, t, x, w, totals, y);
            }
        }
    }

    /** Block {@code b} of panels {@code p .. p+3} times inputs {@code t .. t+3}, folded into their outputs. */
    private void strip4x4(int p, int b, int t, float[] x, float[] w, float[] totals, float[] y) {
        int c0 = b * blockCols;
        int c1 = c0 + blockCols;
        int x1 = cols;
        int x2 = 2 * cols;
        int x3 = 3 * cols;
        int xt = t * cols;
        int w1 = cols * PANEL;
        int w2 = 2 * w1;
        int w3 = 3 * w1;
        FloatVector z = FloatVector.zero(SPECIES);
        FloatVector a00 = z, a01 = z, a02 = z, a03 = z;
        FloatVector a10 = z, a11 = z, a12 = z, a13 = z;
        FloatVector a20 = z, a21 = z, a22 = z, a23 = z;
        FloatVector a30 = z, a31 = z, a32 = z, a33 = z;
        for (int j = c0, o = c0 * PANEL; j < c1; j++, o += PANEL) {
            FloatVector q0 = FloatVector.fromArray(SPECIES, w, o);
            FloatVector q1 = FloatVector.fromArray(SPECIES, w, w1 + o);
            FloatVector q2 = FloatVector.fromArray(SPECIES, w, w2 + o);
            FloatVector q3 = FloatVector.fromArray(SPECIES, w, w3 + o);
            FloatVector v = FloatVector.broadcast(SPECIES, x[xt + j]);
            a00 = q0.fma(v, a00);
            a10 = q1.fma(v, a10);
            a20 = q2.fma(v, a20);
            a30 = q3.fma(v, a30);
            v = FloatVector.broadcast(SPECIES, x[xt + x1 + j]);
            a01 = q0.fma(v, a01);
            a11 = q1.fma(v, a11);
            a21 = q2.fma(v, a21);
            a31 = q3.fma(v, a31);
            v = FloatVector.broadcast(SPECIES, x[xt + x2 + j]);
            a02 = q0.fma(v, a02);
            a12 = q1.fma(v, a12);
            a22 = q2.fma(v, a22);
            a32 = q3.fma(v, a32);
            v = FloatVector.broadcast(SPECIES, x[xt + x3 + j]);
            a03 = q0.fma(v, a03);
            a13 = q1.fma(v, a13);
            a23 = q2.fma(v, a23);
            a33 = q3.fma(v, a33);
        }
        a00.intoArray(totals, 0);
        a10.intoArray(totals, PANEL);
        a20.intoArray(totals, 2 * PANEL);
        a30.intoArray(totals, 3 * PANEL);
        a01.intoArray(totals, 4 * PANEL);
        a11.intoArray(totals, 5 * PANEL);
        a21.intoArray(totals, 6 * PANEL);
        a31.intoArray(totals, 7 * PANEL);
        a02.intoArray(totals, 8 * PANEL);
        a12.intoArray(totals, 9 * PANEL);
        a22.intoArray(totals, 10 * PANEL);
        a32.intoArray(totals, 11 * PANEL);
        a03.intoArray(totals, 12 * PANEL);
        a13.intoArray(totals, 13 * PANEL);
        a23.intoArray(totals, 14 * PANEL);
        a33.intoArray(totals, 15 * PANEL);
        fold(p, b, t, 4, totals, y);
    }

    private void strip4x1(int p, int b, int t, float[] x, float[] w, float[] totals, float[] y) {
        int c0 = b * blockCols;
        int c1 = c0 + blockCols;
        int xt = t * cols;
        int w1 = cols * PANEL;
        int w2 = 2 * w1;
        int w3 = 3 * w1;
        FloatVector z = FloatVector.zero(SPECIES);
        FloatVector a0 = z, a1 = z, a2 = z, a3 = z;
        for (int j = c0, o = c0 * PANEL; j < c1; j++, o += PANEL) {
            FloatVector v = FloatVector.broadcast(SPECIES, x[xt + j]);
            a0 = FloatVector.fromArray(SPECIES, w, o).fma(v, a0);
            a1 = FloatVector.fromArray(SPECIES, w, w1 + o).fma(v, a1);
            a2 = FloatVector.fromArray(SPECIES, w, w2 + o).fma(v, a2);
            a3 = FloatVector.fromArray(SPECIES, w, w3 + o).fma(v, a3);
        }
        a0.intoArray(totals, 0);
        a1.intoArray(totals, PANEL);
        a2.intoArray(totals, 2 * PANEL);
        a3.intoArray(totals, 3 * PANEL);
        fold(p, b, t, 1, totals, y);
    }

    /**
     * Folds the block totals of panels {@code p .. p+3} × inputs {@code t .. t+inputs-1} ({@code totals}, input-major)
     * into their outputs, {@code y = blockTotal × scales + y} (0 before block 0). A loop rather than inline in the tile:
     * sixteen folds there took C2 past its inlining cutoff.
     */
    private void fold(int p, int b, int t, int inputs, float[] totals, float[] y) {
        for (int k = 0; k < 4; k++) {
            FloatVector scale = scales(((p + k) * blocks + b) * PANEL);
            for (int i = 0, at = t * rows + (p + k) * PANEL; i < inputs; i++, at += rows) {
                FloatVector total = b == 0 ? FloatVector.zero(SPECIES) : FloatVector.fromArray(SPECIES, y, at);
                FloatVector.fromArray(SPECIES, totals, (i * 4 + k) * PANEL)
                        .fma(scale, total)
                        .intoArray(y, at);
            }
        }
    }

    /** The scales of one block of a panel, one lane per row, from {@code scales[at]}. */
    private FloatVector scales(int at) {
        return FloatVector.fromArray(SPECIES, scales, at);
    }

    /** The raw bytes of column {@code j} of a block, one lane per row of the panel, as float32. */
    private FloatVector vec(long blockStart, int j) {
        ByteVector q =
                ByteVector.fromMemorySegment(BYTES, data, blockStart + (long) j * PANEL, ByteOrder.LITTLE_ENDIAN);
        return (FloatVector) q.convertShape(VectorOperators.B2F, SPECIES, 0);
    }

    /** One output's block sums of raw bytes × input, each folded into the total by one fma with its scale. */
    @Override
    float dotScalarOrder(int row, float[] x, int xo) {
        float total = 0f;
        for (int b = 0; b < blocks; b++) {
            float acc = 0f;
            for (int j = b * blockCols; j < (b + 1) * blockCols; j++) {
                acc = Math.fma(raw(row, j), x[xo + j], acc);
            }
            total = Math.fma(acc, scale(row, b), total);
        }
        return total;
    }

    @Override
    float raw(int row, int col) {
        return data.get(ValueLayout.JAVA_BYTE, byteAt(row, col));
    }

    /** Stores block {@code b} of row {@code r}: its scale (f16 bits, kept as f32) and its bytes. */
    void setBlock(int r, int b, short scaleBits, byte[] bytes) {
        scales[scaleAt(r, b)] = Float.float16ToFloat(scaleBits);
        for (int i = 0; i < BLOCK; i++) {
            data.set(ValueLayout.JAVA_BYTE, byteAt(r, b * BLOCK + i), bytes[i]);
        }
    }

    /** Where the byte of {@code (row, col)} is. */
    long byteAt(int row, int col) {
        return offset(row, col, 1);
    }

    private int scaleAt(int row, int block) {
        return (row / PANEL * blocks + block) * PANEL + row % PANEL;
    }

    @Override
    float scale(int row, int block) {
        return scales[scaleAt(row, block)];
    }

    @Override
    long sideBytes() {
        return scales.length * 4L;
    }
}
