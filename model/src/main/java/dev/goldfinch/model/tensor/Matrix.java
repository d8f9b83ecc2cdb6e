package dev.goldfinch.model.tensor;

import dev.goldfinch.model.GoldFinchException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * A weight matrix {@code [rows, cols]} stored row-major, used as {@code y = W x} (PyTorch's
 * {@code x @ W^T}). One final subclass per storage format; the hot loop is {@link #dotRow}.
 */
public abstract sealed class Matrix permits Matrix.F32, Matrix.BF16, Matrix.F16, Matrix.Q8 {
    static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;
    static final VectorSpecies<Short> HALVES = VectorSpecies.of(short.class, VectorShape.forBitSize(SPECIES.vectorBitSize() / 2));
    static final VectorSpecies<Integer> INTS = VectorSpecies.of(int.class, SPECIES.vectorShape());
    /** {@code -Dgoldfinch.kernels=reference} runs the untiled kernels (same bits, slower): for A/B benchmarks. */
    static final boolean TILED = !"reference".equals(System.getProperty("goldfinch.kernels"));

    protected final int rows;
    protected final int cols;
    protected final MemorySegment data;

    Matrix(int rows, int cols, MemorySegment data, long expectedBytes) {
        if (data.byteSize() != expectedBytes) {
            throw new IllegalArgumentException("matrix [" + rows + "," + cols + "] does not match " + data.byteSize() + " bytes");
        }
        this.rows = rows;
        this.cols = cols;
        this.data = data;
    }

    /** Wraps a 2-D tensor without copying. */
    public static Matrix of(Tensor t) {
        long[] s = t.shape();
        if (s.length != 2 || s[0] > Integer.MAX_VALUE || s[1] > Integer.MAX_VALUE) {
            throw new GoldFinchException.BadModel("tensor " + t.name() + " is not a matrix: " + t.shapeString());
        }
        return switch (t.dtype()) {
            case F32 -> new F32((int) s[0], (int) s[1], t.data());
            case BF16 -> new BF16((int) s[0], (int) s[1], t.data());
            case F16 -> new F16((int) s[0], (int) s[1], t.data());
            default -> throw new GoldFinchException.BadModel("tensor " + t.name() + ": unsupported weight type " + t.dtype());
        };
    }

    /**
     * A matrix of {@code values} (row-major), copied off-heap: if the kernels met heap segments as well as
     * native ones, their memory accesses would stop being intrinsified (measured: decode 2× slower).
     */
    public static Matrix ofFloats(int rows, int cols, float[] values) {
        MemorySegment native_ = java.lang.foreign.Arena.ofAuto().allocate((long) values.length * 4, 64);
        MemorySegment.copy(values, 0, native_, F32_LE, 0, values.length);
        return new F32(rows, cols, native_);
    }

    public final int rows() {
        return rows;
    }

    public final int cols() {
        return cols;
    }

    /** Bytes a full pass over this matrix reads. */
    public abstract long byteSize();


    /** Copies row {@code row} as float32 into {@code dst[off..off+cols)} (embedding look-up). */
    public abstract void copyRow(int row, float[] dst, int off);

    /** One element, for tests and conversions. */
    public abstract float get(int row, int col);

    /**
     * {@code y[t, r] = sum_j W[r, j] x[t, j]} for rows {@code [r0, r1)} and all {@code n} inputs: each
     * weight row is read once and serves every input (the prefill's matrix × matrix).
     */
    /**
     * Register-tiled: 4 weight rows × 4 inputs per pass (16 vector accumulators), so each weight vector
     * loaded serves 4 inputs and each input vector 4 rows; 4 rows × 1 input for the rest (decode: four
     * independent FMA chains instead of one). Every output keeps one accumulator fed in column order and
     * the same lane sum and tail as {@link #dotRow}, so results are bit-identical to it whatever the
     * batch or chunk shape — the cache and batching invariants rely on that.
     */
    public void matmulRows(float[] x, int n, float[] y, int r0, int r1) {
        if (!TILED || !vectorized()) {
            matmulRowsScalarOrder(x, n, y, r0, r1);
            return;
        }
        int r = r0;
        for (; r + 4 <= r1; r += 4) {
            int t = 0;
            for (; t + 4 <= n; t += 4) {
                tile4x4(r, t, x, y);
            }
            for (; t < n; t++) {
                tile4x1(r, t, x, y);
            }
        }
        for (; r < r1; r++) {
            for (int t = 0; t < n; t++) {
                y[t * rows + r] = dotRow(r, x, t * cols);
            }
        }
    }

    private void tile4x1(int r, int t, float[] x, float[] y) {
        long b0 = rowStart(r);
        long b1 = rowStart(r + 1);
        long b2 = rowStart(r + 2);
        long b3 = rowStart(r + 3);
        int xo = t * cols;
        int bound = SPECIES.loopBound(cols);
        FloatVector a0 = FloatVector.zero(SPECIES);
        FloatVector a1 = a0;
        FloatVector a2 = a0;
        FloatVector a3 = a0;
        for (int j = 0; j < bound; j += SPECIES.length()) {
            FloatVector xv = FloatVector.fromArray(SPECIES, x, xo + j);
            a0 = vec(b0, j).fma(xv, a0);
            a1 = vec(b1, j).fma(xv, a1);
            a2 = vec(b2, j).fma(xv, a2);
            a3 = vec(b3, j).fma(xv, a3);
        }
        int o = t * rows + r;
        y[o] = finish(a0, b0, x, xo, bound);
        y[o + 1] = finish(a1, b1, x, xo, bound);
        y[o + 2] = finish(a2, b2, x, xo, bound);
        y[o + 3] = finish(a3, b3, x, xo, bound);
    }

    private void tile4x4(int r, int t, float[] x, float[] y) {
        long b0 = rowStart(r);
        long b1 = rowStart(r + 1);
        long b2 = rowStart(r + 2);
        long b3 = rowStart(r + 3);
        int x0 = t * cols;
        int x1 = x0 + cols;
        int x2 = x1 + cols;
        int x3 = x2 + cols;
        int bound = SPECIES.loopBound(cols);
        FloatVector z = FloatVector.zero(SPECIES);
        FloatVector a00 = z, a01 = z, a02 = z, a03 = z;
        FloatVector a10 = z, a11 = z, a12 = z, a13 = z;
        FloatVector a20 = z, a21 = z, a22 = z, a23 = z;
        FloatVector a30 = z, a31 = z, a32 = z, a33 = z;
        for (int j = 0; j < bound; j += SPECIES.length()) {
            FloatVector w0 = vec(b0, j);
            FloatVector w1 = vec(b1, j);
            FloatVector w2 = vec(b2, j);
            FloatVector w3 = vec(b3, j);
            FloatVector v = FloatVector.fromArray(SPECIES, x, x0 + j);
            a00 = w0.fma(v, a00);
            a10 = w1.fma(v, a10);
            a20 = w2.fma(v, a20);
            a30 = w3.fma(v, a30);
            v = FloatVector.fromArray(SPECIES, x, x1 + j);
            a01 = w0.fma(v, a01);
            a11 = w1.fma(v, a11);
            a21 = w2.fma(v, a21);
            a31 = w3.fma(v, a31);
            v = FloatVector.fromArray(SPECIES, x, x2 + j);
            a02 = w0.fma(v, a02);
            a12 = w1.fma(v, a12);
            a22 = w2.fma(v, a22);
            a32 = w3.fma(v, a32);
            v = FloatVector.fromArray(SPECIES, x, x3 + j);
            a03 = w0.fma(v, a03);
            a13 = w1.fma(v, a13);
            a23 = w2.fma(v, a23);
            a33 = w3.fma(v, a33);
        }
        int o0 = t * rows + r;
        int o1 = o0 + rows;
        int o2 = o1 + rows;
        int o3 = o2 + rows;
        y[o0] = finish(a00, b0, x, x0, bound);
        y[o0 + 1] = finish(a10, b1, x, x0, bound);
        y[o0 + 2] = finish(a20, b2, x, x0, bound);
        y[o0 + 3] = finish(a30, b3, x, x0, bound);
        y[o1] = finish(a01, b0, x, x1, bound);
        y[o1 + 1] = finish(a11, b1, x, x1, bound);
        y[o1 + 2] = finish(a21, b2, x, x1, bound);
        y[o1 + 3] = finish(a31, b3, x, x1, bound);
        y[o2] = finish(a02, b0, x, x2, bound);
        y[o2 + 1] = finish(a12, b1, x, x2, bound);
        y[o2 + 2] = finish(a22, b2, x, x2, bound);
        y[o2 + 3] = finish(a32, b3, x, x2, bound);
        y[o3] = finish(a03, b0, x, x3, bound);
        y[o3 + 1] = finish(a13, b1, x, x3, bound);
        y[o3 + 2] = finish(a23, b2, x, x3, bound);
        y[o3 + 3] = finish(a33, b3, x, x3, bound);
    }

    /** The lane sum and scalar tail, exactly as {@link #dotRow} does them. */
    private float finish(FloatVector acc, long base, float[] x, int xOff, int bound) {
        float sum = sumLanes(acc);
        for (int j = bound; j < cols; j++) {
            sum += scalar(base, j) * x[xOff + j];
        }
        return sum;
    }


    /** Whether {@link #vec} is a real vector load (else the kernels fall back to {@link #dotRow}). */
    boolean vectorized() {
        return true;
    }

    /** Where row {@code row} starts, in the format's own addressing (opaque to the kernels). */
    abstract long rowStart(int row);

    /** The {@code SPECIES.length()} weights of a row from column {@code j}, as float32. */
    abstract FloatVector vec(long rowStart, int j);

    /** The weight of a row at column {@code j}, as float32. */
    abstract float scalar(long rowStart, int j);

    /** One accumulator fed in column order, lanes summed in a fixed order, then the scalar tail. */
    public float dotRow(int row, float[] x, int xOff) {
        long base = rowStart(row);
        int bound = SPECIES.loopBound(cols);
        FloatVector acc = FloatVector.zero(SPECIES);
        for (int j = 0; j < bound; j += SPECIES.length()) {
            acc = vec(base, j).fma(FloatVector.fromArray(SPECIES, x, xOff + j), acc);
        }
        return finish(acc, base, x, xOff, bound);
    }

    /** The reference: one {@link #dotRow} per output. Tiled kernels must give exactly these bits. */
    public final void matmulRowsScalarOrder(float[] x, int n, float[] y, int r0, int r1) {
        for (int r = r0; r < r1; r++) {
            for (int t = 0; t < n; t++) {
                y[t * rows + r] = dotRow(r, x, t * cols);
            }
        }
    }

    /**
     * Lanes summed in a fixed order: {@code reduceLanes} may associate differently once the JIT
     * intrinsifies it, and the same request must give the same bits on every replica and every run.
     */
    static float sumLanes(FloatVector v) {
        // A fixed tree of lane-wise adds (each exact per lane, so interpreted and compiled code agree):
        // fold the upper half onto the lower until one lane is left.
        for (VectorShuffle<Float> fold : FOLDS) {
            v = v.add(v.rearrange(fold));
        }
        return v.lane(0);
    }

    /** Shuffles bringing lane {@code i + w} to lane {@code i}, for w = L/2, L/4, …, 1. */
    private static final VectorShuffle<Float>[] FOLDS = folds();

    @SuppressWarnings("unchecked")
    private static VectorShuffle<Float>[] folds() {
        int lanes = SPECIES.length();
        VectorShuffle<Float>[] folds = new VectorShuffle[Integer.numberOfTrailingZeros(lanes)];
        for (int s = 0, w = lanes / 2; w >= 1; s++, w /= 2) {
            int width = w;
            folds[s] = VectorShuffle.fromOp(SPECIES, i -> (i + width) % lanes);
        }
        return folds;
    }

    public static final class F32 extends Matrix {
        F32(int rows, int cols, MemorySegment data) {
            super(rows, cols, data, (long) rows * cols * 4);
        }

        @Override
        public long byteSize() {
            return (long) rows * cols * 4;
        }

        @Override
        long rowStart(int row) {
            return (long) row * cols * 4;
        }

        @Override
        FloatVector vec(long rowStart, int j) {
            return FloatVector.fromMemorySegment(SPECIES, data, rowStart + j * 4L, ByteOrder.LITTLE_ENDIAN);
        }

        @Override
        float scalar(long rowStart, int j) {
            return data.get(F32_LE, rowStart + j * 4L);
        }

        @Override
        public void copyRow(int row, float[] dst, int off) {
            MemorySegment.copy(data, F32_LE, (long) row * cols * 4, dst, off, cols);
        }

        @Override
        public float get(int row, int col) {
            return data.get(F32_LE, ((long) row * cols + col) * 4);
        }
    }

    public static final class BF16 extends Matrix {
        BF16(int rows, int cols, MemorySegment data) {
            super(rows, cols, data, (long) rows * cols * 2);
        }

        @Override
        public long byteSize() {
            return (long) rows * cols * 2;
        }

        /** bf16 is the top half of an f32: widen the shorts to ints, shift them up 16 bits, reinterpret. */
        @Override
        long rowStart(int row) {
            return (long) row * cols * 2;
        }

        @Override
        FloatVector vec(long rowStart, int j) {
            ShortVector halves = ShortVector.fromMemorySegment(HALVES, data, rowStart + j * 2L, ByteOrder.LITTLE_ENDIAN);
            return ((IntVector) halves.convertShape(VectorOperators.S2I, INTS, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
        }

        @Override
        float scalar(long rowStart, int j) {
            return Float.intBitsToFloat((data.get(I16_LE, rowStart + j * 2L) & 0xffff) << 16);
        }

        @Override
        public void copyRow(int row, float[] dst, int off) {
            long base = (long) row * cols * 2;
            for (int j = 0; j < cols; j++) {
                dst[off + j] = Floats.bf16ToFloat(data.get(I16_LE, base + j * 2L));
            }
        }

        @Override
        public float get(int row, int col) {
            return Floats.bf16ToFloat(data.get(I16_LE, ((long) row * cols + col) * 2));
        }
    }

    public static final class F16 extends Matrix {
        F16(int rows, int cols, MemorySegment data) {
            super(rows, cols, data, (long) rows * cols * 2);
        }

        @Override
        public long byteSize() {
            return (long) rows * cols * 2;
        }

        @Override
        boolean vectorized() {
            return false;
        }

        @Override
        long rowStart(int row) {
            return (long) row * cols * 2;
        }

        @Override
        FloatVector vec(long rowStart, int j) {
            throw new UnsupportedOperationException("f16 weights use the scalar kernel");
        }

        @Override
        float scalar(long rowStart, int j) {
            return Float.float16ToFloat(data.get(I16_LE, rowStart + j * 2L));
        }

        @Override
        public float dotRow(int row, float[] x, int xOff) {
            long base = (long) row * cols * 2;
            float sum = 0;
            for (int j = 0; j < cols; j++) {
                sum += Float.float16ToFloat(data.get(I16_LE, base + j * 2L)) * x[xOff + j];
            }
            return sum;
        }

        @Override
        public void copyRow(int row, float[] dst, int off) {
            long base = (long) row * cols * 2;
            for (int j = 0; j < cols; j++) {
                dst[off + j] = Float.float16ToFloat(data.get(I16_LE, base + j * 2L));
            }
        }

        @Override
        public float get(int row, int col) {
            return Float.float16ToFloat(data.get(I16_LE, ((long) row * cols + col) * 2));
        }
    }

    /** Quantizes to {@link Q8} when the width allows it (a multiple of the block); otherwise returns {@code m}. */
    public static Matrix quantizeQ8(Matrix m) {
        if (m.cols % Q8.BLOCK != 0 || SPECIES.length() > Q8.BLOCK || Q8.BLOCK % SPECIES.length() != 0) {
            return m;
        }
        int blocks = m.cols / Q8.BLOCK;
        long rowBytes = (long) blocks * Q8.BLOCK_BYTES;
        MemorySegment q = java.lang.foreign.Arena.ofAuto().allocate(rowBytes * m.rows, 64);
        float[] row = new float[m.cols];
        for (int r = 0; r < m.rows; r++) {
            m.copyRow(r, row, 0);
            for (int b = 0; b < blocks; b++) {
                float amax = 0;
                for (int i = 0; i < Q8.BLOCK; i++) {
                    amax = Math.max(amax, Math.abs(row[b * Q8.BLOCK + i]));
                }
                short scaleBits = Float.floatToFloat16(amax / 127f);
                float scale = Float.float16ToFloat(scaleBits);
                long off = r * rowBytes + (long) b * Q8.BLOCK_BYTES;
                q.set(I16_LE, off, scaleBits);
                for (int i = 0; i < Q8.BLOCK; i++) {
                    int v = scale == 0 ? 0 : Math.round(row[b * Q8.BLOCK + i] / scale);
                    q.set(ValueLayout.JAVA_BYTE, off + 2 + i, (byte) Math.max(-127, Math.min(127, v)));
                }
            }
        }
        return new Q8(m.rows, m.cols, q);
    }

    /**
     * Q8_0 (as in ggml): each row in blocks of 32 weights, each block an f16 scale then 32 signed bytes;
     * a weight is {@code scale × byte}. 34 bytes per 32 weights: 3.8× less to read than f32.
     */
    public static final class Q8 extends Matrix {
        static final int BLOCK = 32;
        static final int BLOCK_BYTES = 2 + BLOCK;
        static final VectorSpecies<Byte> BYTES = VectorSpecies.of(byte.class, VectorShape.forBitSize(SPECIES.vectorBitSize() / 4));
        private final long rowBytes;

        Q8(int rows, int cols, MemorySegment data) {
            super(rows, cols, data, (long) rows * (cols / BLOCK) * BLOCK_BYTES);
            this.rowBytes = (long) (cols / BLOCK) * BLOCK_BYTES;
        }

        @Override
        public long byteSize() {
            return rowBytes * rows;
        }

        @Override
        long rowStart(int row) {
            return row * rowBytes;
        }

        @Override
        FloatVector vec(long rowStart, int j) {
            long block = rowStart + (long) (j / BLOCK) * BLOCK_BYTES;
            float scale = Float.float16ToFloat(data.get(I16_LE, block));
            ByteVector q = ByteVector.fromMemorySegment(BYTES, data, block + 2 + (j % BLOCK), ByteOrder.LITTLE_ENDIAN);
            return ((FloatVector) q.convertShape(VectorOperators.B2F, SPECIES, 0)).mul(scale);
        }

        @Override
        float scalar(long rowStart, int j) {
            long block = rowStart + (long) (j / BLOCK) * BLOCK_BYTES;
            return Float.float16ToFloat(data.get(I16_LE, block)) * data.get(ValueLayout.JAVA_BYTE, block + 2 + (j % BLOCK));
        }

        @Override
        public void copyRow(int row, float[] dst, int off) {
            long start = rowStart(row);
            for (int j = 0; j < cols; j++) {
                dst[off + j] = scalar(start, j);
            }
        }

        @Override
        public float get(int row, int col) {
            return scalar(rowStart(row), col);
        }
    }
}
