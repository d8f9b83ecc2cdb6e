package dev.goldfinch.model.state;

import dev.goldfinch.model.tensor.Floats;

/**
 * Append-only rows of {@code width} values in a {@link KvFormat}, shared by forks copy-on-write exactly as
 * {@link FloatRows} does: a fork sees the first {@code rows} rows of a common buffer, the first view to append past
 * the shared high-water mark writes in place, any other copies first. One backing array is live, by format:
 * {@link #floats()}, {@link #halves()} (bf16 bits) or {@link #bytes()} with {@link #scales()}, {@code scalesPerRow}
 * floats per row (int8: {@code value = byte * scale}).
 */
public final class KvRows {
    private static final class Buffer {
        final float[] floats;
        final short[] halves;
        final byte[] bytes;
        final float[] scales;
        int used; // rows some view has claimed; guarded by this

        Buffer(KvFormat format, int values, int scaleCount, int used) {
            floats = format == KvFormat.F32 ? new float[values] : null;
            halves = format == KvFormat.BF16 ? new short[values] : null;
            bytes = format == KvFormat.INT8 ? new byte[values] : null;
            scales = format == KvFormat.INT8 ? new float[scaleCount] : null;
            this.used = used;
        }

        int capacity(int width) {
            int values = floats != null ? floats.length : halves != null ? halves.length : bytes.length;
            return values / width;
        }
    }

    private final KvFormat format;
    private final int width;
    private final int scalesPerRow;
    private Buffer buffer;
    private int rows;

    /**
     * Rows of {@code width} values; with int8, {@code scalesPerRow} scales per row, each over a run of
     * {@code width / scalesPerRow} consecutive values when rows are appended as floats.
     */
    public KvRows(KvFormat format, int width, int scalesPerRow) {
        this(format, width, scalesPerRow, null, 0);
        this.buffer = allocate(16);
    }

    private KvRows(KvFormat format, int width, int scalesPerRow, Buffer buffer, int rows) {
        this.format = format;
        this.width = Math.max(width, 1);
        this.scalesPerRow = Math.max(scalesPerRow, 1);
        this.buffer = buffer;
        this.rows = rows;
    }

    private Buffer allocate(int capacityRows) {
        return new Buffer(format, capacityRows * width, capacityRows * scalesPerRow, 0);
    }

    public KvFormat format() {
        return format;
    }

    public int width() {
        return width;
    }

    public int rows() {
        return rows;
    }

    public int scalesPerRow() {
        return scalesPerRow;
    }

    /** A view of the same rows; appends on either side never show through to the other. */
    public KvRows fork() {
        return new KvRows(format, width, scalesPerRow, buffer, rows);
    }

    /** A view of the first {@code n} rows. */
    public KvRows prefix(int n) {
        if (n < 0 || n > rows) {
            throw new IndexOutOfBoundsException("prefix " + n + " of " + rows + " rows");
        }
        return new KvRows(format, width, scalesPerRow, buffer, n);
    }

    /**
     * Appends {@code n} rows for the caller to fill entirely, in place, and returns the first one's row index
     * (its values start at {@code row * width()}, its scales at {@code row * scalesPerRow()}).
     */
    public int extend(int n) {
        int at = rows;
        synchronized (buffer) {
            if (buffer.used == rows && buffer.capacity(width) >= rows + n) {
                buffer.used = rows + n;
                rows += n;
                return at;
            }
        }
        // Diverged from another view, or out of room: a private buffer with room to grow by half (as FloatRows).
        int need = rows + n;
        moveTo(Math.max(need + need / 2, 16), need);
        rows += n;
        return at;
    }

    /** Room for {@code totalRows} rows in a buffer of this view's own, so appends up to there copy nothing. */
    public void reserve(int totalRows) {
        synchronized (buffer) {
            if (buffer.used == rows && buffer.capacity(width) >= totalRows) {
                return;
            }
        }
        moveTo(Math.max(totalRows, rows), rows);
    }

    private void moveTo(int capacityRows, int used) {
        Buffer grown = allocate(capacityRows);
        Buffer old = buffer;
        int values = rows * width;
        switch (format) {
            case F32 -> System.arraycopy(old.floats, 0, grown.floats, 0, values);
            case BF16 -> System.arraycopy(old.halves, 0, grown.halves, 0, values);
            case INT8 -> {
                System.arraycopy(old.bytes, 0, grown.bytes, 0, values);
                System.arraycopy(old.scales, 0, grown.scales, 0, rows * scalesPerRow);
            }
        }
        grown.used = used;
        buffer = grown;
    }

    /** Appends {@code n} rows given as floats from {@code src[off..]}, rounded to this format. */
    public void append(float[] src, int off, int n) {
        int at = extend(n);
        write(src, off, at, n);
    }

    /** Writes {@code n} rows given as floats from {@code src[off..]} to rows {@code at..} (claimed by {@link #extend}). */
    void write(float[] src, int off, int at, int n) {
        int count = n * width;
        int dst = at * width;
        switch (format) {
            case F32 -> System.arraycopy(src, off, buffer.floats, dst, count);
            case BF16 -> {
                short[] h = buffer.halves;
                for (int i = 0; i < count; i++) {
                    h[dst + i] = Floats.floatToBf16(src[off + i]);
                }
            }
            case INT8 -> {
                int group = width / scalesPerRow;
                for (int r = 0; r < n; r++) {
                    for (int s = 0; s < scalesPerRow; s++) {
                        int from = off + r * width + s * group;
                        buffer.scales[(at + r) * scalesPerRow + s] =
                                quantize(src, from, group, buffer.bytes, dst + r * width + s * group);
                    }
                }
            }
        }
    }

    /**
     * {@code out[o + i] = round(x[from + i] / scale)} with {@code scale = max |x| / 127} over the {@code n} values;
     * returns the scale (0 for a run of zeros).
     */
    static float quantize(float[] x, int from, int n, byte[] out, int o) {
        float max = 0f;
        for (int i = 0; i < n; i++) {
            max = Math.max(max, Math.abs(x[from + i]));
        }
        float inv = max == 0f ? 0f : 127f / max;
        for (int i = 0; i < n; i++) {
            out[o + i] = (byte) Math.round(x[from + i] * inv);
        }
        return max / 127f;
    }

    /** f32 values; rows {@code [0, rows())} are valid. Read-only for callers. */
    public float[] floats() {
        return buffer.floats;
    }

    /** bf16 bits. Read-only for callers. */
    public short[] halves() {
        return buffer.halves;
    }

    /** int8 values. Read-only for callers. */
    public byte[] bytes() {
        return buffer.bytes;
    }

    /** int8 scales, {@link #scalesPerRow()} per row. Read-only for callers. */
    public float[] scales() {
        return buffer.scales;
    }

    /** Element {@code i} of the backing array as a float (int8: times the scale of its run). */
    public float value(int i) {
        return switch (format) {
            case F32 -> buffer.floats[i];
            case BF16 -> Floats.bf16ToFloat(buffer.halves[i]);
            case INT8 -> buffer.bytes[i] * buffer.scales[i / (width / scalesPerRow)];
        };
    }

    public float get(int row, int col) {
        if (row >= rows) {
            throw new IndexOutOfBoundsException("row " + row + " of " + rows);
        }
        return value(row * width + col);
    }
}
