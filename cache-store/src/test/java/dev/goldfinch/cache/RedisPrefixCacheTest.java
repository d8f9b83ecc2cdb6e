package dev.goldfinch.cache;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.goldfinch.cache.testing.RedisFixture;
import dev.goldfinch.proto.internal.v1.EntryKind;
import io.lettuce.core.RedisClient;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.codec.ByteArrayCodec;
import io.lettuce.core.codec.RedisCodec;
import io.lettuce.core.codec.StringCodec;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The contract against a real Redis, plus the failure modes only a networked store has. */
class RedisPrefixCacheTest extends PrefixCacheContractTest {
    static final int CHUNK = 4096;
    static final long MAX_VALUE = 8L << 20;

    @BeforeAll
    static void needRedis() {
        assumeTrue(RedisFixture.url().isPresent(), "no Redis: set REDIS_URL, install redis-server, or run Docker");
    }

    @Override
    CacheBackend backend() {
        return RedisCacheBackend.connect(
                RedisFixture.url().orElseThrow(),
                false,
                CHUNK,
                MAX_VALUE,
                Duration.ofMinutes(5),
                Duration.ofSeconds(5));
    }

    StatefulRedisConnection<String, byte[]> raw() {
        return RedisClient.create(RedisFixture.url().orElseThrow())
                .connect(RedisCodec.of(StringCodec.UTF8, ByteArrayCodec.INSTANCE));
    }

    /** A header as the backend writes it, with every field the caller's to forge. */
    static byte[] header(boolean inline, long size, int chunks, int extra) {
        return java.nio.ByteBuffer.allocate(32 + extra)
                .order(java.nio.ByteOrder.LITTLE_ENDIAN)
                .putInt(0x48434647)
                .put((byte) 1)
                .put((byte) (inline ? 1 : 0))
                .putShort((short) 0)
                .putLong(77)
                .putLong(size)
                .putInt(chunks)
                .putInt(0)
                .array();
    }

    /**
     * A forged header's chunk count and size are checked against the maximum value size before a chunk key
     * is built or a byte reserved: each is a miss, deleted, and reading it allocates next to nothing.
     */
    @Test
    void aForgedHeaderCountIsCheckedBeforeReading() {
        var threads = (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
        List<byte[]> forged = List.of(
                header(false, 2 * CHUNK, Integer.MAX_VALUE, 0), // two billion chunk keys for an 8 KiB value
                header(false, MAX_VALUE + 1, (int) ((MAX_VALUE + 1 + CHUNK - 1) / CHUNK), 0), // over the limit
                header(false, 1L << 31, (int) ((1L << 31) / CHUNK), 0), // 2^31 bytes
                header(false, -1, 1, 0),
                header(false, 3 * CHUNK, 2, 0), // too few chunks for its size
                header(true, 1L << 40, 0, 5), // inline, announcing more than it holds
                header(false, 100, 1, 0)); // small enough to be inline: no writer makes this
        try (var redis = raw();
                CacheBackend backend = backend()) {
            for (int i = 0; i < forged.size(); i++) {
                String key = "forged:" + i;
                redis.sync().set(key, forged.get(i));
                long before = threads.getCurrentThreadAllocatedBytes();
                assertTrue(backend.read(key).isEmpty(), "forged header " + i + " is a miss");
                long allocated = threads.getCurrentThreadAllocatedBytes() - before;
                assertTrue(allocated < 1 << 20, "forged header " + i + " made the reader allocate " + allocated);
                long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
                while (redis.sync().exists(key) != 0 && System.nanoTime() < deadline) {
                    Thread.onSpinWait(); // the reader's DEL is pipelined on its own connection
                }
                assertEquals(0L, redis.sync().exists(key), "forged header " + i + " is deleted");
            }
        }
    }

    @Test
    void aWriterThatDiesBeforeTheHeaderLeavesNothingVisible() {
        putBlocks("", 2);
        byte[] hash = hasher.prefix(model, "", tokens, 16);
        String key = PrefixCache.key(model, EntryKind.ENTRY_KIND_CHECKPOINT, hash);
        try (var redis = raw()) {
            // What a writer killed midway leaves: its first chunks, no header.
            redis.sync().set(RedisCacheBackend.chunkKey(key, 77, 0), new byte[CHUNK]);
            redis.sync().set(RedisCacheBackend.chunkKey(key, 77, 1), new byte[CHUNK]);
        }
        assertFalse(cache.lookup(model, "", tokens, 39).hit());
        assertTrue(cache.get(model, EntryKind.ENTRY_KIND_CHECKPOINT, hash).isEmpty());
        byte[] value = new byte[3 * CHUNK + 5];
        new Random(3).nextBytes(value);
        assertTrue(putCheckpoint("", 16, value), "a later writer publishes normally");
        assertArrayEquals(
                value, cache.get(model, EntryKind.ENTRY_KIND_CHECKPOINT, hash).orElseThrow());
    }

    @Test
    void aMissingOrCorruptChunkIsAMissAndTheEntryCanBeRewritten() {
        putBlocks("", 2);
        byte[] hash = hasher.prefix(model, "", tokens, 16);
        String key = PrefixCache.key(model, EntryKind.ENTRY_KIND_CHECKPOINT, hash);
        byte[] value = new byte[3 * CHUNK];
        new Random(4).nextBytes(value);
        assertTrue(putCheckpoint("", 16, value));
        try (var redis = raw()) {
            List<String> chunks = redis.sync().keys(key + ":*");
            assertEquals(3, chunks.size(), "large values are chunked under the entry's hash tag");
            redis.sync().setrange(chunks.getFirst(), 10, new byte[] {(byte) ~value[10]});
        }
        assertTrue(
                cache.get(model, EntryKind.ENTRY_KIND_CHECKPOINT, hash).isEmpty(), "checksum catches the flipped byte");
        assertFalse(cache.lookup(model, "", tokens, 39).hit(), "the bad header was dropped");
        assertTrue(putCheckpoint("", 16, value));
        try (var redis = raw()) {
            // One chunk of the live entry (the header names its writer's nonce) evicted by LRU, say; the
            // previous writer's orphaned chunks are still around and must not stand in for it.
            long nonce = java.nio.ByteBuffer.wrap(redis.sync().get(key))
                    .order(java.nio.ByteOrder.LITTLE_ENDIAN)
                    .getLong(8);
            assertEquals(1, redis.sync().del(RedisCacheBackend.chunkKey(key, nonce, 1)));
        }
        assertTrue(cache.get(model, EntryKind.ENTRY_KIND_CHECKPOINT, hash).isEmpty());
    }

    @Test
    void everyKeyOfAnEntryCarriesItsHashTagAndATtl() {
        putBlocks("", 2);
        byte[] value = new byte[2 * CHUNK + 1];
        putCheckpoint("", 19, value);
        try (var redis = raw()) {
            List<String> keys = redis.sync().keys("gf:{" + model + ":*");
            assertTrue(keys.size() >= 2 + 1 + 3 + 1, "2 key blocks, a header, 3 chunks, an index: " + keys);
            for (String k : keys) {
                assertTrue(k.matches("gf:\\{" + model + ":[0-9a-f]{32}}:[kst](:.*)?"), k);
                long ttl = redis.sync().ttl(k);
                assertTrue(ttl > 0 && ttl <= 300, k + " ttl " + ttl);
            }
        }
    }
}
