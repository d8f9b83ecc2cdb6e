package dev.goldfinch.model.tokenizer;

import dev.goldfinch.model.GoldFinchException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * The RWKV "World" tokenizer: greedy longest match over UTF-8 bytes against a byte trie (never
 * backtracks, not BPE). The vocabulary file is {@code <id> <python literal> <byte length>} per line
 * (golden/tokenizer/README.md); id 0 is {@code <|endoftext|>} and has no line. Immutable, thread-safe.
 */
public final class WorldTokenizer {
    public static final int END_OF_TEXT = 0;

    private final byte[][] tokenBytes; // by id; null where the id has no token
    // Trie: node n's children for byte b at child[n * 256 + b] (0 = none); tokenAt[n] = id ending there or -1.
    private final int[] child;
    private final int[] tokenAt;
    private final int maxTokenLength;

    private WorldTokenizer(byte[][] tokenBytes) {
        this.tokenBytes = tokenBytes;
        int nodes = 1;
        int maxLen = 0;
        for (byte[] t : tokenBytes) {
            if (t != null) {
                nodes += t.length;
                maxLen = Math.max(maxLen, t.length);
            }
        }
        maxTokenLength = maxLen;
        int[] ch = new int[256 * Math.min(nodes, 1 << 20)];
        int[] at = new int[ch.length / 256];
        Arrays.fill(at, -1);
        int used = 1;
        for (int id = 0; id < tokenBytes.length; id++) {
            byte[] t = tokenBytes[id];
            if (t == null) {
                continue;
            }
            int node = 0;
            for (byte b : t) {
                int slot = node * 256 + (b & 0xff);
                if (ch[slot] == 0) {
                    if (used == at.length) {
                        ch = Arrays.copyOf(ch, ch.length * 2);
                        at = Arrays.copyOf(at, at.length * 2);
                        Arrays.fill(at, used, at.length, -1);
                    }
                    ch[slot] = used++;
                }
                node = ch[slot];
            }
            at[node] = id;
        }
        child = Arrays.copyOf(ch, used * 256);
        tokenAt = Arrays.copyOf(at, used);
    }

    /** The World vocabulary's file name, as the released models ship it. */
    public static final String WORLD_VOCABULARY_FILE = "rwkv_vocab_v20230424.txt";

    /** The World vocabulary bundled in this jar (Apache-2.0, see NOTICE), parsed once per JVM. */
    public static WorldTokenizer world() {
        return Bundled.WORLD;
    }

    /**
     * The tokenizer for a model: {@code override} when given; else a {@value #WORLD_VOCABULARY_FILE} in the
     * model's folder (a model that brings its own vocabulary); else the bundled World vocabulary.
     */
    public static WorldTokenizer forModel(Path override, Path model) {
        if (override != null) {
            return load(override);
        }
        Path beside = vocabularyBeside(model);
        return beside != null ? load(beside) : world();
    }

    /**
     * As {@link #forModel(Path, Path)}, but a model whose vocabulary is the 256 byte values (rwkv.cpp's tiny models,
     * byte-level research models) gets {@link #bytes()} when neither an override nor a file beside it says otherwise.
     */
    public static WorldTokenizer forModel(Path override, Path model, int modelVocabSize) {
        if (override == null && vocabularyBeside(model) == null && modelVocabSize == BYTE_VOCABULARY_SIZE) {
            return bytes();
        }
        return forModel(override, model);
    }

    /** A model of this vocabulary size reads bytes: token id = byte value. */
    public static final int BYTE_VOCABULARY_SIZE = 256;

    /**
     * The byte-level vocabulary as a degenerate World vocabulary: token i is the one byte i. Id 0 (the NUL byte) is
     * also {@link #END_OF_TEXT}, as in the World vocabulary: generation stops there and it decodes to nothing.
     */
    public static WorldTokenizer bytes() {
        return Bundled.BYTES;
    }

    /** The {@value #WORLD_VOCABULARY_FILE} in a model's folder (or the folder given), or null. */
    public static Path vocabularyBeside(Path model) {
        if (model == null) {
            return null;
        }
        Path folder = Files.isDirectory(model) ? model : model.toAbsolutePath().getParent();
        Path beside = folder == null ? null : folder.resolve(WORLD_VOCABULARY_FILE);
        return beside != null && Files.isRegularFile(beside) ? beside : null;
    }

    private static final class Bundled { // a holder: parsed on first use, not when the class loads
        static final WorldTokenizer WORLD = loadBundled();
        static final WorldTokenizer BYTES = byteVocabulary();

        private static WorldTokenizer byteVocabulary() {
            byte[][] byId = new byte[BYTE_VOCABULARY_SIZE][];
            for (int b = 0; b < byId.length; b++) {
                byId[b] = new byte[] {(byte) b};
            }
            return new WorldTokenizer(byId);
        }

        private static WorldTokenizer loadBundled() {
            String resource = WORLD_VOCABULARY_FILE;
            try (var in = WorldTokenizer.class.getResourceAsStream(resource)) {
                if (in == null) {
                    throw new GoldFinchException.BadModel("the bundled vocabulary " + resource + " is missing");
                }
                String text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
                return parse(text.lines().toList(), "(bundled) " + resource);
            } catch (IOException e) {
                throw new GoldFinchException.BadModel("cannot read the bundled vocabulary: " + e.getMessage(), e);
            }
        }
    }

