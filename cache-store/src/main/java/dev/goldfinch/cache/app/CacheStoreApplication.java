package dev.goldfinch.cache.app;

import dev.goldfinch.cache.CacheBackend;
import dev.goldfinch.cache.InMemoryCacheBackend;
import dev.goldfinch.cache.PrefixCache;
import dev.goldfinch.cache.PrefixHasher;
import dev.goldfinch.cache.RedisCacheBackend;
import dev.goldfinch.cache.ResilientCacheBackend;
import dev.goldfinch.cache.grpc.CacheStoreGrpcService;
import dev.goldfinch.service.tracing.TraceContext;
import io.micrometer.core.instrument.MeterRegistry;
import java.time.Clock;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.context.annotation.Bean;

/** The cache-store service: {@code CacheStore} over gRPC, backed by Redis or the embedded store. */
@SpringBootApplication
@EnableConfigurationProperties(CacheStoreProperties.class)
public class CacheStoreApplication {
    public static void main(String[] args) {
        SpringApplication app = new SpringApplication(CacheStoreApplication.class);
        app.setAdditionalProfiles("cache-store");
        app.run(args);
    }

    @Bean(destroyMethod = "close")
    PrefixCache prefixCache(CacheStoreProperties p, MeterRegistry meters) {
        CacheBackend backend = switch (p.backend()) {
            case "memory" -> new InMemoryCacheBackend(p.maxBytes(), p.ttl(), Clock.systemUTC());
            case "redis" -> {
                if (p.redisUrl() == null || p.redisUrl().isBlank()) {
                    throw new IllegalArgumentException("goldfinch.cache.backend=redis needs goldfinch.cache.redis-url");
                }
                yield new ResilientCacheBackend(
                        RedisCacheBackend.connect(
                                p.redisUrl(),
                                p.redisAccess(),
                                p.redisCluster(),
                                p.chunkBytes(),
                                p.maxValueBytes(),
                                p.ttl(),
                                p.redisTimeout()),
                        new InMemoryCacheBackend(p.redisFallbackBytes(), p.ttl(), Clock.systemUTC()),
                        p.redisBreakerOpen(),
                        meters);
            }
            default ->
                throw new IllegalArgumentException(
                        "goldfinch.cache.backend must be memory or redis, got " + p.backend());
        };
        return new PrefixCache(backend, new PrefixHasher(p.blockSize()));
    }

    @Bean(destroyMethod = "shutdown")
    ExecutorService cacheStoreExecutor() {
        return Executors.newVirtualThreadPerTaskExecutor();
    }

    @Bean
    CacheStoreGrpcService cacheStoreGrpcService(
            PrefixCache cache, CacheStoreProperties p, ExecutorService cacheStoreExecutor, MeterRegistry meters) {
        // Each operation's store work runs in the span of its gRPC call.
        return new CacheStoreGrpcService(
                cache, p.maxValueBytes(), TraceContext.propagating(cacheStoreExecutor), meters);
    }
}
