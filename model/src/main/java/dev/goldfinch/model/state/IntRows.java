package dev.goldfinch.model.state;

import java.util.Arrays;

/** Append-only token ids shared between forks, with the copy-on-write rule of {@link FloatRows}. */
public final class IntRows {
    private static final class Buffer {
        int[] data;
        int used;

        Buffer(int[] data, int used) {
            this.data = data;
            this.used = used;
        }
    }

    private Buffer buffer;
    private int size;

    public IntRows() {
        this(new Buffer(new int[64], 0), 0);
    }

    private IntRows(Buffer buffer, int size) {
        this.buffer = buffer;
        this.size = size;
    }

    public static IntRows of(int[] ids) {
        return new IntRows(new Buffer(Arrays.copyOf(ids, Math.max(64, ids.length)), ids.length), ids.length);
    }

    public IntRows fork() {
        return new IntRows(buffer, size);
    }

    public int size() {
        return size;
    }

    public int get(int i) {
        if (i < 0 || i >= size) {
            throw new IndexOutOfBoundsException("position " + i + " of " + size);
        }
        return buffer.data[i];
    }

    public void append(int[] ids) {
        int need = size + ids.length;
        synchronized (buffer) {
            if (buffer.used == size && buffer.data.length >= need) {
                buffer.used = need;
                System.arraycopy(ids, 0, buffer.data, size, ids.length);
                size = need;
                return;
            }
        }
        int[] grown = Arrays.copyOf(buffer.data, Math.max(need, buffer.data.length * 2));
        System.arraycopy(ids, 0, grown, size, ids.length);
        buffer = new Buffer(grown, need);
        size = need;
    }

    /** As {@link FloatRows#reserve}: room for {@code total} ids in a buffer of this view's own. */
    public void reserve(int total) {
        synchronized (buffer) {
            if (buffer.used == size && buffer.data.length >= total) {
                return;
            }
        }
        buffer = new Buffer(Arrays.copyOf(buffer.data, Math.max(total, size)), size);
    }

    public int[] toArray() {
        return Arrays.copyOf(buffer.data, size);
    }
}
