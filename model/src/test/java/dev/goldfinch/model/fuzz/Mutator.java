package dev.goldfinch.model.fuzz;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Seeded structure-blind mutations of a corpus input, the kinds that break length and count checks: bit
 * flips, byte inserts and deletes, truncation, chunk duplication, and overwriting 2/4/8 bytes (aligned or
 * not, either byte order) or a run of ASCII digits with boundary numbers. One to four per input.
 */
public final class Mutator {
    private static final long[] BOUNDARY = {
        0,
        1,
        -1,
        2,
        7,
        8,
        255,
        256,
        0xffff,
        0x10000,
        Integer.MAX_VALUE,
        1L << 31,
        0xffffffffL,
        1L << 32,
        Integer.MIN_VALUE,
        1L << 24,
        (1L << 24) + 1,
        1L << 40,
        Long.MAX_VALUE,
        Long.MIN_VALUE,
        Long.MAX_VALUE - 7
    };
    private static final String[] NUMBER_TEXT = {
        "0",
        "-1",
        "1",
        "2147483647",
        "2147483648",
        "-2147483648",
        "4294967296",
        "9223372036854775807",
        "9223372036854775808",
        "18446744073709551616",
        "1e300",
        "-0",
        "1.5",
        "99999999999999999999999999"
    };

    private final SplittableRandom random;

    public Mutator(long seed) {
        random = new SplittableRandom(seed);
    }

    public SplittableRandom random() {
        return random;
    }

    public byte[] mutate(byte[] seed) {
        byte[] b = seed;
        int rounds = 1 + random.nextInt(4);
        for (int i = 0; i < rounds; i++) {
            b = once(b);
        }
        return b;
    }

    private byte[] once(byte[] b) {
        int n = b.length;
        switch (random.nextInt(n == 0 ? 2 : 9)) {
            case 0 -> { // insert random bytes
                int at = random.nextInt(n + 1);
                byte[] extra = new byte[1 + random.nextInt(8)];
                random.nextBytes(extra);
                return splice(b, at, 0, extra);
            }
            case 1 -> { // append a copy of a chunk of itself (or random bytes)
                byte[] extra = n == 0 ? new byte[1 + random.nextInt(16)] : chunk(b);
                if (n == 0) {
                    random.nextBytes(extra);
                }
                return splice(b, random.nextInt(n + 1), 0, extra);
            }
            case 2 -> { // flip one bit
                byte[] c = b.clone();
                int at = random.nextInt(n);
                c[at] ^= (byte) (1 << random.nextInt(8));
                return c;
            }
            case 3 -> { // random byte
                byte[] c = b.clone();
                c[random.nextInt(n)] = (byte) random.nextInt(256);
                return c;
            }
            case 4 -> { // delete a run
                int at = random.nextInt(n);
                return splice(b, at, Math.min(n - at, 1 + random.nextInt(16)), new byte[0]);
            }
            case 5 -> { // truncate
                return Arrays.copyOf(b, random.nextInt(n));
            }
            case 6, 7 -> { // overwrite a field with a boundary integer
                int width = 1 << (1 + random.nextInt(3));
                if (n < width) {
                    return b;
                }
                int at = random.nextBoolean()
                        ? random.nextInt(n - width + 1)
                        : random.nextInt((n - width) / width + 1) * width;
                long v = BOUNDARY[random.nextInt(BOUNDARY.length)]
                        + (random.nextInt(8) == 0 ? random.nextInt(-2, 3) : 0);
                ByteBuffer buf = ByteBuffer.wrap(b.clone())
                        .order(random.nextInt(4) == 0 ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN);
                switch (width) {
                    case 2 -> buf.putShort(at, (short) v);
                    case 4 -> buf.putInt(at, (int) v);
                    default -> buf.putLong(at, v);
                }
                return buf.array();
            }
            default -> { // replace a run of ASCII digits (a JSON number, a zip name) with a boundary number
                int start = random.nextInt(n);
                while (start < n && !isDigit(b[start])) {
                    start++;
                }
                if (start == n) {
                    return b;
                }
                int end = start;
                while (end < n && isDigit(b[end])) {
                    end++;
                }
                byte[] text = NUMBER_TEXT[random.nextInt(NUMBER_TEXT.length)].getBytes(StandardCharsets.US_ASCII);
                return splice(b, start, end - start, text);
            }
        }
    }

    private byte[] chunk(byte[] b) {
        int from = random.nextInt(b.length);
        int len = Math.min(b.length - from, 1 + random.nextInt(64));
        return Arrays.copyOfRange(b, from, from + len);
    }

    private static boolean isDigit(byte c) {
        return c >= '0' && c <= '9';
    }

    private static byte[] splice(byte[] b, int at, int remove, byte[] insert) {
        byte[] out = new byte[b.length - remove + insert.length];
        System.arraycopy(b, 0, out, 0, at);
        System.arraycopy(insert, 0, out, at, insert.length);
        System.arraycopy(b, at + remove, out, at + insert.length, b.length - at - remove);
        return out;
    }
}
