package dev.goldfinch.model.tensor;

import dev.goldfinch.model.GoldFinchException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
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
 * <p>Formats may scale blocks of columns (Q8_0: a weight is {@code byte × scale}). Those run one chain per block
 * over the raw values (a byte as float32 is exact), folded into the output by one fma with the block's scale, so
 * a scale costs one operation per block rather than one per weight; the tiles widen the bytes on the fly (decode)
 * or once per strip of panels (prefill) and keep that order. The scalar twin, {@link #matmulRowsScalarOrder}, is
 * each format's order per output ({@link #dotScalarOrder}).
 */
public abstract sealed class Matrix permits PlainMatrix, Q8Matrix {
    static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;
    /** Rows per panel: one vector of outputs (16 with AVX-512). */
    public static final int PANEL = SPECIES.length();

    static final VectorSpecies<Short> HALVES =
            VectorSpecies.of(short.class, VectorShape.forBitSize(SPECIES.vectorBitSize() / 2));
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
            throw new IllegalArgumentException(
                    "matrix [" + rows + "," + cols + "] does not match " + data.byteSize() + " bytes");
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
            case F32, F16 -> F32Matrix.pack(rows, cols, (r, j) -> t.getFloat((long) r * cols + j));
            case BF16 -> {
                MemorySegment src = t.data();
                MemorySegment dst = allocate((long) panels(rows) * cols * PANEL * 2);
                for (int r = 0; r < rows; r++) {
                    long at = (long) (r / PANEL) * cols * PANEL * 2 + (r % PANEL) * 2L;
                    for (int j = 0; j < cols; j++) {
                        dst.set(I16_LE, at + (long) j * PANEL * 2, src.get(I16_LE, ((long) r * cols + j) * 2));
                    }
                }
                yield new BF16Matrix(rows, cols, dst);
            }
            default ->
                throw new GoldFinchException.BadModel("tensor " + t.name() + ": unsupported weight type " + t.dtype());
        };
    }

    /** A matrix of {@code values} (row-major), packed off-heap. */
    public static Matrix ofFloats(int rows, int cols, float[] values) {
        if (values.length != rows * cols) {
            throw new IllegalArgumentException(values.length + " values for a [" + rows + "," + cols + "] matrix");
        }
        return F32Matrix.pack(rows, cols, (r, j) -> values[r * cols + j]);
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
        return data.byteSize() + sideBytes();
    }

    /** Bytes held beside the weights' segment (Q8_0's scales). */
    long sideBytes() {
        return 0;
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
            // Tiles see whole panels only, and store them whole. A last, partial panel (fewer rows than a vector, as
            // the golden model's 8-row key compression on AVX-512) goes through the scalar twin, which gives the same
            // bits: its masked vector store sat on a call site too cold for C2 to inline, which boxed the vectors.
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
                y[t * rows + r] = dotScalarOrder(r, x, t * cols);
            }
        }
    }

    /** Output {@code row} for the input at {@code x[xo..]}: one fma chain over the row's weights, in column order. */
    float dotScalarOrder(int row, float[] x, int xo) {
        float acc = 0f;
        for (int j = 0; j < cols; j++) {
            acc = Math.fma(get(row, j), x[xo + j], acc);
        }
        return acc;
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

    /** Quantizes to {@link Q8Matrix} when the width allows it (a multiple of the block); otherwise returns {@code m}. */
    public static Matrix quantizeQ8(Matrix m) {
        if (m.cols % Q8Matrix.BLOCK != 0 || m instanceof Q8Matrix) {
            return m;
        }
        Q8Matrix q = new Q8Matrix(
                m.rows, m.cols, allocate((long) panels(m.rows) * (m.cols / Q8Matrix.BLOCK) * Q8Matrix.BLOCK_BYTES));
        float[] row = new float[m.cols];
        byte[] bytes = new byte[Q8Matrix.BLOCK];
        for (int r = 0; r < m.rows; r++) {
            m.copyRow(r, row, 0);
            for (int b = 0; b < m.cols / Q8Matrix.BLOCK; b++) {
                q.setBlock(r, b, quantizeBlock(row, b * Q8Matrix.BLOCK, bytes), bytes);
            }
        }
        return q;
    }

    /**
     * Q8_0 of the {@link Q8Matrix#BLOCK} values from {@code values[from]}: the bytes into {@code out}, the scale (f16 bits,
     * {@code amax / 127} rounded to f16 as ggml does) returned. The one quantizer: at load and in {@code convert}.
     */
    public static short quantizeBlock(float[] values, int from, byte[] out) {
        float amax = 0;
        for (int i = 0; i < Q8Matrix.BLOCK; i++) {
            amax = Math.max(amax, Math.abs(values[from + i]));
        }
        short scaleBits = Float.floatToFloat16(amax / 127f);
        float scale = Float.float16ToFloat(scaleBits);
        for (int i = 0; i < Q8Matrix.BLOCK; i++) {
            int v = scale == 0 ? 0 : Math.round(values[from + i] / scale);
            out[i] = (byte) Math.max(-127, Math.min(127, v));
        }
        return scaleBits;
    }

    /** A {@link Q8Matrix} matrix from stored Q8_0 tensors: {@code bytes} I8 {@code [rows, cols]}, {@code scales} F16 {@code [rows, cols / 32]}. */
    public static Matrix ofQ8(Tensor bytes, Tensor scales) {
        long[] s = bytes.shape();
        long[] sc = scales.shape();
        if (bytes.dtype() != DType.I8
                || scales.dtype() != DType.F16
                || s.length != 2
                || s[1] % Q8Matrix.BLOCK != 0
                || sc.length != 2
                || sc[0] != s[0]
                || sc[1] != s[1] / Q8Matrix.BLOCK
                || s[0] > Integer.MAX_VALUE
                || s[1] > Integer.MAX_VALUE) {
            throw new GoldFinchException.BadModel(
                    "tensor " + bytes.name() + ": Q8_0 needs I8 [rows, cols] and F16 [rows, cols/32] scales, got "
                            + bytes.dtype() + bytes.shapeString() + " and " + scales.dtype() + scales.shapeString());
        }
        int rows = (int) s[0];
        int cols = (int) s[1];
        Q8Matrix q = new Q8Matrix(
                rows, cols, allocate((long) panels(rows) * (cols / Q8Matrix.BLOCK) * Q8Matrix.BLOCK_BYTES));
        byte[] block = new byte[Q8Matrix.BLOCK];
        for (int r = 0; r < rows; r++) {
            for (int b = 0; b < cols / Q8Matrix.BLOCK; b++) {
                MemorySegment.copy(
                        bytes.data(),
                        ValueLayout.JAVA_BYTE,
                        (long) r * cols + (long) b * Q8Matrix.BLOCK,
                        block,
                        0,
                        Q8Matrix.BLOCK);
                q.setBlock(r, b, scales.data().get(I16_LE, ((long) r * (cols / Q8Matrix.BLOCK) + b) * 2), block);
            }
        }
        return q;
    }
}
