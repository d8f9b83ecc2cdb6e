package dev.goldfinch.model.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * Turns generated ids into text as they arrive, holding back an incomplete UTF-8 sequence (a token
 * can end in the middle of a character). One per sequence; not thread-safe.
 */
public final class StreamingDecoder {
    private final WorldTokenizer tokenizer;
    private final ByteArrayOutputStream pending = new ByteArrayOutputStream();

    public StreamingDecoder(WorldTokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    /** The text that became complete with this token (possibly empty). */
    public String push(int id) {
        pending.writeBytes(tokenizer.tokenBytes(id));
        byte[] b = pending.toByteArray();
        int complete = completePrefix(b);
        pending.reset();
        pending.write(b, complete, b.length - complete);
        return new String(b, 0, complete, StandardCharsets.UTF_8);
    }

    /** The rest, with U+FFFD for a dangling incomplete character. */
    public String flush() {
        String s = pending.toString(StandardCharsets.UTF_8);
        pending.reset();
        return s;
    }

    /** Length of the longest prefix that does not end inside a multi-byte sequence that could still complete. */
    static int completePrefix(byte[] b) {
        int n = b.length;
        // Look back at most 3 bytes for the lead byte of a trailing sequence.
        for (int back = 1; back <= Math.min(3, n); back++) {
            int c = b[n - back] & 0xff;
            if ((c & 0xc0) == 0x80) {
                continue; // continuation byte: keep looking for its lead
            }
            int need = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 1;
            return need > back ? n - back : n;
        }
        return n;
    }
}
