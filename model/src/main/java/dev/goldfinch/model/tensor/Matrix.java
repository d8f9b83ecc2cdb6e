package dev.goldfinch.model.tensor;

import dev.goldfinch.model.GoldFinchException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * A weight matrix {@code [rows, cols]} used as {@code y = W x} (PyTorch's {@code x @ W^T}), stored in
 * <em>panels</em>: {@link #PANEL} consecutive rows (one vector of outputs) interleaved column by column,
 * so column {@code j} of a panel is one vector load. A product then needs no horizontal sums: each lane
 * is one output row, fed {@code fma(w[r][j], x[j], acc)} in column order — exactly the scalar loop, so
 * the result has the same bits whatever the tiling, the batch, the chunk, the thread split or the
 * vector width (the prefix cache and batched decode rely on that). Rows past {@code rows} in the last
 * panel are zero and never stored.
 *
 * <p>Formats may scale blocks of columns (Q8_0: a weight is {@code byte × scale}). That product is exact in
 * float32 (an 8-bit integer times an 11-bit significand), so every format is the same single chain over its
 * weights as float32, and a tile may widen the weights on the fly (decode) or once per strip of panels
 * (prefill) without changing a bit. The scalar twin, {@link #matmulRowsScalarOrder}, is that chain per output.
 */
public abstract sealed class Matrix permits Matrix.Plain, Matrix.Q8 {
    static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;
    /** Rows per panel: one vector of outputs (16 with AVX-512). */
    public static final int PANEL = SPECIES.length();
    static final VectorSpecies<Short> HALVES = VectorSpecies.of(short.class, VectorShape.forBitSize(SPECIES.vectorBitSize() / 2));
    static final VectorSpecies<Integer> INTS = VectorSpecies.of(int.class, SPECIES.vectorShape());
    /** {@code -Dgoldfinch.kernels=reference} runs the scalar twin (same bits, slower): for A/B benchmarks. */
    static final boolean TILED = !"reference".equals(System.getProperty("goldfinch.kernels"));

    protected final int rows;
    protected final int cols;
    protected final int panels;
    /** Columns per scale block ({@code cols} for unscaled formats). */
    protected final int blockCols;
    protected final int blocks;
    protected final long blockBytes;
    protected final long panelBytes;
    protected final MemorySegment data;

    Matrix(int rows, int cols, int blockCols, long blockBytes, MemorySegment data) {
        if (rows <= 0 || cols <= 0 || cols % blockCols != 0) {
            throw new IllegalArgumentException("matrix [" + rows + "," + cols + "] with blocks of " + blockCols);
        }
        this.rows = rows;
        this.cols = cols;
        this.panels = (rows + PANEL - 1) / PANEL;
        this.blockCols = blockCols;
        this.blocks = cols / blockCols;
        this.blockBytes = blockBytes;
        this.panelBytes = blockBytes * blocks;
        this.data = data;
        if (data.byteSize() != panelBytes * panels) {
            throw new IllegalArgumentException("matrix [" + rows + "," + cols + "] does not match " + data.byteSize() + " bytes");
        }
    }

    /** Packs a 2-D tensor into panels (f16 is widened to f32: there is no fast f16 kernel). */
    public static Matrix of(Tensor t) {
        long[] s = t.shape();
        if (s.length != 2 || s[0] > Integer.MAX_VALUE || s[1] > Integer.MAX_VALUE) {
            throw new GoldFinchException.BadModel("tensor " + t.name() + " is not a matrix: " + t.shapeString());
        }
        int rows = (int) s[0];
        int cols = (int) s[1];
        return switch (t.dtype()) {
            case F32, F16 -> F32.pack(rows, cols, (r, j) -> t.getFloat((long) r * cols + j));
            case BF16 -> {
                MemorySegment src = t.data();
                MemorySegment dst = allocate((long) panels(rows) * cols * PANEL * 2);
                for (int r = 0; r < rows; r++) {
                    long at = (long) (r / PANEL) * cols * PANEL * 2 + (r % PANEL) * 2L;
                    for (int j = 0; j < cols; j++) {
                        dst.set(I16_LE, at + (long) j * PANEL * 2, src.get(I16_LE, ((long) r * cols + j) * 2));
                    }
                }
                yield new BF16(rows, cols, dst);
            }
            default -> throw new GoldFinchException.BadModel("tensor " + t.name() + ": unsupported weight type " + t.dtype());
        };
    }

    /** A matrix of {@code values} (row-major), packed off-heap. */
    public static Matrix ofFloats(int rows, int cols, float[] values) {
        if (values.length != rows * cols) {
            throw new IllegalArgumentException(values.length + " values for a [" + rows + "," + cols + "] matrix");
        }
        return F32.pack(rows, cols, (r, j) -> values[r * cols + j]);
    }

    /**
     * Off-heap, 64-byte aligned and zeroed (the padding rows must be zero). If the kernels met heap
     * segments as well as native ones their memory accesses would stop being intrinsified.
     */
    static MemorySegment allocate(long bytes) {
        return Arena.ofAuto().allocate(bytes, 64);
    }

    static int panels(int rows) {
        return (rows + PANEL - 1) / PANEL;
    }

    @FunctionalInterface
    interface Element {
        float at(int row, int col);
    }

    public final int rows() {
        return rows;
    }

    public final int cols() {
        return cols;
    }

    /** Bytes a full pass over this matrix reads (padding rows included). */
    public final long byteSize() {
        return data.byteSize();
    }

    /** Row {@code row} as float32 into {@code dst[off..off+cols)} (tests, conversions: not a hot path). */
    public final void copyRow(int row, float[] dst, int off) {
        for (int j = 0; j < cols; j++) {
            dst[off + j] = get(row, j);
        }
    }

    /** One weight, as float32, scale applied. */
    public final float get(int row, int col) {
        return raw(row, col) * scale(row, col / blockCols);
    }

    /**
     * {@code y[t * rows + r] = sum_j W[r, j] x[t * cols + j]} for rows {@code [r0, r1)} and all {@code n}
     * inputs. {@code r0} and {@code r1} are multiples of {@link #PANEL} ({@code r1} may also be {@code rows}):
     * how {@link Kernels#matmul} splits the work between threads.
     */
    public final void matmulRows(float[] x, int n, float[] y, int r0, int r1) {
        if (r0 % PANEL != 0 || (r1 % PANEL != 0 && r1 != rows) || r0 > r1 || r1 > rows) {
            throw new IllegalArgumentException("rows [" + r0 + "," + r1 + ") are not whole panels of " + PANEL);
        }
        if (TILED) {
            // Whole panels through the tiles; a last, partial panel (a matrix of fewer rows than a vector, such as
            // the golden model's 8-row key compression on AVX-512) through the scalar twin, which gives the same bits.
            // Its masked vector store sat on a call site too cold for C2 to inline, so every call boxed vectors
            // (+600 B per decode token).
            int whole = r1 / PANEL;
            tiles(x, n, y, r0 / PANEL, whole);
            if (whole * PANEL < r1) {
                matmulRowsScalarOrder(x, n, y, whole * PANEL, r1);
            }
        } else {
            matmulRowsScalarOrder(x, n, y, r0, r1);
        }
    }

    /**
     * The register-tiled product over panels {@code [p0, p1)}. Each format has its own tiles, so that the
     * JIT sees one receiver type at each weight load: shared tiles with two formats in one model (LoRAs in
     * f32 beside q8_0 matrices) measured 1.7× slower, the vector values boxed where the two paths merge.
     */
    abstract void tiles(float[] x, int n, float[] y, int p0, int p1);

    /** The scalar twin: one output at a time, the same operations in the same order. Tiled kernels must give its bits. */
    public final void matmulRowsScalarOrder(float[] x, int n, float[] y, int r0, int r1) {
        for (int r = r0; r < r1; r++) {
            for (int t = 0; t < n; t++) {
                int xo = t * cols;
                float acc = 0f;
                for (int j = 0; j < cols; j++) {
                    acc = Math.fma(get(r, j), x[xo + j], acc);
                }
                y[t * rows + r] = acc;
            }
        }
    }

    /**
     * Writes a panel's outputs for input {@code t}; the last panel's padding lanes are left out. The unscaled tiles
     * call it only for a matrix's last panels: in a bf16 tile C2 ran out of inlining budget before these calls and
     * boxed every vector passed (1.5 MB allocated per decode token on AVX2), so whole panels are stored in place.
     */
    final void store(FloatVector acc, float[] y, int t, int p) {
        int r = p * PANEL;
        if (r + PANEL <= rows) {
            acc.intoArray(y, t * rows + r);
        } else {
            acc.intoArray(y, t * rows + r, SPECIES.indexInRange(r, rows));
        }
    }

    final long blockStart(int panel, int block) {
        return panel * panelBytes + block * blockBytes;
    }

    /** The raw stored value at {@code (row, col)}, before any block scale. */
    abstract float raw(int row, int col);

    /** The scale of block {@code block} of a row (1 for unscaled formats). */
    abstract float scale(int row, int block);

    /** Byte offset of {@code (row, col)} within its block, for {@code bytes}-wide values. */
    final long offset(int row, int col, int bytes) {
        return blockStart(row / PANEL, col / blockCols) + ((long) (col % blockCols) * PANEL + row % PANEL) * bytes;
    }

    /**
     * Unscaled formats: every output one FMA chain over all columns. 4 panels × 4 inputs per pass (each
     * weight vector loaded serves 4 inputs, each broadcast input 4 panels), 4 × 1 for the remaining inputs;
     * a single input (decode) goes 8 panels at a time: eight independent chains, eight read streams.
     */
    public abstract static sealed class Plain extends Matrix permits F32, BF16 {
        Plain(int rows, int cols, long bytesPerWeight, MemorySegment data) {
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
            if ((p + 8) * PANEL <= rows) { // whole panels: stored here, not through store() (see there)
                a00.intoArray(y, t * rows + p * PANEL);
                a10.intoArray(y, t * rows + (p + 1) * PANEL);
                a20.intoArray(y, t * rows + (p + 2) * PANEL);
                a30.intoArray(y, t * rows + (p + 3) * PANEL);
                a40.intoArray(y, t * rows + (p + 4) * PANEL);
                a50.intoArray(y, t * rows + (p + 5) * PANEL);
                a60.intoArray(y, t * rows + (p + 6) * PANEL);
                a70.intoArray(y, t * rows + (p + 7) * PANEL);
                return;
            }
            store(a00, y, t, p);
            store(a10, y, t, p + 1);
            store(a20, y, t, p + 2);
            store(a30, y, t, p + 3);
            store(a40, y, t, p + 4);
            store(a50, y, t, p + 5);
            store(a60, y, t, p + 6);
            store(a70, y, t, p + 7);
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
            if ((p + 4) * PANEL <= rows) { // whole panels: stored here, not through store() (see there)
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
                return;
            }
            store(a00, y, t, p);
            store(a10, y, t, p + 1);
            store(a20, y, t, p + 2);
            store(a30, y, t, p + 3);
            store(a01, y, t + 1, p);
            store(a11, y, t + 1, p + 1);
            store(a21, y, t + 1, p + 2);
            store(a31, y, t + 1, p + 3);
            store(a02, y, t + 2, p);
            store(a12, y, t + 2, p + 1);
            store(a22, y, t + 2, p + 2);
            store(a32, y, t + 2, p + 3);
            store(a03, y, t + 3, p);
            store(a13, y, t + 3, p + 1);
            store(a23, y, t + 3, p + 2);
            store(a33, y, t + 3, p + 3);
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
            if ((p + 1) * PANEL <= rows) { // whole panels: stored here, not through store() (see there)
                a00.intoArray(y, t * rows + p * PANEL);
                a01.intoArray(y, (t + 1) * rows + p * PANEL);
                a02.intoArray(y, (t + 2) * rows + p * PANEL);
                a03.intoArray(y, (t + 3) * rows + p * PANEL);
                return;
            }
            store(a00, y, t, p);
            store(a01, y, t + 1, p);
            store(a02, y, t + 2, p);
            store(a03, y, t + 3, p);
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
            if ((p + 4) * PANEL <= rows) { // whole panels: stored here, not through store() (see there)
                a00.intoArray(y, t * rows + p * PANEL);
                a10.intoArray(y, t * rows + (p + 1) * PANEL);
                a20.intoArray(y, t * rows + (p + 2) * PANEL);
                a30.intoArray(y, t * rows + (p + 3) * PANEL);
                return;
            }
            store(a00, y, t, p);
            store(a10, y, t, p + 1);
            store(a20, y, t, p + 2);
            store(a30, y, t, p + 3);
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
            if ((p + 1) * PANEL <= rows) { // whole panels: stored here, not through store() (see there)
                a00.intoArray(y, t * rows + p * PANEL);
                return;
            }
            store(a00, y, t, p);
        }
    }

    public static final class F32 extends Plain {
        F32(int rows, int cols, MemorySegment data) {
            super(rows, cols, 4, data);
        }

        static F32 pack(int rows, int cols, Element element) {
            MemorySegment dst = allocate((long) panels(rows) * cols * PANEL * 4);
            F32 m = new F32(rows, cols, dst);
            for (int r = 0; r < rows; r++) {
                for (int j = 0; j < cols; j++) {
                    dst.set(F32_LE, m.offset(r, j, 4), element.at(r, j));
                }
            }
            return m;
        }

        @Override
        FloatVector vec(long panelStart, int j) {
            return FloatVector.fromMemorySegment(SPECIES, data, panelStart + (long) j * PANEL * 4, ByteOrder.LITTLE_ENDIAN);
        }

        @Override
        float raw(int row, int col) {
            return data.get(F32_LE, offset(row, col, 4));
        }
    }

    /** bf16 is the top half of an f32: widen the shorts to ints, shift them up 16 bits, reinterpret. */
    public static final class BF16 extends Plain {
        BF16(int rows, int cols, MemorySegment data) {
            super(rows, cols, 2, data);
        }

        @Override
        FloatVector vec(long panelStart, int j) {
            ShortVector halves = ShortVector.fromMemorySegment(HALVES, data, panelStart + (long) j * PANEL * 2, ByteOrder.LITTLE_ENDIAN);
            return ((IntVector) halves.convertShape(VectorOperators.S2I, INTS, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
        }

        @Override
        float raw(int row, int col) {
            return Floats.bf16ToFloat(data.get(I16_LE, offset(row, col, 2)));
        }
    }

    /** Quantizes to {@link Q8} when the width allows it (a multiple of the block); otherwise returns {@code m}. */
    public static Matrix quantizeQ8(Matrix m) {
        if (m.cols % Q8.BLOCK != 0 || m instanceof Q8) {
            return m;
        }
        Q8 q = new Q8(m.rows, m.cols, allocate((long) panels(m.rows) * (m.cols / Q8.BLOCK) * Q8.BLOCK_BYTES));
        float[] row = new float[m.cols];
        byte[] bytes = new byte[Q8.BLOCK];
        for (int r = 0; r < m.rows; r++) {
            m.copyRow(r, row, 0);
            for (int b = 0; b < m.cols / Q8.BLOCK; b++) {
                q.setBlock(r, b, quantizeBlock(row, b * Q8.BLOCK, bytes), bytes);
            }
        }
        return q;
    }

    /**
     * Q8_0 of the {@link Q8#BLOCK} values from {@code values[from]}: the bytes into {@code out}, the scale (f16 bits,
     * {@code amax / 127} rounded to f16 as ggml does) returned. The one quantizer: at load and in {@code convert}.
     */
    public static short quantizeBlock(float[] values, int from, byte[] out) {
        float amax = 0;
        for (int i = 0; i < Q8.BLOCK; i++) {
            amax = Math.max(amax, Math.abs(values[from + i]));
        }
        short scaleBits = Float.floatToFloat16(amax / 127f);
        float scale = Float.float16ToFloat(scaleBits);
        for (int i = 0; i < Q8.BLOCK; i++) {
            int v = scale == 0 ? 0 : Math.round(values[from + i] / scale);
            out[i] = (byte) Math.max(-127, Math.min(127, v));
        }
        return scaleBits;
    }

    /** A {@link Q8} matrix from stored Q8_0 tensors: {@code bytes} I8 {@code [rows, cols]}, {@code scales} F16 {@code [rows, cols / 32]}. */
    public static Matrix ofQ8(Tensor bytes, Tensor scales) {
        long[] s = bytes.shape();
        long[] sc = scales.shape();
        if (bytes.dtype() != DType.I8 || scales.dtype() != DType.F16 || s.length != 2 || s[1] % Q8.BLOCK != 0
                || sc.length != 2 || sc[0] != s[0] || sc[1] != s[1] / Q8.BLOCK || s[0] > Integer.MAX_VALUE || s[1] > Integer.MAX_VALUE) {
            throw new GoldFinchException.BadModel("tensor " + bytes.name() + ": Q8_0 needs I8 [rows, cols] and F16 [rows, cols/32] scales, got "
                    + bytes.dtype() + bytes.shapeString() + " and " + scales.dtype() + scales.shapeString());
        }
        int rows = (int) s[0];
        int cols = (int) s[1];
        Q8 q = new Q8(rows, cols, allocate((long) panels(rows) * (cols / Q8.BLOCK) * Q8.BLOCK_BYTES));
        byte[] block = new byte[Q8.BLOCK];
        for (int r = 0; r < rows; r++) {
            for (int b = 0; b < cols / Q8.BLOCK; b++) {
                MemorySegment.copy(bytes.data(), ValueLayout.JAVA_BYTE, (long) r * cols + (long) b * Q8.BLOCK, block, 0, Q8.BLOCK);
                q.setBlock(r, b, scales.data().get(I16_LE, ((long) r * (cols / Q8.BLOCK) + b) * 2), block);
            }
        }
        return q;
    }

    /**
     * Q8_0 (ggml's values): blocks of 32 weights of a row share a scale; a weight is {@code byte × scale}. In a
     * panel, each block is the panel's scales (f32) then 32 columns of one byte per row: 36 bytes per 32
     * weights, 3.6× less to read than f32.
     */
    public static final class Q8 extends Matrix {
        /** Weights per scale. */
        public static final int BLOCK = 32;
        static final int BLOCK_BYTES = (4 + BLOCK) * PANEL;
        static final VectorSpecies<Byte> BYTES = VectorSpecies.of(byte.class, VectorShape.forBitSize(SPECIES.vectorBitSize() / 4));

        Q8(int rows, int cols, MemorySegment data) {
            super(rows, cols, BLOCK, BLOCK_BYTES, data);
        }

        /**
         * One input (decode): 8 panels at a time (4 without AVX-512), each weight widened and scaled as it is read
         * (the bytes are what memory bandwidth pays for). Several inputs (batched decode, prefill): strips of 4 panels widened and scaled
         * once into a per-thread float strip, then 4 panels × 4 inputs from it, as {@link Plain}'s tiles do (widening
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
            store(a0, y, 0, p);
            store(a1, y, 0, p + 1);
            store(a2, y, 0, p + 2);
            store(a3, y, 0, p + 3);
            store(a4, y, 0, p + 4);
            store(a5, y, 0, p + 5);
            store(a6, y, 0, p + 6);
            store(a7, y, 0, p + 7);
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
            store(a0, y, 0, p);
            store(a1, y, 0, p + 1);
            store(a2, y, 0, p + 2);
            store(a3, y, 0, p + 3);
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
            store(a, y, t, p);
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
            store(a00, y, t, p);
            store(a10, y, t, p + 1);
            store(a20, y, t, p + 2);
            store(a30, y, t, p + 3);
            store(a01, y, t + 1, p);
            store(a11, y, t + 1, p + 1);
            store(a21, y, t + 1, p + 2);
            store(a31, y, t + 1, p + 3);
            store(a02, y, t + 2, p);
            store(a12, y, t + 2, p + 1);
            store(a22, y, t + 2, p + 2);
            store(a32, y, t + 2, p + 3);
            store(a03, y, t + 3, p);
            store(a13, y, t + 3, p + 1);
            store(a23, y, t + 3, p + 2);
            store(a33, y, t + 3, p + 3);
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
            store(a0, y, t, p);
            store(a1, y, t, p + 1);
            store(a2, y, t, p + 2);
            store(a3, y, t, p + 3);
        }

        /** Column {@code j} of a block as float32 weights: its bytes widened, times the block's scales (exact). */
        private FloatVector weights(long blockStart, int j) {
            return vec(blockStart, j).mul(FloatVector.fromMemorySegment(SPECIES, data, blockStart, ByteOrder.LITTLE_ENDIAN));
        }

        /** The raw bytes of column {@code j} of a block, one lane per row of the panel, as float32. */
        private FloatVector vec(long blockStart, int j) {
            ByteVector q = ByteVector.fromMemorySegment(BYTES, data, blockStart + 4L * PANEL + (long) j * PANEL, ByteOrder.LITTLE_ENDIAN);
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
}
