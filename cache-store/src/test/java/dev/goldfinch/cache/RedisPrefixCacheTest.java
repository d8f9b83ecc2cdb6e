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

    @BeforeAll
    static void needRedis() {
        assumeTrue(RedisFixture.url().isPresent(), "no Redis: set REDIS_URL, install redis-server, or run Docker");
    }

    @Override
    CacheBackend backend() {
        return RedisCacheBackend.connect(
                RedisFixture.url().orElseThrow(), false, CHUNK, Duration.ofMinutes(5), Duration.ofSeconds(5));
    }

    StatefulRedisConnection<String, byte[]> raw() {
        return RedisClient.create(RedisFixture.url().orElseThrow())
                .connect(RedisCodec.of(StringCodec.UTF8, ByteArrayCodec.INSTANCE));
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
