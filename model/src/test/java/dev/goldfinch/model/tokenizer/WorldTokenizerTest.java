package dev.goldfinch.model.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.Golden;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;

class WorldTokenizerTest {
    static WorldTokenizer tok;

    @BeforeAll
    static void load() {
        tok = WorldTokenizer.world();
    }

    /** The bundled file is byte for byte the standard World vocabulary (its sha256 as the golden README gives it). */
    @Test
    void bundledVocabularyIsTheStandardFile() throws Exception {
        try (var in = WorldTokenizer.class.getResourceAsStream(WorldTokenizer.WORLD_VOCABULARY_FILE)) {
            byte[] digest = java.security.MessageDigest.getInstance("SHA-256").digest(in.readAllBytes());
            assertEquals(
                    "e6dee3d4e31b4d5c40ac99508ac6c701ceef4bed681bf2167ce9a908552bca89",
                    HexFormat.of().formatHex(digest));
        }
    }

    @Test
    void aVocabularyBesideTheModelWinsOverTheBundledOne(@TempDir Path folder) throws IOException {
        Path model = folder.resolve("model.safetensors");
        Files.writeString(model, "");
        assertEquals(tok, WorldTokenizer.forModel(null, model), "no file beside the model: the bundled one");
        Files.writeString(folder.resolve(WorldTokenizer.WORLD_VOCABULARY_FILE), "1 'a' 1\n2 'bc' 2\n");
        assertEquals(3, WorldTokenizer.forModel(null, model).vocabSize());
        Path override = folder.resolve("other.txt");
        Files.writeString(override, "1 'x' 1\n");
        assertEquals(2, WorldTokenizer.forModel(override, model).vocabSize());
    }

    static int[] ints(JsonNode array) {
        return array.valueStream().mapToInt(JsonNode::asInt).toArray();
    }

    @Test
    void casesFromOtherProjectsEncodeExactly() throws IOException {
        JsonNode cases = new ObjectMapper()
                .readTree(Golden.shared("tokenizer")
                        .resolve("tokenizer_cases.json")
                        .toFile());
        assertEquals(2, cases.size());
        for (JsonNode c : cases) {
            String input = c.get("input").asString();
            assertArrayEquals(
                    ints(c.get("expected_ids")),
                    tok.encode(input),
                    c.get("source").asString());
            assertEquals(input, tok.decode(tok.encode(input)));
        }
    }

    @Test
    void referenceTrieTokenizerCasesEncodeExactly() throws IOException {
        JsonNode root = new ObjectMapper()
                .readTree(Golden.shared("tokenizer")
                        .resolve("reference_cases.json")
                        .toFile());
        int n = 0;
        for (JsonNode c : root.get("text_cases")) {
            String text = c.get("text").asString();
            assertArrayEquals(ints(c.get("ids")), tok.encode(text), text);
            assertEquals(text, tok.decode(ints(c.get("ids"))));
            n++;
        }
        for (JsonNode c : root.get("byte_cases")) {
            byte[] raw = HexFormat.of().parseHex(c.get("hex").asString());
            assertArrayEquals(ints(c.get("ids")), tok.encode(raw), c.get("hex").asString());
            assertArrayEquals(raw, tok.decodeBytes(ints(c.get("ids"))));
            n++;
        }
        assertEquals(30, n);
    }

    @Test
    void vocabularyFacts() {
        assertEquals(65530, tok.vocabSize());
        for (int b = 0; b < 256; b++) {
            assertArrayEquals(new byte[] {(byte) b}, tok.tokenBytes(b + 1), "byte " + b);
        }
        assertEquals(128, tok.tokenBytes(65529).length);
        assertEquals(0, tok.tokenBytes(WorldTokenizer.END_OF_TEXT).length);
        assertEquals(0, tok.encode("").length);
        assertArrayEquals(new int[] {65529}, tok.encode(" ".repeat(128)));
        assertArrayEquals("\u0080".getBytes(StandardCharsets.UTF_8), tok.tokenBytes(2423), "str \\x80 is a code point");
    }

