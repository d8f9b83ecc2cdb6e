package dev.goldfinch.cache;

import io.github.resilience4j.circuitbreaker.CallNotPermittedException;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.github.resilience4j.circuitbreaker.CircuitBreakerConfig;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Redis that can fail without failing a request: every call goes through a circuit breaker (Resilience4j),
 * and what Redis cannot answer is answered by a small in-memory tier of this store's own.
 *
 * <p>The breaker counts calls that waited out a timeout ({@link RedisCacheBackend#costsATimeout}): one opens it,
 * and while it is open no call reaches Redis, so a paused or unreachable Redis costs at most one timeout per
 * {@code openFor}; then one call tries again, and caching in Redis resumes on its own when that succeeds. A Redis
 * that refuses at once (stopped: Lettuce rejects commands while disconnected) costs nothing and needs no breaker.
 *
 * <p>The fallback tier holds what could not be written to Redis and answers reads when Redis cannot, and the
 * keys Redis misses. Its reason is the hand-off from prefill to decode, which goes through the store: with Redis
 * down a request still finds the entry its prefill just wrote (a fresh prompt is recomputed). It is bounded and
 * evicts the least recently used; with Redis healthy it stays empty. Entries stay in whichever tier took them.
 */
public final class ResilientCacheBackend implements CacheBackend {
    private static final Logger log = LoggerFactory.getLogger(ResilientCacheBackend.class);
    private static final long WARN_EVERY_NANOS = Duration.ofSeconds(10).toNanos();

    private final CacheBackend redis;
    private final CacheBackend fallback;
    private final CircuitBreaker breaker;
    private final Counter failures;
    private final Counter skipped;
    private final AtomicLong lastWarning = new AtomicLong(System.nanoTime() - WARN_EVERY_NANOS);

    public ResilientCacheBackend(CacheBackend redis, CacheBackend fallback, Duration openFor, MeterRegistry meters) {
        this.redis = redis;
        this.fallback = fallback;
        this.breaker = CircuitBreaker.of(
                "redis",
                CircuitBreakerConfig.custom()
                        // One timed-out call opens it: the next requests must not wait out timeouts of their own.
                        .slidingWindowType(CircuitBreakerConfig.SlidingWindowType.COUNT_BASED)
                        .slidingWindowSize(1)
                        .minimumNumberOfCalls(1)
                        .failureRateThreshold(100)
                        .recordException(RedisCacheBackend::costsATimeout)
                        .waitDurationInOpenState(openFor)
                        .permittedNumberOfCallsInHalfOpenState(1)
                        .build());
        breaker.getEventPublisher()
                .onStateTransition(e -> log.warn(
                        "Redis circuit breaker {} ({}): {}",
                        e.getStateTransition().getToState(),
                        redis.describe(),
                        switch (e.getStateTransition().getToState()) {
                            case OPEN -> "Redis timed out; the store answers from memory for " + openFor;
                            case HALF_OPEN -> "trying Redis again";
                            case CLOSED -> "Redis answers again; caching there resumes";
                            default -> "";
                        }));
        this.failures = Counter.builder("goldfinch.cache.store.redis.failures")
                .description("Redis calls that failed and were answered from the store's memory")
                .register(meters);
        this.skipped = Counter.builder("goldfinch.cache.store.redis.skipped")
                .description("Calls the open circuit breaker kept from Redis (answered from the store's memory)")
                .register(meters);
        Gauge.builder(
                        "goldfinch.cache.store.redis.breaker.state",
                        breaker,
                        b -> b.getState().getOrder())
                .description("Redis circuit breaker: 0 closed, 1 open, 2 half-open")
                .register(meters);
        Gauge.builder("goldfinch.cache.store.fallback.bytes", fallback, CacheBackend::bytes)
                .description("Bytes held by the store's in-memory tier while Redis could not take them")
                .register(meters);
    }

    public CircuitBreaker.State breakerState() {
        return breaker.getState();
    }

    /** Redis's answer, or empty when it failed or the breaker kept the call from it. */
    private <T> Optional<T> redis(String what, Supplier<T> call) {
        try {
            return Optional.of(breaker.executeSupplier(call));
        } catch (CallNotPermittedException e) {
            skipped.increment();
            return Optional.empty();
        } catch (RuntimeException e) {
            failures.increment();
            long now = System.nanoTime();
            long last = lastWarning.get();
            if (now - last >= WARN_EVERY_NANOS && lastWarning.compareAndSet(last, now)) {
                log.warn("Redis {} failed, answered from memory (logged once per 10 s): {}", what, cause(e));
            }
            return Optional.empty();
        }
    }

    private static String cause(Throwable e) { // the class only: Lettuce's text may name hosts
        Throwable root = e;
        while (root.getCause() != null) {
            root = root.getCause();
        }
        return e.getMessage() + " (" + root.getClass().getSimpleName() + ")";
    }

    private boolean fallbackHolds() {
        return fallback.bytes() > 0;
    }

    @Override
    public Probe probe(List<String> entryKeys, List<String> indexKeys) {
        Optional<Probe> r = redis("probe", () -> redis.probe(entryKeys, indexKeys));
        if (r.isEmpty()) {
            return fallback.probe(entryKeys, indexKeys);
        }
        if (!fallbackHolds()) {
            return r.get();
        }
        Probe local = fallback.probe(entryKeys, indexKeys);
        boolean[] published = r.get().published().clone();
        for (int i = 0; i < published.length; i++) {
            published[i] |= local.published()[i];
        }
        List<Set<String>> members = new ArrayList<>(indexKeys.size());
        for (int i = 0; i < indexKeys.size(); i++) {
            Set<String> m = new HashSet<>(r.get().members().get(i));
            m.addAll(local.members().get(i));
            members.add(m);
        }
        return new Probe(published, members);
    }

    @Override
    public boolean[] publishAll(List<Write> writes) {
        return redis("write", () -> redis.publishAll(writes)).orElseGet(() -> fallback.publishAll(writes));
    }

    @Override
    public List<Optional<byte[]>> readAll(List<String> keys) {
        Optional<List<Optional<byte[]>>> r = redis("read", () -> redis.readAll(keys));
        if (r.isEmpty()) {
            return fallback.readAll(keys);
        }
        List<Optional<byte[]>> values = r.get();
        if (!fallbackHolds() || values.stream().allMatch(Optional::isPresent)) {
            return values;
        }
        List<String> missing = new ArrayList<>();
        for (int i = 0; i < keys.size(); i++) {
            if (values.get(i).isEmpty()) {
                missing.add(keys.get(i));
            }
        }
        List<Optional<byte[]>> local = fallback.readAll(missing);
        List<Optional<byte[]>> merged = new ArrayList<>(values);
        for (int i = 0, j = 0; i < keys.size(); i++) {
            if (values.get(i).isEmpty()) {
                merged.set(i, local.get(j++));
            }
        }
        return merged;
    }

    @Override
    public boolean delete(String key) {
        boolean local = fallback.delete(key);
        return redis("delete", () -> redis.delete(key)).orElse(false) || local;
    }

    /** Redis's used memory while the breaker is closed (a stats scrape must not wait on a paused Redis), plus ours. */
    @Override
    public long bytes() {
        long remote = breaker.getState() == CircuitBreaker.State.CLOSED ? redis.bytes() : -1;
        return Math.max(0, remote) + fallback.bytes();
    }

    @Override
    public String describe() {
        return redis.describe();
    }

    @Override
    public void close() {
        redis.close();
        fallback.close();
    }
}
