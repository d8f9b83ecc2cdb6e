package dev.goldfinch.model.state;

import static dev.goldfinch.model.Golden.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.GoldFinchModel;
import dev.goldfinch.model.Golden;
import dev.goldfinch.model.ModelLoader;
import dev.goldfinch.model.ModelShapes;
import dev.goldfinch.model.RandomWeights;
import dev.goldfinch.model.io.SafeTensors;
import dev.goldfinch.model.tensor.DType;
import dev.goldfinch.model.tensor.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class StateCodecTest {
    static GoldFinchModel model;
    static final int[] PROMPT = {175, 196, 25, 502, 67, 211, 407, 103, 348, 185, 398, 23, 72, 345, 366, 42};

    @BeforeAll
    static void load() {
        model = ModelLoader.load(Golden.resource("goldfinch").resolve("weights.safetensors"));
    }

    @AfterAll
    static void close() {
        model.close();
    }

    static SequenceState prefilled() {
        SequenceState s = model.newState();
        model.prefill(s, PROMPT);
        return s;
    }

    @Test
    void stateMatchesTheReferenceStateAfterPrefill() throws Exception {
        SequenceState s = prefilled();
        try (SafeTensors ref = SafeTensors.open(Golden.resource("goldfinch").resolve("outputs.safetensors"))) {
            int hs = model.config().headSize();
            int heads = model.config().nHead();
            for (int l = 0; l < model.config().nLayer(); l++) {
                assertClose(
                        ref.get("state_after_prefill16.blocks." + l + ".att.shift_state")
                                .toFloats(),
                        s.attShift(l),
                        "att shift " + l);
                assertClose(
                        ref.get("state_after_prefill16.blocks." + l + ".ffn.shift_state")
                                .toFloats(),
                        s.ffnShift(l),
                        "ffn shift " + l);
            }
            for (int l = 0; l < model.config().finchLayers(); l++) {
                assertClose(
                        ref.get("state_after_prefill16.blocks." + l + ".att.wkv_state")
                                .toFloats(),
                        Golden.wkvInReferenceLayout(s.wkv(l), heads, hs),
                        "wkv " + l);
            }
            Tensor keys = ref.get("compressed_kcache_prefill16");
            assertClose(keys.toFloats(), s.compressedKeys().copy(0, 16), "compressed keys");
        }
    }

    @Test
    void restoredStateContinuesIdenticallyInF32() {
        SequenceState s = prefilled();
        byte[] blob = StateCodec.encode(s, StateCodec.FloatType.F32, 7);
        assertEquals(StateCodec.encodedSize(model.config(), 16, 0, StateCodec.FloatType.F32), blob.length);
        SequenceState restored = StateCodec.decode(blob, model.config(), model.fingerprint());
        assertEquals(16, restored.length());
        assertArrayEquals(PROMPT, restored.tokens());
        assertEquals(7, StateCodec.inspect(blob).namespace());
        for (int t : new int[] {218, 392, 167}) {
            assertArrayEquals(model.step(s, t), model.step(restored, t), 0f);
        }
    }

    @Test
    void bf16StateIsHalfTheSizeAndCloseInLogits() {
        SequenceState s = prefilled();
        byte[] f32 = StateCodec.encode(s, StateCodec.FloatType.F32, 0);
        byte[] bf16 = StateCodec.encode(s, StateCodec.FloatType.BF16, 0);
        assertTrue(bf16.length < f32.length * 0.6, bf16.length + " vs " + f32.length);
        SequenceState restored = StateCodec.decode(bf16, model.config(), model.fingerprint());
        float d = Golden.maxAbsDiff(model.step(s, 218), model.step(restored, 218));
        assertTrue(d > 0 && d < 0.05f, "bf16 state changes the next logits by " + d);
    }

    @Test
    void blobWithoutLeadingKeysIsCompletedByTheCaller() {
        SequenceState s = prefilled();
        byte[] tail = StateCodec.encode(s, StateCodec.FloatType.F32, 0, 10);
        float[] leading = s.compressedKeys().copy(0, 10);
        SequenceState restored = StateCodec.decode(tail, model.config(), model.fingerprint(), leading);
        assertArrayEquals(model.step(s.fork(), 5), model.step(restored, 5), 0f);
        assertThrows(
                IllegalArgumentException.class, () -> StateCodec.decode(tail, model.config(), model.fingerprint()));
    }

    @Test
    void flippedBitIsCorrupt() {
        byte[] blob = StateCodec.encode(prefilled(), StateCodec.FloatType.F32, 0);
        for (int pos : new int[] {9, StateCodec.HEADER_BYTES + 3, blob.length / 2, blob.length - 1}) {
            byte[] bad = blob.clone();
            bad[pos] ^= 0x10;
            assertThrows(
                    GoldFinchException.CorruptState.class,
                    () -> StateCodec.decode(bad, model.config(), model.fingerprint()),
                    "bit flipped at " + pos);
        }
    }

    @Test
    void truncatedOrOversizedBlobIsCorrupt() {
        byte[] blob = StateCodec.encode(prefilled(), StateCodec.FloatType.F32, 0);
        for (int len : new int[] {0, 3, StateCodec.HEADER_BYTES, blob.length - 1}) {
            byte[] cut = Arrays.copyOf(blob, len);
            var e = assertThrows(
                    GoldFinchException.CorruptState.class,
                    () -> StateCodec.decode(cut, model.config(), model.fingerprint()));
            assertTrue(e.getMessage().contains("truncated"), e.getMessage());
        }
        byte[] longer = Arrays.copyOf(blob, blob.length + 8);
        assertThrows(
                GoldFinchException.CorruptState.class,
                () -> StateCodec.decode(longer, model.config(), model.fingerprint()));
    }

    @Test
    void headerClaimingAHugeLengthIsRejectedBeforeAllocating() {
        byte[] blob = StateCodec.encode(prefilled(), StateCodec.FloatType.F32, 0);
        ByteBuffer.wrap(blob).order(ByteOrder.LITTLE_ENDIAN).putLong(52, Long.MAX_VALUE / 2);
        assertThrows(
                GoldFinchException.CorruptState.class,
                () -> StateCodec.decode(blob, model.config(), model.fingerprint()));
    }

    @Test
    void blobOfAnotherModelIsAMismatch() {
        try (GoldFinchModel other = RandomWeights.model(model.config(), 1, DType.F32)) {
            SequenceState s = other.newState();
            other.prefill(s, PROMPT);
            byte[] blob = StateCodec.encode(s, StateCodec.FloatType.F32, 0);
            var e = assertThrows(
                    GoldFinchException.StateMismatch.class,
                    () -> StateCodec.decode(blob, model.config(), model.fingerprint()));
            assertTrue(e.getMessage().contains("another") || e.getMessage().contains("belongs"), e.getMessage());
            // And a live state of another model cannot be fed to this one.
            assertThrows(GoldFinchException.StateMismatch.class, () -> model.step(s, 1));
        }
        try (GoldFinchModel finch = RandomWeights.model(
                ModelShapes.parse("layers=2,width=64,head=32,vocab=512,arch=finch"), 1, DType.F32)) {
            byte[] blob = StateCodec.encode(finch.newState(), StateCodec.FloatType.F32, 0);
            assertThrows(
                    GoldFinchException.StateMismatch.class,
                    () -> StateCodec.decode(blob, model.config(), model.fingerprint()));
        }
    }

    @Test
    void forkSharesRowsUntilEitherSideAppends() {
        SequenceState parent = prefilled();
        SequenceState child = parent.fork();
        assertSame(parent.compressedKeys().array(), child.compressedKeys().array(), "fork copies the key rows");
        float[] a = model.step(child, 218);
        float[] b = model.step(parent.fork(), 218);
        assertArrayEquals(a, b, 0f);
        // Diverging continuations do not see each other's rows.
        SequenceState other = parent.fork();
        model.step(other, 300);
        assertEquals(218, child.token(16));
        assertEquals(300, other.token(16));
        assertEquals(16, parent.length());
        assertArrayEquals(model.step(parent.fork(), 218), a, 0f);
    }
}
