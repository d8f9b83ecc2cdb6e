package dev.goldfinch.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.goldfinch.cache.testing.RedisFixture;
import io.lettuce.core.RedisClient;
import io.lettuce.core.api.StatefulRedisConnection;
import io.micrometer.core.instrument.MeterRegistry;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The mesh over a Redis of the test's own that gets into trouble: killed and restarted empty, paused with
 * {@code CLIENT PAUSE} and {@code DEBUG SLEEP}, full under {@code noeviction}. Every request succeeds with
 * the tokens of a healthy run, Redis timeouts are paid once per breaker period, and caching in Redis resumes
 * by itself. Short timeouts keep each scenario to seconds.
 */
@Tag("faults")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class RedisTroubleMeshTest {
    static final Duration REDIS_TIMEOUT = Duration.ofMillis(300);
    static final Duration BREAKER_OPEN = Duration.ofSeconds(1);

    RedisFixture.Server redis;
    MeshLauncher mesh;
    MeshClient client;
    int seed;

    @BeforeAll
    void start() {
        Optional<RedisFixture.Server> s = RedisFixture.startServer("--enable-debug-command", "yes");
        assumeTrue(s.isPresent(), "no redis-server on the PATH");
        redis = s.get();
        RedisFixture.awaitPing(redis.url());
        mesh = MeshLauncher.start(new MeshLauncher.Options(
                null,
                MeshEndToEndTest.SHAPE,
                7,
                "f32",
                null,
                redis.url(),
                1,
                0,
                0,
                MeshEndToEndTest.MAX_PROMPT,
                MeshEndToEndTest.CAP,
                null,
                Map.of(
                        "logging.level.root", "WARN",
                        "goldfinch.cache.redis-timeout", REDIS_TIMEOUT.toMillis() + "ms",
                        "goldfinch.cache.redis-breaker-open", BREAKER_OPEN.toMillis() + "ms")));
        client = new MeshClient(mesh.httpPort("gateway"), mesh.grpcPort("gateway"));
    }

    @AfterAll
    void stop() {
        if (client != null) {
            client.close();
        }
        if (mesh != null) {
            mesh.close();
        }
        if (redis != null) {
            redis.kill();
        }
    }

    record Answer(MeshClient.Generation generation, long millis) {}

    List<Integer> prompt() {
        List<Integer> p = new ArrayList<>();
        new Random(++seed).ints(300, 1, 65000).forEach(p::add);
        return p;
    }

    Answer ask(List<Integer> prompt, String salt) throws Exception {
        long start = System.nanoTime();
        MeshClient.Generation g = client.complete(
                "/v1/completions",
                MeshEndToEndTest.body(
                        "prompt",
                        prompt,
                        "max_tokens",
                        8,
                        "temperature",
                        0,
                        "return_token_ids",
                        true,
                        "cache_salt",
                        salt));
        return new Answer(g, (System.nanoTime() - start) / 1_000_000);
    }

    /** The tokens of a run that restored nothing. */
    List<Integer> cold(List<Integer> prompt) throws Exception {
        Answer a = ask(prompt, MeshEndToEndTest.salt());
        assertEquals(0, a.generation().cachedTokens());
        return a.generation().tokens();
    }

    long redisKeys() {
        RedisClient c = RedisClient.create(redis.url());
        try (StatefulRedisConnection<String, String> conn = c.connect()) {
            return conn.sync().dbsize();
        } finally {
            c.shutdown();
        }
    }

    void redisCli(String... command) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("redis-cli", "-p", Integer.toString(redis.port())));
        cmd.addAll(List.of(command));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertEquals(0, p.waitFor(), out);
    }

    double storeCounter(String name) {
        return mesh.bean("cache-store", MeterRegistry.class).counter(name).count();
    }

    /** After the trouble: a new prompt's entries reach Redis, and its second request restores from them. */
    void cachingResumes() throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (true) {
            List<Integer> p = prompt();
            String salt = MeshEndToEndTest.salt();
            long keysBefore = redisKeys();
            ask(p, salt);
            Answer again = ask(p, salt);
            if (redisKeys() > keysBefore && again.generation().cachedTokens() > 0) {
                return;
            }
            assertTrue(System.nanoTime() < deadline, "caching in Redis did not resume within 20 s");
            Thread.sleep(200);
        }
    }

    @Test
    void killedThenRestartedEmpty() throws Exception {
        List<Integer> warm = prompt();
        String warmSalt = MeshEndToEndTest.salt();
        List<Integer> expected = cold(warm);
        ask(warm, warmSalt);
        assertTrue(ask(warm, warmSalt).generation().cachedTokens() > 0, "cached while Redis is up");
        long upMillis = 0;
        long downMillis = 0;
        int n = 5;
        for (int i = 0; i < 3; i++) { // warm-up
            ask(prompt(), MeshEndToEndTest.salt());
        }
        for (int i = 0; i < n; i++) {
            upMillis += ask(prompt(), MeshEndToEndTest.salt()).millis();
        }

        redis.kill();
        Answer cachedBefore = ask(warm, warmSalt);
        assertEquals(expected, cachedBefore.generation().tokens(), "recomputed, the same tokens");
        for (int i = 0; i < n; i++) {
            List<Integer> p = prompt();
            Answer a = ask(p, MeshEndToEndTest.salt());
            downMillis += a.millis();
            assertEquals(cold(p), a.generation().tokens());
        }
        System.out.printf(
                "RELIABILITY redis killed: %d ms per 300-token request with Redis up, %d ms with it down%n",
                upMillis / n, downMillis / n);

        redis = RedisFixture.startServerOn(redis.port(), "--enable-debug-command", "yes")
                .orElseThrow();
        RedisFixture.awaitPing(redis.url());
        assertEquals(0, redisKeys(), "restarted empty");
        assertEquals(expected, ask(warm, warmSalt).generation().tokens());
        cachingResumes();
    }

    /** A paused Redis costs one timeout per breaker period, not one per request or per block. */
    void pausedRedis(Runnable pause, long pauseMillis) throws Exception {
        List<Integer> p = prompt();
        List<Integer> expected = cold(p);
        double failuresBefore = storeCounter("goldfinch.cache.store.redis.failures");
        pause.run();
        long start = System.nanoTime();
        int requests = 0;
        long slowest = 0;
        do {
            Answer a = ask(p, MeshEndToEndTest.salt());
            assertEquals(expected, a.generation().tokens());
            slowest = Math.max(slowest, a.millis());
            requests++;
        } while ((System.nanoTime() - start) / 1_000_000 < pauseMillis);
        long elapsed = (System.nanoTime() - start) / 1_000_000;
        double timeouts = storeCounter("goldfinch.cache.store.redis.failures") - failuresBefore;
        // At most one timed-out call opens the breaker per period (plus the one that finds it half-open).
        long periods = elapsed / BREAKER_OPEN.toMillis() + 1;
        System.out.printf(
                "RELIABILITY redis paused %d ms: %d requests in %d ms, %.0f Redis timeouts, slowest request %d ms%n",
                pauseMillis, requests, elapsed, timeouts, slowest);
        assertTrue(timeouts >= 1, "the pause was seen");
        assertTrue(timeouts <= periods, timeouts + " timeouts in " + periods + " breaker periods");
        cachingResumes();
    }

    @Test
    void clientPause() throws Exception {
        pausedRedis(
                () -> {
                    try {
                        redisCli("CLIENT", "PAUSE", "5000", "ALL");
                    } catch (Exception e) {
                        throw new AssertionError(e);
                    }
                },
                5000);
    }

    @Test
    void debugSleep() throws Exception {
        CompletableFuture<Void> slept = new CompletableFuture<>();
        pausedRedis(
                () -> {
                    Thread.ofVirtual().start(() -> {
                        try {
                            redisCli("DEBUG", "SLEEP", "5");
                            slept.complete(null);
                        } catch (Throwable t) {
                            slept.completeExceptionally(t);
                        }
                    });
                    try {
                        Thread.sleep(100);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                },
                4900);
        slept.join();
    }

    @Test
    void fullUnderNoeviction() throws Exception {
        redisCli("CONFIG", "SET", "maxmemory-policy", "noeviction");
        redisCli("CONFIG", "SET", "maxmemory", "1");
        try {
            for (int i = 0; i < 3; i++) {
                List<Integer> p = prompt();
                String salt = MeshEndToEndTest.salt();
                Answer first = ask(p, salt);
                assertEquals(cold(p), first.generation().tokens());
                // The hand-off and the checkpoints went to the store's memory: the next turn still restores.
                assertTrue(ask(p, salt).generation().cachedTokens() > 0);
            }
        } finally {
            redisCli("CONFIG", "SET", "maxmemory", "0");
        }
        cachingResumes();
    }
}
