package dev.goldfinch.model.state;

import java.util.Arrays;

/**
 * Append-only rows of {@code width} floats that forks share. A fork sees the first {@code rows} rows
 * of a common buffer; the first view to append past the shared high-water mark writes in place, any
 * other copies first (copy-on-write), so forking a long prefix costs nothing until it diverges.
 */
public final class FloatRows {
    private static final class Buffer {
        float[] data;
        int used; // rows some view has claimed; guarded by this
        Buffer(float[] data, int used) {
            this.data = data;
            this.used = used;
        }
    }

    private final int width;
    private Buffer buffer;
    private int rows;

    public FloatRows(int width) {
        this(width, new Buffer(new float[Math.max(width, 1) * 16], 0), 0);
    }

    private FloatRows(int width, Buffer buffer, int rows) {
        this.width = width;
        this.buffer = buffer;
        this.rows = rows;
    }

    /** Rows from a copy of {@code values} ({@code rows * width} floats). */
    public static FloatRows of(int width, float[] values, int rows) {
        return new FloatRows(width, new Buffer(Arrays.copyOf(values, Math.max(rows * width, width * 16)), rows), rows);
    }

    public int width() {
        return width;
    }

    public int rows() {
        return rows;
    }

    /** A view of the same rows; appends on either side never show through to the other. */
    public FloatRows fork() {
        return new FloatRows(width, buffer, rows);
    }

    /** A view of the first {@code n} rows. */
    public FloatRows prefix(int n) {
        if (n < 0 || n > rows) {
            throw new IndexOutOfBoundsException("prefix " + n + " of " + rows + " rows");
        }
        return new FloatRows(width, buffer, n);
    }

    /** Appends {@code n} rows from {@code src[off..]}. */
    public void append(float[] src, int off, int n) {
        int need = (rows + n) * width;
        synchronized (buffer) {
            if (buffer.used == rows && buffer.data.length >= need) {
                buffer.used = rows + n;
                System.arraycopy(src, off, buffer.data, rows * width, n * width);
                rows += n;
                return;
            }
        }
        // Diverged from another view, or out of room: move to a private buffer, with room to grow by half
        // (doubling the shared buffer's capacity made every diverging fork of a long prefix twice its size).
        float[] grown = Arrays.copyOf(buffer.data, Math.max(need + need / 2, width * 16));
        if (rows * width < grown.length) {
            Arrays.fill(grown, rows * width, grown.length, 0f);
        }
        System.arraycopy(src, off, grown, rows * width, n * width);
        buffer = new Buffer(grown, rows + n);
        rows += n;
    }

    /** The backing array; rows {@code [0, rows())} are valid. Read-only for callers. */
    public float[] array() {
        return buffer.data;
    }

    public float get(int row, int col) {
        if (row >= rows) {
            throw new IndexOutOfBoundsException("row " + row + " of " + rows);
        }
        return buffer.data[row * width + col];
    }

    /** A copy of rows {@code [from, to)}. */
    public float[] copy(int from, int to) {
        return Arrays.copyOfRange(buffer.data, from * width, to * width);
    }
}
