package dev.goldfinch.model.tensor;

import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;

/**
 * Unscaled formats: every output one FMA chain over all columns. 4 panels × 4 inputs per pass (each
 * weight vector loaded serves 4 inputs, each broadcast input 4 panels), 4 × 1 for the remaining inputs;
 * a single input (decode) goes 8 panels at a time: eight independent chains, eight read streams.
 */
abstract sealed class PlainMatrix extends Matrix permits F32Matrix, BF16Matrix {
    PlainMatrix(int rows, int cols, long bytesPerWeight, MemorySegment data) {
        super(rows, cols, cols, cols * PANEL * bytesPerWeight, data);
    }

    /** The {@link #PANEL} weights of column {@code j} of the panel at {@code panelStart}, as float32. */
    abstract FloatVector vec(long panelStart, int j);

    @Override
    final void tiles(float[] x, int n, float[] y, int p0, int p1) {
        int p = p0;
        if (n == 1) {
            for (; p + 8 <= p1; p += 8) {
                tile8x1(p, 0, x, y);
            }
        }
        for (; p + 4 <= p1; p += 4) {
            int t = 0;
            for (; t + 4 <= n; t += 4) {
                tile4x4(p, t, x, y);
            }
            for (; t < n; t++) {
                tile4x1(p, t, x, y);
            }
        }
        for (; p < p1; p++) {
            int t = 0;
            for (; t + 4 <= n; t += 4) {
                tile1x4(p, t, x, y); // small matrices (LoRAs of a few panels) times many inputs
            }
            for (; t < n; t++) {
                tile1x1(p, t, x, y);
            }
        }
    }

    @Override
    final float scale(int row, int block) {
        return 1f;
    }

    private void tile8x1(int p, int t, float[] x, float[] y) {
        int x0 = t * cols;
        FloatVector z = FloatVector.zero(SPECIES);
        FloatVector a00 = z;
        FloatVector a10 = z;
        FloatVector a20 = z;
        FloatVector a30 = z;
        FloatVector a40 = z;
        FloatVector a50 = z;
        FloatVector a60 = z;
        FloatVector a70 = z;
        long s0 = p * panelBytes;
        long s1 = (p + 1) * panelBytes;
        long s2 = (p + 2) * panelBytes;
        long s3 = (p + 3) * panelBytes;
        long s4 = (p + 4) * panelBytes;
        long s5 = (p + 5) * panelBytes;
        long s6 = (p + 6) * panelBytes;
        long s7 = (p + 7) * panelBytes;
        for (int j = 0; j < cols; j++) {
            FloatVector v = FloatVector.broadcast(SPECIES, x[x0 + j]);
            a00 = vec(s0, j).fma(v, a00);
            a10 = vec(s1, j).fma(v, a10);
            a20 = vec(s2, j).fma(v, a20);
            a30 = vec(s3, j).fma(v, a30);
            a40 = vec(s4, j).fma(v, a40);
            a50 = vec(s5, j).fma(v, a50);
            a60 = vec(s6, j).fma(v, a60);
            a70 = vec(s7, j).fma(v, a70);
        }
        a00.intoArray(y, t * rows + p * PANEL);
        a10.intoArray(y, t * rows + (p + 1) * PANEL);
        a20.intoArray(y, t * rows + (p + 2) * PANEL);
        a30.intoArray(y, t * rows + (p + 3) * PANEL);
        a40.intoArray(y, t * rows + (p + 4) * PANEL);
        a50.intoArray(y, t * rows + (p + 5) * PANEL);
        a60.intoArray(y, t * rows + (p + 6) * PANEL);
        a70.intoArray(y, t * rows + (p + 7) * PANEL);
    }