    public static WorldTokenizer load(Path vocabFile) {
        List<String> lines;
        try {
            lines = Files.readAllLines(vocabFile, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new GoldFinchException.BadModel("cannot read vocabulary " + vocabFile + ": " + e.getMessage(), e);
        }
        return parse(lines, vocabFile.toString());
    }

    /** Parses vocabulary lines; {@code vocabFile} names their source in errors. */
    private static WorldTokenizer parse(List<String> lines, String vocabFile) {
        byte[][] byId = new byte[1][];
        int lineNo = 0;
        for (String line : lines) {
            lineNo++;
            if (line.isEmpty()) {
                continue;
            }
            int first = line.indexOf(' ');
            int last = line.lastIndexOf(' ');
            if (first <= 0 || last <= first) {
                throw bad(vocabFile, lineNo, "expected '<id> <literal> <length>'");
            }
            int id;
            int length;
            try {
                id = Integer.parseInt(line.substring(0, first));
                length = Integer.parseInt(line.substring(last + 1));
            } catch (NumberFormatException e) {
                throw bad(vocabFile, lineNo, "id or length is not a number");
            }
            if (id <= 0 || id > 1 << 24) {
                throw bad(vocabFile, lineNo, "id " + id + " out of range (1.." + (1 << 24) + ")");
            }
            byte[] bytes;
            try {
                bytes = PythonLiteral.parse(line.substring(first + 1, last));
            } catch (IllegalArgumentException e) {
                throw bad(vocabFile, lineNo, e.getMessage());
            }
            if (bytes.length != length) {
                throw bad(
                        vocabFile, lineNo, "literal decodes to " + bytes.length + " bytes but the line says " + length);
            }
            if (bytes.length == 0) {
                throw bad(vocabFile, lineNo, "empty token");
            }
            if (id >= byId.length) {
                byId = Arrays.copyOf(byId, Math.max(id + 1, byId.length * 2));
            }
            if (byId[id] != null) {
                throw bad(vocabFile, lineNo, "id " + id + " appears twice");
            }
            byId[id] = bytes;
        }
        int size = byId.length;
        while (size > 1 && byId[size - 1] == null) {
            size--;
        }
        if (size <= 1) {
            throw new GoldFinchException.BadModel("vocabulary " + vocabFile + " holds no tokens");
        }
        return new WorldTokenizer(Arrays.copyOf(byId, size));
    }

    private static GoldFinchException.BadModel bad(String file, int line, String why) {
        return new GoldFinchException.BadModel("vocabulary " + file + " line " + line + ": " + why);
    }

    /** The longest token's bytes (128 for the World vocabulary): no token covers more of a text. */
    public int maxTokenBytes() {
        return maxTokenLength;
    }

    /** Largest id + 1 (65530 for the World vocabulary). */
    public int vocabSize() {
        return tokenBytes.length;
    }

    /** Fails when some id this tokenizer produces has no row in a model of {@code modelVocabSize}. */
    public void checkFits(int modelVocabSize) {
        if (vocabSize() > modelVocabSize) {
            throw new GoldFinchException.InvalidInput(
                    "the tokenizer's ids go up to " + (vocabSize() - 1) + " but the model's vocabulary has only "
                            + modelVocabSize + " entries (wrong --vocab for this model?)");
        }
    }

    public int[] encode(String text) {
        return encode(text.getBytes(StandardCharsets.UTF_8));
    }

    /** Greedy longest match; every byte is a token, so any byte sequence (also invalid UTF-8) encodes. */
    public int[] encode(byte[] bytes) {
        int[] out = new int[Math.max(16, bytes.length / 2)];
        int n = 0;
        int p = 0;
        while (p < bytes.length) {
            int node = 0;
            int bestId = -1;
            int bestEnd = p;
            for (int q = p; q < bytes.length && q - p < maxTokenLength; q++) {
                node = child[node * 256 + (bytes[q] & 0xff)];
                if (node == 0) {
                    break;
                }
                if (tokenAt[node] >= 0) {
                    bestId = tokenAt[node];
                    bestEnd = q + 1;
                }
            }
            if (bestId < 0) {
                throw new IllegalStateException("byte " + (bytes[p] & 0xff) + " has no token");
            }
            if (n == out.length) {
                out = Arrays.copyOf(out, n * 2);
            }
            out[n++] = bestId;
            p = bestEnd;
        }
        return Arrays.copyOf(out, n);
    }

    /** Whether {@code id} names a token with bytes (not {@link #END_OF_TEXT}, not a gap in the ids). */
    public boolean isToken(int id) {
        return id > 0 && id < tokenBytes.length && tokenBytes[id] != null;
    }

    /** The bytes of one token; id 0 ({@code <|endoftext|>}) is empty. */
    public byte[] tokenBytes(int id) {
        if (id == END_OF_TEXT) {
            return new byte[0];
        }
        if (id < 0 || id >= tokenBytes.length || tokenBytes[id] == null) {
            throw new GoldFinchException.InvalidInput(
                    "token id " + id + " is not in the vocabulary (0.." + (tokenBytes.length - 1) + ")");
        }
        return tokenBytes[id];
    }

    public byte[] decodeBytes(int[] ids) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(ids.length * 4);
        for (int id : ids) {
            out.writeBytes(tokenBytes(id));
        }
        return out.toByteArray();
    }

    /** UTF-8 text of the ids; malformed sequences become U+FFFD, as the reference's {@code errors='replace'}. */
    public String decode(int[] ids) {
        return new String(decodeBytes(ids), StandardCharsets.UTF_8);
    }
}
