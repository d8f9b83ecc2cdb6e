package dev.goldfinch.model.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.fuzz.FuzzRun;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Prompts and generated ids from anyone: every mutated input is encoded as bytes, as UTF-8 text and as
 * UTF-16 text with lone surrogates, and read as little-endian int32 ids to decode. Encoding never fails
 * and decodes back to its input; decoding fails with {@link GoldFinchException.InvalidInput} exactly when
 * an id is outside the vocabulary, and streaming decode gives the same text as decoding at once.
 */
class WorldTokenizerFuzzTest {
    static WorldTokenizer tok;

    @BeforeAll
    static void load() {
        tok = WorldTokenizer.world();
    }

    private static boolean inVocabulary(int id) {
        try {
            tok.tokenBytes(id);
            return true;
        } catch (GoldFinchException.InvalidInput e) {
            return false;
        }
    }

    @Test
    void anyBytesEncodeAndAnyIdsDecodeOrFailTyped() {
        List<byte[]> corpus = FuzzRun.corpus("tokenizer");
        var result = FuzzRun.run(
                "tokenizer",
                corpus,
                (m, seed) -> m.mutate(seed),
                input -> {
                    int[] encoded = tok.encode(input);
                    assertTrue(encoded.length <= input.length, "at most one token per byte");
                    assertArrayEquals(input, tok.decodeBytes(encoded));
                    String utf8 = new String(input, StandardCharsets.UTF_8);
                    assertEquals(utf8, tok.decode(tok.encode(utf8)));
                    char[] utf16 = new char[input.length / 2];
                    ByteBuffer.wrap(input)
                            .order(ByteOrder.LITTLE_ENDIAN)
                            .asCharBuffer()
                            .get(utf16);
                    String withSurrogates = new String(utf16);
                    assertEquals(
                            new String(withSurrogates.getBytes(StandardCharsets.UTF_8), StandardCharsets.UTF_8),
                            tok.decode(tok.encode(withSurrogates)));

                    // Ids as a client sends them: raw int32s, or (for an even first byte) folded into the vocabulary
                    // and one past it, so most decode and some hit the edge.
                    int[] ids = new int[input.length / 4];
                    ByteBuffer.wrap(input)
                            .order(ByteOrder.LITTLE_ENDIAN)
                            .asIntBuffer()
                            .get(ids);
                    if (input.length > 0 && (input[0] & 1) == 0) {
                        for (int i = 0; i < ids.length; i++) {
                            ids[i] = Math.floorMod(ids[i], tok.vocabSize() + 1);
                        }
                    }
                    boolean known = Arrays.stream(ids).allMatch(WorldTokenizerFuzzTest::inVocabulary);
                    String whole;
                    try {
                        whole = tok.decode(ids);
                    } catch (GoldFinchException.InvalidInput e) {
                        assertFalse(known, "decode refused known ids: " + e.getMessage());
                        throw e;
                    }
                    assertTrue(known, "decode accepted an unknown id");
                    StreamingDecoder stream = new StreamingDecoder(tok);
                    StringBuilder pieces = new StringBuilder();
                    for (int id : ids) {
                        pieces.append(stream.push(id));
                    }
                    pieces.append(stream.flush());
                    assertEquals(whole, pieces.toString());
                },
                Set.of(GoldFinchException.InvalidInput.class),
                input -> 64L * input.length + (1 << 20));
        assertEquals(FuzzRun.validSeeds(result.target()), result.seedsAccepted(), "the text seeds decode");
        assertTrue(result.accepted() > result.inputs() / 4, "most folded ids decode: " + result.accepted());
    }
}