    private void tile4x4(int p, int t, float[] x, float[] y) {
        int x0 = t * cols;
        int x1 = (t + 1) * cols;
        int x2 = (t + 2) * cols;
        int x3 = (t + 3) * cols;
        FloatVector z = FloatVector.zero(SPECIES);
        FloatVector a00 = z, a01 = z, a02 = z, a03 = z;
        FloatVector a10 = z, a11 = z, a12 = z, a13 = z;
        FloatVector a20 = z, a21 = z, a22 = z, a23 = z;
        FloatVector a30 = z, a31 = z, a32 = z, a33 = z;
        long s0 = p * panelBytes;
        long s1 = (p + 1) * panelBytes;
        long s2 = (p + 2) * panelBytes;
        long s3 = (p + 3) * panelBytes;
        for (int j = 0; j < cols; j++) {
            FloatVector w0 = vec(s0, j);
            FloatVector w1 = vec(s1, j);
            FloatVector w2 = vec(s2, j);
            FloatVector w3 = vec(s3, j);
            FloatVector v = FloatVector.broadcast(SPECIES, x[x0 + j]);
            a00 = w0.fma(v, a00);
            a10 = w1.fma(v, a10);
            a20 = w2.fma(v, a20);
            a30 = w3.fma(v, a30);
            v = FloatVector.broadcast(SPECIES, x[x1 + j]);
            a01 = w0.fma(v, a01);
            a11 = w1.fma(v, a11);
            a21 = w2.fma(v, a21);
            a31 = w3.fma(v, a31);
            v = FloatVector.broadcast(SPECIES, x[x2 + j]);
            a02 = w0.fma(v, a02);
            a12 = w1.fma(v, a12);
            a22 = w2.fma(v, a22);
            a32 = w3.fma(v, a32);
            v = FloatVector.broadcast(SPECIES, x[x3 + j]);
            a03 = w0.fma(v, a03);
            a13 = w1.fma(v, a13);
            a23 = w2.fma(v, a23);
            a33 = w3.fma(v, a33);
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

    private void tile1x4(int p, int t, float[] x, float[] y) {
        int x0 = t * cols;
        int x1 = (t + 1) * cols;
        int x2 = (t + 2) * cols;
        int x3 = (t + 3) * cols;
        FloatVector z = FloatVector.zero(SPECIES);
        FloatVector a00 = z, a01 = z, a02 = z, a03 = z;
        long s0 = p * panelBytes;
        for (int j = 0; j < cols; j++) {
            FloatVector w0 = vec(s0, j);
            FloatVector v = FloatVector.broadcast(SPECIES, x[x0 + j]);
            a00 = w0.fma(v, a00);
            v = FloatVector.broadcast(SPECIES, x[x1 + j]);
            a01 = w0.fma(v, a01);
            v = FloatVector.broadcast(SPECIES, x[x2 + j]);
            a02 = w0.fma(v, a02);
            v = FloatVector.broadcast(SPECIES, x[x3 + j]);
            a03 = w0.fma(v, a03);
        }
        a00.intoArray(y, t * rows + p * PANEL);
        a01.intoArray(y, (t + 1) * rows + p * PANEL);
        a02.intoArray(y, (t + 2) * rows + p * PANEL);
        a03.intoArray(y, (t + 3) * rows + p * PANEL);
    }

    private void tile4x1(int p, int t, float[] x, float[] y) {
        int x0 = t * cols;
        FloatVector z = FloatVector.zero(SPECIES);
        FloatVector a00 = z;
        FloatVector a10 = z;
        FloatVector a20 = z;
        FloatVector a30 = z;
        long s0 = p * panelBytes;
        long s1 = (p + 1) * panelBytes;
        long s2 = (p + 2) * panelBytes;
        long s3 = (p + 3) * panelBytes;
        for (int j = 0; j < cols; j++) {
            FloatVector v = FloatVector.broadcast(SPECIES, x[x0 + j]);
            a00 = vec(s0, j).fma(v, a00);
            a10 = vec(s1, j).fma(v, a10);
            a20 = vec(s2, j).fma(v, a20);
            a30 = vec(s3, j).fma(v, a30);
        }
        a00.intoArray(y, t * rows + p * PANEL);
        a10.intoArray(y, t * rows + (p + 1) * PANEL);
        a20.intoArray(y, t * rows + (p + 2) * PANEL);
        a30.intoArray(y, t * rows + (p + 3) * PANEL);
    }

    private void tile1x1(int p, int t, float[] x, float[] y) {
        int x0 = t * cols;
        FloatVector z = FloatVector.zero(SPECIES);
        FloatVector a00 = z;
        long s0 = p * panelBytes;
        for (int j = 0; j < cols; j++) {
            FloatVector v = FloatVector.broadcast(SPECIES, x[x0 + j]);
            a00 = vec(s0, j).fma(v, a00);
        }
        a00.intoArray(y, t * rows + p * PANEL);
    }
}
