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
     * Several inputs (batched decode, prefill): strips of 4 panels widened once into a per-thread float strip (widening
     * per tile of inputs ran at half the f32 speed), then 4 panels × 4 inputs from it, no output touched before its last block.
     * Panels left over: one at a time. Every path
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

    /** Per thread: the float strip of {@link #stripTiles}, grown to the widest matrix seen, then reused. */
    private static final ThreadLocal<float[]> STRIP = ThreadLocal.withInitial(() -> new float[0]);

    /** Panels {@code p .. p+3} times all {@code n} inputs, from the strip of their bytes widened once. */
    private void stripTiles(int p, float[] x, int n, float[] y) {
        float[] w = STRIP.get();
        if (w.length < 4 * cols * PANEL) {
            w = new float[4 * cols * PANEL];
            STRIP.set(w);
        }
        for (int k = 0; k < 4; k++) { // [panel k][column j][lane], unscaled
            for (int b = 0; b < blocks; b++) {
                long s = blockStart(p + k, b);
                for (int j = 0; j < blockCols; j++) {
                    vec(s, j).intoArray(w, (k * cols + b * blockCols + j) * PANEL);
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

    /**
     * Panels {@code p .. p+3} times inputs {@code t .. t+3}: per block, 16 block totals, each folded by one fma with
     * its block's scales into 16 running totals kept in locals. That is 37 vectors live for AVX-512's 32 registers, but
     * C2 spills the running totals, touched once a block, not the block totals: one thread, 2688×768 in cache, 192
     * inputs, 193 GFLOP/s (f32 213), where folding through memory after each block ran 145 and 4 × 3 (29 vectors)
     * 175.
     */
    private void strip4x4(int p, int t, float[] x, float[] w, float[] y) {
        int xt = t * cols;
        int x1 = xt + cols;
        int x2 = x1 + cols;
        int x3 = x2 + cols;
        int w1 = cols * PANEL;
        int w2 = 2 * w1;
        int w3 = 3 * w1;
        int scalesPerPanel = blocks * PANEL;
        FloatVector z = FloatVector.zero(SPECIES);
        FloatVector r00 = z, r01 = z, r02 = z, r03 = z;
        FloatVector r10 = z, r11 = z, r12 = z, r13 = z;
        FloatVector r20 = z, r21 = z, r22 = z, r23 = z;
        FloatVector r30 = z, r31 = z, r32 = z, r33 = z;
        for (int b = 0, k0 = p * scalesPerPanel; b < blocks; b++, k0 += PANEL) {
            FloatVector c00 = z, c01 = z, c02 = z, c03 = z;
            FloatVector c10 = z, c11 = z, c12 = z, c13 = z;
            FloatVector c20 = z, c21 = z, c22 = z, c23 = z;
            FloatVector c30 = z, c31 = z, c32 = z, c33 = z;
            int end = (b + 1) * blockCols;
            for (int j = b * blockCols, o = j * PANEL; j < end; j++, o += PANEL) {
                FloatVector q0 = FloatVector.fromArray(SPECIES, w, o);
                FloatVector q1 = FloatVector.fromArray(SPECIES, w, w1 + o);
                FloatVector q2 = FloatVector.fromArray(SPECIES, w, w2 + o);
                FloatVector q3 = FloatVector.fromArray(SPECIES, w, w3 + o);
                FloatVector v = FloatVector.broadcast(SPECIES, x[xt + j]);
                c00 = q0.fma(v, c00);
                c10 = q1.fma(v, c10);
                c20 = q2.fma(v, c20);
                c30 = q3.fma(v, c30);
                v = FloatVector.broadcast(SPECIES, x[x1 + j]);
                c01 = q0.fma(v, c01);
                c11 = q1.fma(v, c11);
                c21 = q2.fma(v, c21);
                c31 = q3.fma(v, c31);
                v = FloatVector.broadcast(SPECIES, x[x2 + j]);
                c02 = q0.fma(v, c02);
                c12 = q1.fma(v, c12);
                c22 = q2.fma(v, c22);
                c32 = q3.fma(v, c32);
                v = FloatVector.broadcast(SPECIES, x[x3 + j]);
                c03 = q0.fma(v, c03);
                c13 = q1.fma(v, c13);
                c23 = q2.fma(v, c23);
                c33 = q3.fma(v, c33);
            }
            FloatVector s = scales(k0);
            r00 = c00.fma(s, r00);
            r01 = c01.fma(s, r01);
            r02 = c02.fma(s, r02);
            r03 = c03.fma(s, r03);
            s = scales(k0 + scalesPerPanel);
            r10 = c10.fma(s, r10);
            r11 = c11.fma(s, r11);
            r12 = c12.fma(s, r12);
            r13 = c13.fma(s, r13);
            s = scales(k0 + 2 * scalesPerPanel);
            r20 = c20.fma(s, r20);
            r21 = c21.fma(s, r21);
            r22 = c22.fma(s, r22);
            r23 = c23.fma(s, r23);
            s = scales(k0 + 3 * scalesPerPanel);
            r30 = c30.fma(s, r30);
            r31 = c31.fma(s, r31);
            r32 = c32.fma(s, r32);
            r33 = c33.fma(s, r33);
        }
        int y0 = t * rows + p * PANEL;
        int y1 = y0 + rows;
        int y2 = y1 + rows;
        int y3 = y2 + rows;
        r00.intoArray(y, y0);
        r01.intoArray(y, y1);
        r02.intoArray(y, y2);
        r03.intoArray(y, y3);
        r10.intoArray(y, y0 + PANEL);
        r11.intoArray(y, y1 + PANEL);
        r12.intoArray(y, y2 + PANEL);
        r13.intoArray(y, y3 + PANEL);
        r20.intoArray(y, y0 + 2 * PANEL);
        r21.intoArray(y, y1 + 2 * PANEL);
        r22.intoArray(y, y2 + 2 * PANEL);
        r23.intoArray(y, y3 + 2 * PANEL);
        r30.intoArray(y, y0 + 3 * PANEL);
        r31.intoArray(y, y1 + 3 * PANEL);
        r32.intoArray(y, y2 + 3 * PANEL);
        r33.intoArray(y, y3 + 3 * PANEL);
    }

    /** Panels {@code p .. p+3} times input {@code t}, the same fold as {@link #strip4x4}. */
    private void strip4x1(int p, int t, float[] x, float[] w, float[] y) {
        int xt = t * cols;
        int w1 = cols * PANEL;
        int w2 = 2 * w1;
        int w3 = 3 * w1;
        int scalesPerPanel = blocks * PANEL;
        FloatVector z = FloatVector.zero(SPECIES);
        FloatVector r0 = z, r1 = z, r2 = z, r3 = z;
        for (int b = 0, k0 = p * scalesPerPanel; b < blocks; b++, k0 += PANEL) {
            FloatVector c0 = z, c1 = z, c2 = z, c3 = z;
            int end = (b + 1) * blockCols;
            for (int j = b * blockCols, o = j * PANEL; j < end; j++, o += PANEL) {
                FloatVector v = FloatVector.broadcast(SPECIES, x[xt + j]);
                c0 = FloatVector.fromArray(SPECIES, w, o).fma(v, c0);
                c1 = FloatVector.fromArray(SPECIES, w, w1 + o).fma(v, c1);
                c2 = FloatVector.fromArray(SPECIES, w, w2 + o).fma(v, c2);
                c3 = FloatVector.fromArray(SPECIES, w, w3 + o).fma(v, c3);
            }
            r0 = c0.fma(scales(k0), r0);
            r1 = c1.fma(scales(k0 + scalesPerPanel), r1);
            r2 = c2.fma(scales(k0 + 2 * scalesPerPanel), r2);
            r3 = c3.fma(scales(k0 + 3 * scalesPerPanel), r3);
        }
        int y0 = t * rows + p * PANEL;
        r0.intoArray(y, y0);
        r1.intoArray(y, y0 + PANEL);
        r2.intoArray(y, y0 + 2 * PANEL);
        r3.intoArray(y, y0 + 3 * PANEL);
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
