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
        int at = extend(n);
        System.arraycopy(src, off, buffer.data, at, n * width);
    }

    /**
     * Appends {@code n} rows for the caller to fill entirely, in place (their contents are arbitrary until then),
     * and returns where the first starts in {@link #array()}: no staging copy for a writer that produces rows
     * element by element.
     */
    public int extend(int n) {
        int at = rows * width;
        int need = (rows + n) * width;
        synchronized (buffer) {
            if (buffer.used == rows && buffer.data.length >= need) {
                buffer.used = rows + n;
                rows += n;
                return at;
            }
        }
        // Diverged from another view, or out of room: move to a private buffer, with room to grow by half
        // (doubling the shared buffer's capacity made every diverging fork of a long prefix twice its size).
        float[] grown = new float[Math.max(need + need / 2, width * 16)];
        System.arraycopy(buffer.data, 0, grown, 0, at);
        buffer = new Buffer(grown, rows + n);
        rows += n;
        return at;
    }

    /**
     * Makes room for {@code totalRows} rows in a buffer of this view's own, so appends up to there copy nothing
     * (a shared prefix is copied once, at the size asked for, instead of at its first append with room for half again).
     */
    public void reserve(int totalRows) {
        int need = totalRows * width;
        synchronized (buffer) {
            if (buffer.used == rows && buffer.data.length >= need) {
                return;
            }
        }
        float[] grown = new float[Math.max(need, rows * width)];
        System.arraycopy(buffer.data, 0, grown, 0, rows * width);
        buffer = new Buffer(grown, rows);
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
