package dev.goldfinch.cache.client;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.cache.CacheBackend;
import dev.goldfinch.cache.InMemoryCacheBackend;
import java.time.Clock;
import java.time.Duration;

/** Over the embedded backend. */
class EmbeddedRemoteStateCacheTest extends RemoteStateCacheTest {
    InMemoryCacheBackend memory;

    @Override
    CacheBackend backend() {
        memory = new InMemoryCacheBackend(1L << 30, Duration.ofHours(1), Clock.systemUTC());
        return memory;
    }

    @Override
    void dropKeyBlock(String key) {
        assertTrue(memory.drop(key));
    }

    @Override
    void corruptKeyBlock(String key) {
        assertTrue(memory.corrupt(key));
    }
}
