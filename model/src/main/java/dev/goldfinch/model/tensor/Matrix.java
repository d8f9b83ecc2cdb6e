package dev.goldfinch.model.tensor;

import dev.goldfinch.model.GoldFinchException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * A weight matrix {@code [rows, cols]} stored row-major, used as {@code y = W x} (PyTorch's
 * {@code x @ W^T}). One final subclass per storage format; the hot loop is {@link #dotRow}.
 */
public abstract sealed class Matrix permits Matrix.F32, Matrix.BF16, Matrix.F16 {
    static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;

    protected final int rows;
    protected final int cols;
    protected final MemorySegment data;

    Matrix(int rows, int cols, MemorySegment data, int elementBytes) {
        if (data.byteSize() != (long) rows * cols * elementBytes) {
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

    /** A heap matrix over {@code values} (row-major). */
    public static Matrix ofFloats(int rows, int cols, float[] values) {
        return new F32(rows, cols, MemorySegment.ofArray(values));
    }

    public final int rows() {
        return rows;
    }

    public final int cols() {
        return cols;
    }

    /** Bytes a full pass over this matrix reads. */
    public abstract long byteSize();

    /** {@code sum_j W[row, j] * x[xOff + j]}. */
    public abstract float dotRow(int row, float[] x, int xOff);

    /** Copies row {@code row} as float32 into {@code dst[off..off+cols)} (embedding look-up). */
    public abstract void copyRow(int row, float[] dst, int off);

    /** One element, for tests and conversions. */
    public abstract float get(int row, int col);

    /**
     * {@code y[t, r] = sum_j W[r, j] x[t, j]} for rows {@code [r0, r1)} and all {@code n} inputs: each
     * weight row is read once and serves every input (the prefill's matrix × matrix).
     */
    public final void matmulRows(float[] x, int n, float[] y, int r0, int r1) {
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
        float s = 0;
        for (int i = 0; i < v.length(); i++) {
            s += v.lane(i);
        }
        return s;
    }

    public static final class F32 extends Matrix {
        F32(int rows, int cols, MemorySegment data) {
            super(rows, cols, data, 4);
        }

        @Override
        public long byteSize() {
            return (long) rows * cols * 4;
        }

        @Override
        public float dotRow(int row, float[] x, int xOff) {
            long base = (long) row * cols * 4;
            int bound = SPECIES.loopBound(cols);
            FloatVector acc = FloatVector.zero(SPECIES);
            int j = 0;
            for (; j < bound; j += SPECIES.length()) {
                FloatVector w = FloatVector.fromMemorySegment(SPECIES, data, base + j * 4L, ByteOrder.LITTLE_ENDIAN);
                acc = w.fma(FloatVector.fromArray(SPECIES, x, xOff + j), acc);
            }
            float sum = sumLanes(acc);
            for (; j < cols; j++) {
                sum += data.get(F32_LE, base + j * 4L) * x[xOff + j];
            }
            return sum;
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
            super(rows, cols, data, 2);
        }

        @Override
        public long byteSize() {
            return (long) rows * cols * 2;
        }

        @Override
        public float dotRow(int row, float[] x, int xOff) {
            long base = (long) row * cols * 2;
            float sum = 0;
            for (int j = 0; j < cols; j++) {
                sum += Float.intBitsToFloat((data.get(I16_LE, base + j * 2L) & 0xffff) << 16) * x[xOff + j];
            }
            return sum;
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
            super(rows, cols, data, 2);
        }

        @Override
        public long byteSize() {
            return (long) rows * cols * 2;
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
}
