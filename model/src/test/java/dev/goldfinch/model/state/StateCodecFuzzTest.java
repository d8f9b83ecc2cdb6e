package dev.goldfinch.model.state;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.GoldFinchModel;
import dev.goldfinch.model.Golden;
import dev.goldfinch.model.ModelConfig;
import dev.goldfinch.model.ModelLoader;
import dev.goldfinch.model.fuzz.FuzzRun;
import dev.goldfinch.model.fuzz.Mutator;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * Cache entries as an attacker who can write to the cache store sends them: mutated state blobs and key
 * blocks, half of them re-sealed (payload size and CRC32C recomputed) so the mutation reaches the
 * decoder behind the checksum. The decode path is the one the cache client runs.
 */
class StateCodecFuzzTest {
    private static final Set<Class<? extends Throwable>> TYPED =
            Set.of(GoldFinchException.CorruptState.class, GoldFinchException.StateMismatch.class);
    private static final int[] PROMPT = {175, 196, 25, 502, 67, 211, 407, 103, 348, 185, 398, 23, 72, 345, 366, 42};

    static GoldFinchModel model;

    @BeforeAll
    static void load() {
        model = ModelLoader.load(Golden.resource("goldfinch").resolve("weights.safetensors"));
    }

    @AfterAll
    static void close() {
        model.close();
    }

    /** Run once with -Dfuzz.writeSeeds=true to regenerate the seeds from the golden model. */
    @Test
    @EnabledIfSystemProperty(named = "fuzz.writeSeeds", matches = "true")
    void writeSeeds() throws IOException {
        SequenceState s = model.newState();
        model.prefill(s, PROMPT);
        Path states = Path.of("src/test/resources/fuzz/state-codec");
        Path blocks = Path.of("src/test/resources/fuzz/key-block");
        Files.createDirectories(states);
        Files.createDirectories(blocks);
        Files.write(states.resolve("f32-16-tokens.bin"), StateCodec.encode(s, StateCodec.FloatType.F32, 0));
        Files.write(states.resolve("bf16-keys-from-8.bin"), StateCodec.encode(s, StateCodec.FloatType.BF16, 7, 8));
        SequenceState empty = model.newState();
        Files.write(states.resolve("f32-empty.bin"), StateCodec.encode(empty, StateCodec.FloatType.F32, 0));
        Files.write(blocks.resolve("f32-8-rows.bin"), StateCodec.encodeKeyBlock(s, 0, 8, StateCodec.FloatType.F32));
        Files.write(blocks.resolve("bf16-8-rows.bin"), StateCodec.encodeKeyBlock(s, 8, 16, StateCodec.FloatType.BF16));
    }

    @Test
    void stateBlobsDecodeOrFailTyped() {
        ModelConfig c = model.config();
        long fingerprint = model.fingerprint();
        List<byte[]> corpus = FuzzRun.corpus("state-codec");
        var result = FuzzRun.run(
                "state-codec",
                corpus,
                (m, seed) -> reseal(m, m.mutate(seed), 52),
                blob -> {
                    // As the cache client does: header, tokens, leading keys sized from the header, decode.
                    StateCodec.Header h = StateCodec.inspect(blob);
                    int[] tokens = StateCodec.tokens(blob);
                    assertEquals(h.length(), tokens.length);
                    float[] leadingKeys = new float[Math.multiplyExact(h.keysFrom(), c.compressedDim())];
                    SequenceState s = StateCodec.decode(blob, c, fingerprint, leadingKeys);
                    assertEquals(h.length(), s.length());
                },
                TYPED,
                input -> 16L * input.length + (1 << 20));
        assertEquals(FuzzRun.validSeeds(result.target()), result.seedsAccepted(), "the valid seeds decode");
    }

    @Test
    void keyBlocksDecodeOrFailTyped() {
        ModelConfig c = model.config();
        long fingerprint = model.fingerprint();
        int rows = 8;
        List<byte[]> corpus = FuzzRun.corpus("key-block");
        var result = FuzzRun.run(
                "key-block",
                corpus,
                (m, seed) -> reseal(m, m.mutate(seed), -1),
                blob -> StateCodec.decodeKeyBlock(blob, c, fingerprint, rows, new float[rows * c.compressedDim()], 0),
                TYPED,
                input -> 4L * input.length + (1 << 20));
        assertEquals(FuzzRun.validSeeds(result.target()), result.seedsAccepted(), "the valid seeds decode");
    }

    @Test
    void forgedCountsBehindAValidChecksumAreCorruptBeforeAnyAllocation() {
        byte[] empty = FuzzRun.corpus("state-codec").stream()
                .filter(b -> b.length > 44
                        && ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).getInt(44) == 0)
                .findFirst()
                .orElseThrow();
        int payloadTokens = (empty.length - StateCodec.HEADER_BYTES - StateCodec.TRAILER_BYTES) / Integer.BYTES;
        int[][] forged = {
            {StateCodec.MAX_TOKENS, StateCodec.MAX_TOKENS, 8},
            {payloadTokens + 1, payloadTokens + 1, 0},
            {1000, 0, 100},
            {0, 0, -1},
            {1, 0, Integer.MAX_VALUE}
        };
        // {length, keysFrom, key width}: every token and key row announced must be in the payload
        for (int[] f : forged) {
            byte[] blob = empty.clone();
            ByteBuffer b = ByteBuffer.wrap(blob).order(ByteOrder.LITTLE_ENDIAN);
            b.putInt(44, f[0]).putInt(48, f[1]).putInt(40, f[2]);
            CRC32C crc = new CRC32C();
            crc.update(blob, 0, blob.length - StateCodec.TRAILER_BYTES);
            b.putInt(blob.length - StateCodec.TRAILER_BYTES, (int) crc.getValue());
            var e = assertThrows(GoldFinchException.CorruptState.class, () -> StateCodec.inspect(blob));
            assertTrue(e.getMessage().contains("payload bytes hold"), e.getMessage());
            assertThrows(GoldFinchException.CorruptState.class, () -> StateCodec.tokens(blob));
        }
    }

    /**
     * Half the time, makes a mutated blob pass the outer checks a forger can satisfy: the payload size
     * field at {@code sizeAt} (none when negative) and the trailing CRC32C.
     */
    static byte[] reseal(Mutator m, byte[] blob, int sizeAt) {
        int needed = StateCodec.TRAILER_BYTES + (sizeAt >= 0 ? sizeAt + Long.BYTES : 0);
        if (m.random().nextBoolean() || blob.length < needed) {
            return blob;
        }
        blob = blob.clone(); // the mutator may hand back the seed itself
        ByteBuffer b = ByteBuffer.wrap(blob).order(ByteOrder.LITTLE_ENDIAN);
        if (sizeAt >= 0 && m.random().nextInt(4) != 0) {
            b.putLong(sizeAt, blob.length - StateCodec.HEADER_BYTES - StateCodec.TRAILER_BYTES);
        }
        CRC32C crc = new CRC32C();
        crc.update(blob, 0, blob.length - StateCodec.TRAILER_BYTES);
        b.putInt(blob.length - StateCodec.TRAILER_BYTES, (int) crc.getValue());
        return blob;
    }
}
