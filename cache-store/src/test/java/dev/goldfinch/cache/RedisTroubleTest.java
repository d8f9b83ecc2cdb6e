package dev.goldfinch.cache;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.goldfinch.cache.testing.RedisFixture;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.lettuce.core.RedisClient;
import io.lettuce.core.api.StatefulRedisConnection;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The cache store's Redis in trouble, with a real redis-server of the test's own: stopped, paused
 * ({@code CLIENT PAUSE}, {@code DEBUG SLEEP}), restarted empty, full under {@code noeviction}. Every call
 * answers (from the store's memory when Redis cannot), a timeout is paid once per breaker period, and
 * caching in Redis resumes by itself.
 */
class RedisTroubleTest {
    private static final Duration TIMEOUT = Duration.ofMillis(300);
    private static final Duration OPEN_FOR = Duration.ofSeconds(1);

    private RedisFixture.Server server;
    private SimpleMeterRegistry meters;
    private ResilientCacheBackend backend;

    @BeforeEach
    void start() {
        Optional<RedisFixture.Server> s = RedisFixture.startServer("--enable-debug-command", "yes");
        assumeTrue(s.isPresent(), "no redis-server on the PATH");
        server = s.get();
        RedisFixture.awaitPing(server.url());
        meters = new SimpleMeterRegistry();
        backend = new ResilientCacheBackend(
                RedisCacheBackend.connect(server.url(), false, 4096, 4L << 20, Duration.ofMinutes(5), TIMEOUT),
                new InMemoryCacheBackend(16 << 20, Duration.ofMinutes(5), Clock.systemUTC()),
                OPEN_FOR,
                meters);
    }

    @AfterEach
    void stop() {
        if (backend != null) {
            backend.close();
        }
        if (server != null) {
            server.kill();
        }
    }

    private static String key() {
        return "gf:{test:" + UUID.randomUUID() + "}:s";
    }

    private static byte[] value(int size) {
        byte[] v = new byte[size];
        new java.util.Random(size).nextBytes(v);
        return v;
    }

    private boolean inRedis(String key) {
        RedisClient c = RedisClient.create(server.url());
        try (StatefulRedisConnection<String, String> conn = c.connect()) {
            return conn.sync().exists(key) > 0;
        } finally {
            c.shutdown();
        }
    }

    private void redisCommand(String... command) {
        List<String> cmd = new java.util.ArrayList<>(List.of("redis-cli", "-p", Integer.toString(server.port())));
        cmd.addAll(List.of(command));
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes());
            assertEquals(0, p.waitFor(), out);
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    private double counter(String name) {
        return meters.counter(name).count();
    }

    private static void eventually(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(15).toNanos();
        while (!condition.getAsBoolean()) {
            assertTrue(System.nanoTime() < deadline, "not within 15 s: " + what);
            Thread.sleep(50);
        }
    }

    /** A call's wall time in ms; every call here must come back, so its value is always checked. */
    private static long millis(Runnable call) {
        long start = System.nanoTime();
        call.run();
        return (System.nanoTime() - start) / 1_000_000;
    }

    /** No call may wait much beyond one command timeout. */
    private static void withinOneTimeout(long ms) {
        assertTrue(ms < TIMEOUT.toMillis() * 3 + 500, "a call waited " + ms + " ms");
    }

    @Test
    void redisStoppedThenRestartedEmpty() throws Exception {
        String before = key();
        byte[] v = value(10_000); // chunked: 3 chunks of 4 KiB
        assertTrue(backend.publish(before, v, null, null));
        assertTrue(inRedis(before));

        server.kill();
        String during = key();
        withinOneTimeout(millis(() -> assertTrue(backend.publish(during, v, null, null), "kept in memory")));
        withinOneTimeout(millis(() -> assertArrayEquals(v, backend.read(during).orElseThrow())));
        withinOneTimeout(millis(() -> assertTrue(backend.read(before).isEmpty(), "Redis's entries are gone: a miss")));
        withinOneTimeout(millis(
                () -> assertTrue(backend.probe(List.of(during), List.of()).published()[0])));
        assertTrue(counter("goldfinch.cache.store.redis.failures") >= 4);
        // A refused connection costs nothing, so nothing opened the breaker.
        assertEquals(CircuitBreaker.State.CLOSED, backend.breakerState());

        server = RedisFixture.startServerOn(server.port(), "--enable-debug-command", "yes")
                .orElseThrow();
        RedisFixture.awaitPing(server.url());
        String after = key();
        eventually("Lettuce reconnects and writes reach Redis again", () -> {
            backend.publish(after, v, null, null);
            return inRedis(after);
        });
        assertArrayEquals(v, backend.read(after).orElseThrow());
        assertArrayEquals(v, backend.read(during).orElseThrow(), "what memory took is still served");
    }

    /** A paused Redis: one call waits out the timeout, the breaker opens, the rest answer at once. */
    private void pausedRedisCostsOneTimeoutPerPeriod(Runnable pause) throws Exception {
        String before = key();
        byte[] v = value(2000);
        assertTrue(backend.publish(before, v, null, null));
        pause.run();
        String during = key();
        long first = millis(() -> assertTrue(backend.publish(during, v, null, null)));
        withinOneTimeout(first);
        assertEquals(CircuitBreaker.State.OPEN, backend.breakerState());
        assertEquals(1.0, counter("goldfinch.cache.store.redis.failures"), "one timeout");
        for (int i = 0; i < 20; i++) {
            withinOneTimeout(
                    millis(() -> assertArrayEquals(v, backend.read(during).orElseThrow())));
        }
        assertEquals(1.0, counter("goldfinch.cache.store.redis.failures"), "still one timeout: the breaker is open");
        assertTrue(counter("goldfinch.cache.store.redis.skipped") >= 20);

        String after = key();
        eventually("the breaker closes and writes reach Redis again", () -> {
            backend.publish(after, v, null, null);
            return backend.breakerState() == CircuitBreaker.State.CLOSED && inRedis(after);
        });
        assertArrayEquals(v, backend.read(before).orElseThrow(), "Redis kept its entries");
        assertArrayEquals(v, backend.read(during).orElseThrow(), "memory kept what it took");
    }

    @Test
    void clientPause() throws Exception {
        pausedRedisCostsOneTimeoutPerPeriod(() -> redisCommand("CLIENT", "PAUSE", "2000", "ALL"));
    }

    @Test
    void debugSleep() throws Exception {
        CompletableFuture<Void> sleeping = new CompletableFuture<>();
        pausedRedisCostsOneTimeoutPerPeriod(() -> {
            Thread.ofVirtual().start(() -> {
                try {
                    redisCommand("DEBUG", "SLEEP", "2");
                    sleeping.complete(null);
                } catch (Throwable t) {
                    sleeping.completeExceptionally(t);
                }
            });
            try {
                Thread.sleep(100); // DEBUG SLEEP is under way
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        sleeping.join();
    }

    @Test
    void fullUnderNoeviction() throws Exception {
        redisCommand("CONFIG", "SET", "maxmemory-policy", "noeviction");
        redisCommand("CONFIG", "SET", "maxmemory", "1");
        String key = key();
        byte[] v = value(3000);
        withinOneTimeout(millis(() -> assertTrue(backend.publish(key, v, null, null), "memory took it")));
        assertTrue(!inRedis(key), "Redis refused it (OOM)");
        assertArrayEquals(v, backend.read(key).orElseThrow());
        assertTrue(counter("goldfinch.cache.store.redis.failures") >= 1);
        assertEquals(CircuitBreaker.State.CLOSED, backend.breakerState(), "an OOM answer costs no timeout");

        redisCommand("CONFIG", "SET", "maxmemory", "0");
        String after = key();
        assertTrue(backend.publish(after, v, null, null));
        assertTrue(inRedis(after), "writes reach Redis again once it has room");
    }
}
