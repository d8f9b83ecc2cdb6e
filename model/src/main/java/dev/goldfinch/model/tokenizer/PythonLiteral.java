package dev.goldfinch.model.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * The bytes of a Python {@code repr} literal as the vocabulary writes them: {@code '...'} or
 * {@code "..."} (text, UTF-8 encoded; {@code \xNN} is a code point) and {@code b'...'} (raw bytes).
 */
final class PythonLiteral {
    private PythonLiteral() {}

    static byte[] parse(String lit) {
        boolean bytes = lit.startsWith("b'") || lit.startsWith("b\"");
        String body = bytes ? lit.substring(1) : lit;
        if (body.length() < 2
                || (body.charAt(0) != '\'' && body.charAt(0) != '"')
                || body.charAt(body.length() - 1) != body.charAt(0)) {
            throw new IllegalArgumentException("not a quoted Python literal: " + lit);
        }
        body = body.substring(1, body.length() - 1);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        StringBuilder text = new StringBuilder();
        int i = 0;
        while (i < body.length()) {
            char ch = body.charAt(i);
            if (ch != '\\') {
                if (bytes && ch > 0x7f) {
                    throw new IllegalArgumentException("non-ASCII character in a bytes literal");
                }
                text.appendCodePoint(body.codePointAt(i));
                i += Character.charCount(body.codePointAt(i));
                continue;
            }
            if (i + 1 >= body.length()) {
                throw new IllegalArgumentException("dangling backslash");
            }
            char e = body.charAt(i + 1);
            i += 2;
            int cp;
            switch (e) {
                case '\\' -> cp = '\\';
                case '\'' -> cp = '\'';
                case '"' -> cp = '"';
                case 'n' -> cp = '\n';
                case 't' -> cp = '\t';
                case 'r' -> cp = '\r';
                case 'a' -> cp = 7;
                case 'b' -> cp = 8;
                case 'f' -> cp = 12;
                case 'v' -> cp = 11;
                case 'x' -> {
                    cp = hex(body, i, 2);
                    i += 2;
                }
                case 'u' -> {
                    if (bytes) throw new IllegalArgumentException("\\u in a bytes literal");
                    cp = hex(body, i, 4);
                    i += 4;
                }
                case 'U' -> {
                    if (bytes) throw new IllegalArgumentException("\\U in a bytes literal");
                    cp = hex(body, i, 8);
                    i += 8;
                }
                default -> {
                    if (e >= '0' && e <= '7') {
                        int end = i - 1;
                        while (end < body.length()
                                && end < i + 2
                                && body.charAt(end) >= '0'
                                && body.charAt(end) <= '7') {
                            end++;
                        }
                        cp = Integer.parseInt(body.substring(i - 1, end), 8);
                        i = end;
                    } else {
                        throw new IllegalArgumentException("unknown escape \\" + e);
                    }
                }
            }
            if (bytes) {
                flush(text, out);
                out.write(cp);
            } else {
                if (!Character.isValidCodePoint(cp)) {
                    throw new IllegalArgumentException("invalid code point " + cp);
                }
                text.appendCodePoint(cp);
            }
        }
        flush(text, out);
        return out.toByteArray();
    }

    private static void flush(StringBuilder text, ByteArrayOutputStream out) {
        out.writeBytes(text.toString().getBytes(StandardCharsets.UTF_8));
        text.setLength(0);
    }

    private static int hex(String s, int at, int digits) {
        if (at + digits > s.length()) {
            throw new IllegalArgumentException("short hex escape");
        }
        try {
            return Integer.parseInt(s.substring(at, at + digits), 16);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("bad hex escape " + s.substring(at, at + digits));
        }
    }
}
