package dev.goldfinch.mesh;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.goldfinch.cache.testing.RedisFixture;
import io.lettuce.core.RedisClient;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.codec.ByteArrayCodec;
import io.lettuce.core.codec.RedisCodec;
import io.lettuce.core.codec.StringCodec;

/** The mesh over a real Redis. */
class RedisMeshEndToEndTest extends MeshEndToEndTest {
    @Override
    String redisUrl() {
        assumeTrue(RedisFixture.url().isPresent(), "no Redis: set REDIS_URL, install redis-server, or run Docker");
        return RedisFixture.url().orElseThrow();
    }

    @Override
    int corruptCheckpoints() {
        RedisClient redis = RedisClient.create(redisUrl());
        try (StatefulRedisConnection<String, byte[]> c =
                redis.connect(RedisCodec.of(StringCodec.UTF8, ByteArrayCodec.INSTANCE))) {
            int n = 0;
            for (String key : c.sync().keys("gf:*}:s")) {
                byte[] v = c.sync().get(key);
                if (v != null && v.length > 40) {
                    c.sync()
                            .setrange(
                                    key, v.length - 5, new byte[] {(byte) ~v[v.length - 5]}); // inside the inline value
                    n++;
                }
            }
            for (String key : c.sync().keys("gf:*}:s:*")) {
                byte[] v = c.sync().get(key);
                c.sync().setrange(key, v.length / 2, new byte[] {(byte) ~v[v.length / 2]}); // inside a chunk
                n++;
            }
            return n;
        } finally {
            redis.shutdown();
        }
    }
}
