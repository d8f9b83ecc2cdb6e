package dev.goldfinch.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.model.GoldFinchModel.GoldMode;
import dev.goldfinch.model.GoldFinchModel.Segment;
import dev.goldfinch.model.state.SequenceState;
import dev.goldfinch.model.state.StateCodec;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A prefill holding no GOLD keys and values (chunks that skip GOLD, a last chunk that streams them) continues exactly
 * as the plain prefill: the same last logits, the same state, the same next step; and its state holds none of them.
 */
class KeysOnlyPrefillTest {
    static GoldFinchModel model;

    @BeforeAll
    static void load() {
        model = ModelLoader.load(Golden.resource("goldfinch").resolve("weights.safetensors"));
    }

    @AfterAll
    static void close() {
        model.close();
    }

    /** Longer than two streamed blocks, and a tail shorter than the GOLD window after the last whole chunk. */
    static int[] prompt() {
        int length = 2 * GoldAttention.STREAM_BLOCK + 3 * 64 + 2;
        return new Random(5).ints(length, 1, model.config().vocabSize()).toArray();
    }

    @Test
    void keysOnlyPrefillThenAStepGivesThePlainLogits() {
        int[] toks = prompt();
        SequenceState plain = model.newState();
        float[] plainLast = model.prefill(plain, toks);
        SequenceState keysOnly = model.newState();
        float[] keysOnlyLast = model.prefillKeysOnly(keysOnly, toks, 64);

        assertArrayEquals(plainLast, keysOnlyLast, 1e-5f, "last prompt logits");
        assertEquals(plain.length(), keysOnly.length());
        int keyFloats = toks.length * model.config().compressedDim();
        assertArrayEquals(
                Arrays.copyOf(plain.compressedKeys().array(), keyFloats),
                Arrays.copyOf(keysOnly.compressedKeys().array(), keyFloats),
                1e-5f);
        for (int l = 0; l < model.config().nLayer(); l++) {
            assertArrayEquals(plain.attShift(l), keysOnly.attShift(l), 1e-5f, "att shift of layer " + l);
            assertArrayEquals(plain.ffnShift(l), keysOnly.ffnShift(l), 1e-5f, "ffn shift of layer " + l);
        }
        for (int g = 0; g < model.config().goldLayers(); g++) {
            assertEquals(toks.length, plain.goldKeys(g).rows(), "the plain prefill holds its keys");
            assertEquals(0, keysOnly.goldKeys(g).rows(), "keys of GOLD layer " + g);
            assertEquals(0, keysOnly.goldValues(g).rows(), "values of GOLD layer " + g);
            assertEquals(0, keysOnly.goldKeyBlocks(g).rows(), "key blocks of GOLD layer " + g);
        }
        assertFalse(keysOnly.goldPending());

        // Decoding from it rebuilds the keys and values, as after a restore, and continues as the plain state.
        assertArrayEquals(model.step(plain, 7), model.step(keysOnly, 7), 1e-5f, "the step after the prompt");
        assertEquals(toks.length + 1, keysOnly.goldKeys(0).rows());
    }

    @Test
    void aContextLongerThanOneRebuildBlockContinuesAsThePlainOne() {
        int[] toks = new Random(6)
                .ints(GoldAttention.EXTEND_BLOCK + 100, 1, model.config().vocabSize())
                .toArray();
        SequenceState plain = model.newState();
        model.prefill(plain, toks);
        SequenceState keysOnly = model.newState();
        model.prefillKeysOnly(keysOnly, toks, 512);
        // The step rebuilds every position's keys and values, a block at a time.
        assertArrayEquals(model.step(plain, 11), model.step(keysOnly, 11), 1e-5f);
        assertEquals(
                toks.length + 1,
                keysOnly.goldValues(model.config().goldLayers() - 1).rows());
    }

    @Test
    void skippedChunksThenALiveOneMaterialiseEveryPosition() {
        int[] toks = prompt();
        SequenceState plain = model.newState();
        model.prefill(plain, toks);
        SequenceState mixed = model.newState();
        int split = toks.length - model.config().goldWindow();
        model.forward(List.of(new Segment(mixed, Arrays.copyOf(toks, split), split, GoldMode.SKIPPED)));
        assertTrue(mixed.goldPending());
        assertEquals(0, mixed.goldKeys(0).rows(), "a skipped chunk materialises nothing");
        model.forward(List.of(Segment.lastLogits(mixed, Arrays.copyOfRange(toks, split, toks.length))));
        assertEquals(toks.length, mixed.goldKeys(0).rows());
        assertArrayEquals(model.step(plain, 9), model.step(mixed, 9), 1e-5f);
    }

    @Test
    void aPassTooShortToCatchUpOnSkippedGoldIsRefused() {
        SequenceState state = model.newState();
        int[] toks = prompt();
        model.forward(List.of(new Segment(state, Arrays.copyOf(toks, 100), 100, GoldMode.SKIPPED)));
        assertThrows(IllegalStateException.class, () -> StateCodec.encode(state, StateCodec.FloatType.F32, 0));
        assertThrows(IllegalArgumentException.class, () -> model.step(state, 3));
        assertThrows(
                IllegalArgumentException.class,
                () -> new Segment(state, new int[] {1, 2}, 1, GoldMode.SKIPPED),
                "a segment skipping GOLD asks no logits");
    }

    @Test
    void chunkEndsLeaveTheGoldWindowToTheLastChunk() {
        int window = model.config().goldWindow();
        assertEquals(64, model.keysOnlyChunkEnd(0, 1000, 64));
        assertEquals(1000, model.keysOnlyChunkEnd(960, 1000, 64));
        int at = 1000 - 64 - window + 1; // a whole chunk would leave window - 1 tokens
        assertEquals(1000 - window, model.keysOnlyChunkEnd(at, 1000, 64));
        assertEquals(1000, model.keysOnlyChunkEnd(1000 - window, 1000, 64));
    }
}
