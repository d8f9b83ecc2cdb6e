package dev.goldfinch.cache.app;

import dev.goldfinch.cache.PrefixHasher;
import dev.goldfinch.cache.RedisCacheBackend;
import java.nio.file.Path;
import java.time.Duration;
import org.springframework.boot.context.properties.ConfigurationProperties;

/**
 * {@code goldfinch.cache.*}: the cache store's backend.
 *
 * @param backend       {@code memory} (embedded, one machine) or {@code redis}
 * @param redisUrl      {@code redis://host:6379} ({@code rediss://} for TLS); with {@code redisCluster},
 *                      comma-separated seed nodes
 * @param redisUsername Redis ACL user; unset: {@code default}
 * @param redisPassword that user's password (for {@code default}: {@code requirepass}); never logged or shown
 * @param redisCa       PEM file of the CA that issued the Redis server's certificate ({@code rediss://});
 *                      unset: the JVM's trust store
 * @param maxBytes      embedded backend: LRU bound in bytes (Redis: set {@code maxmemory} and {@code allkeys-lru})
 * @param ttl           lifetime of an entry since its last hit
 * @param chunkBytes    Redis: values above this are split into chunks
 * @param maxValueBytes largest entry accepted by Put
 * @param blockSize     tokens per key block; every service of a mesh must agree
 * @param redisTimeout  bound on one Redis command (Lettuce's own command timeout) and on connecting
 * @param redisBreakerOpen how long the circuit breaker keeps calls from Redis after one timed out
 * @param redisFallbackBytes bound of the store's in-memory tier that answers while Redis cannot
 */
@ConfigurationProperties("goldfinch.cache")
public record CacheStoreProperties(
        String backend,
        String redisUrl,
        String redisUsername,
        String redisPassword,
        Path redisCa,
        Boolean redisCluster,
        Long maxBytes,
        Duration ttl,
        Integer chunkBytes,
        Long maxValueBytes,
        Integer blockSize,
        Duration redisTimeout,
        Duration redisBreakerOpen,
        Long redisFallbackBytes) {
    public CacheStoreProperties {
        backend = backend == null ? "memory" : backend;
        redisCluster = redisCluster != null && redisCluster;
        maxBytes = maxBytes == null ? 2L << 30 : maxBytes;
        ttl = ttl == null ? Duration.ofHours(1) : ttl;
        chunkBytes = chunkBytes == null ? 512 << 10 : chunkBytes;
        maxValueBytes = maxValueBytes == null ? 1L << 30 : maxValueBytes;
        blockSize = blockSize == null ? PrefixHasher.DEFAULT_BLOCK_SIZE : blockSize;
        redisTimeout = redisTimeout == null ? Duration.ofSeconds(1) : redisTimeout;
        redisBreakerOpen = redisBreakerOpen == null ? Duration.ofSeconds(5) : redisBreakerOpen;
        redisFallbackBytes = redisFallbackBytes == null ? 256L << 20 : redisFallbackBytes;
    }

    public RedisCacheBackend.Access redisAccess() {
        return new RedisCacheBackend.Access(redisUsername, redisPassword, redisCa);
    }

    @Override
    public String toString() { // never the password
        return "CacheStoreProperties[backend=" + backend + ", redis=" + redisAccess() + "]";
    }
}
