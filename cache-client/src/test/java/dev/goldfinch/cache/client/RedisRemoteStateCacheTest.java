package dev.goldfinch.cache.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.goldfinch.cache.CacheBackend;
import dev.goldfinch.cache.RedisCacheBackend;
import dev.goldfinch.cache.testing.RedisFixture;
import io.lettuce.core.RedisClient;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.codec.ByteArrayCodec;
import io.lettuce.core.codec.RedisCodec;
import io.lettuce.core.codec.StringCodec;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;

/** Over a real Redis, with chunks small enough that every key block is split (the chunked read path). */
class RedisRemoteStateCacheTest extends RemoteStateCacheTest {
    static final int CHUNK = 1024; // the least allowed: a key block of the small test model is a few KiB

    @BeforeAll
    static void needRedis() {
        assumeTrue(RedisFixture.url().isPresent(), "no Redis: set REDIS_URL, install redis-server, or run Docker");
    }

    @Override
    CacheBackend backend() {
        return RedisCacheBackend.connect(
                RedisFixture.url().orElseThrow(), false, CHUNK, 1L << 30, Duration.ofMinutes(5), Duration.ofSeconds(5));
    }

    <T> T withRedis(java.util.function.Function<StatefulRedisConnection<String, byte[]>, T> work) {
        RedisClient redis = RedisClient.create(RedisFixture.url().orElseThrow());
        try (var c = redis.connect(RedisCodec.of(StringCodec.UTF8, ByteArrayCodec.INSTANCE))) {
            return work.apply(c);
        } finally {
            redis.shutdown();
        }
    }

    @Override
    void dropKeyBlock(String key) {
        List<String> chunks = withRedis(c -> c.sync().keys(key + ":*"));
        assertTrue(chunks.size() > 1, "a key block over " + CHUNK + " bytes is chunked: " + chunks);
        assertEquals(1L, (long) withRedis(c -> c.sync().del(chunks.get(1)))); // one chunk evicted, the header left
    }

    @Override
    void corruptKeyBlock(String key) {
        withRedis(c -> {
            String chunk = c.sync().keys(key + ":*").getFirst();
            byte[] v = c.sync().get(chunk);
            return c.sync().setrange(chunk, v.length / 2, new byte[] {(byte) ~v[v.length / 2]});
        });
    }
}