    @Test
    void roundTripsArbitraryText() {
        Random r = new Random(1);
        for (String s : new String[] {
            "Hello, world!", "emoji 🦜🐉 and ∑ math", "日本語のテキスト", "tabs\tand\nnewlines\r\n", "<|endoftext|>"
        }) {
            assertEquals(s, tok.decode(tok.encode(s)));
        }
        for (int i = 0; i < 50; i++) {
            byte[] b = new byte[r.nextInt(200)];
            r.nextBytes(b);
            assertArrayEquals(b, tok.decodeBytes(tok.encode(b)));
        }
    }

    @Test
    void streamingDecoderHoldsBackSplitCharacters() {
        String text = "Dragons 🐉 in Tibet: 中文 ok";
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        // Byte-level tokens split every multi-byte character across pushes.
        StreamingDecoder d = new StreamingDecoder(tok);
        StringBuilder out = new StringBuilder();
        for (byte b : bytes) {
            String piece = d.push((b & 0xff) + 1);
            assertTrue(piece.indexOf('\uFFFD') < 0, "emitted a broken character");
            out.append(piece);
        }
        out.append(d.flush());
        assertEquals(text, out.toString());
        StreamingDecoder dangling = new StreamingDecoder(tok);
        assertEquals("", dangling.push(0xE4 + 1));
        assertEquals("\uFFFD", dangling.flush());
    }

    @Test
    void badIdsAndMismatchedModels() {
        var e = assertThrows(GoldFinchException.InvalidInput.class, () -> tok.decode(new int[] {5, 70000}));
        assertTrue(e.getMessage().contains("70000"));
        assertThrows(GoldFinchException.InvalidInput.class, () -> tok.tokenBytes(-1));
        var fit = assertThrows(GoldFinchException.InvalidInput.class, () -> tok.checkFits(512));
        assertTrue(fit.getMessage().contains("512"), fit.getMessage());
        tok.checkFits(65536);
    }

    @Test
    void malformedVocabularyNamesTheLine(@TempDir Path tmp) throws IOException {
        Path p = tmp.resolve("v.txt");
        Files.writeString(p, "1 'a' 1\n2 'bc' 5\n");
        var e = assertThrows(GoldFinchException.BadModel.class, () -> WorldTokenizer.load(p));
        assertTrue(e.getMessage().contains("line 2"), e.getMessage());
        Files.writeString(p, "1 'a' 1\n1 'b' 1\n");
        assertTrue(assertThrows(GoldFinchException.BadModel.class, () -> WorldTokenizer.load(p))
                .getMessage()
                .contains("twice"));
        Files.writeString(p, "1 'a\\q' 2\n");
        assertTrue(assertThrows(GoldFinchException.BadModel.class, () -> WorldTokenizer.load(p))
                .getMessage()
                .contains("line 1"));
        Files.writeString(p, "1 b'\\xff' 1\n2 'x' 1\n3 '\\u00e9' 2\n");
        WorldTokenizer small = WorldTokenizer.load(p);
        assertArrayEquals(new int[] {3, 2, 1}, small.encode(new byte[] {(byte) 0xC3, (byte) 0xA9, 'x', (byte) 0xFF}));
    }

    @Test
    void aModelOfTheByteVocabularyReadsBytes() {
        WorldTokenizer bytes = WorldTokenizer.forModel(null, null, 256);
        assertEquals(256, bytes.vocabSize());
        String text = "caf\u00e9 \u2192 ok";
        int[] ids = bytes.encode(text);
        byte[] utf8 = text.getBytes(StandardCharsets.UTF_8);
        assertEquals(utf8.length, ids.length);
        for (int i = 0; i < ids.length; i++) {
            assertEquals(utf8[i] & 0xff, ids[i]);
        }
        assertEquals(text, bytes.decode(ids));
        assertEquals(WorldTokenizer.world(), WorldTokenizer.forModel(null, null, 65536));
    }
}
