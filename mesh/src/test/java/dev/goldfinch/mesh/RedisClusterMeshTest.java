package dev.goldfinch.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.goldfinch.cache.testing.RedisFixture;
import io.lettuce.core.RedisClient;
import io.lettuce.core.api.StatefulRedisConnection;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The mesh on a real 3-master Redis Cluster started here ({@code redis-server --cluster-enabled yes} ×3 and
 * {@code redis-cli --cluster create}); one master is killed, and requests keep succeeding (its slot range is
 * recomputed) while caching goes on in the other two.
 */
@Tag("faults")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class RedisClusterMeshTest {
    final List<RedisFixture.Server> masters = new ArrayList<>();
    MeshLauncher mesh;
    MeshClient client;
    int seed;

    /** A free port whose cluster bus port (+10000) is free too. */
    static int clusterPort() throws Exception {
        Random r = new Random();
        for (int i = 0; i < 200; i++) {
            int p = 20000 + r.nextInt(20000);
            try (ServerSocket a = new ServerSocket(p);
                    ServerSocket b = new ServerSocket(p + 10000)) {
                return p;
            } catch (java.io.IOException taken) {
                // try another
            }
        }
        throw new IllegalStateException("no free port pair");
    }

    static String cli(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("redis-cli"));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertEquals(0, p.waitFor(), out);
        return out;
    }

    @BeforeAll
    void start() throws Exception {
        assumeTrue(RedisFixture.findOnPath("redis-server").isPresent(), "no redis-server on the PATH");
        Path dir = Files.createTempDirectory("gf-cluster");
        List<String> nodes = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            int port = clusterPort();
            RedisFixture.Server s = RedisFixture.startServerOn(
                            port,
                            "--cluster-enabled",
                            "yes",
                            "--cluster-config-file",
                            dir.resolve("nodes-" + port + ".conf").toString(),
                            "--cluster-node-timeout",
                            "1000",
                            // The other masters keep serving their slots while one is down.
                            "--cluster-require-full-coverage",
                            "no",
                            "--dir",
                            dir.toString())
                    .orElseThrow();
            masters.add(s);
            RedisFixture.awaitPing(s.url());
            nodes.add("127.0.0.1:" + port);
        }
        List<String> create = new ArrayList<>(List.of("--cluster", "create"));
        create.addAll(nodes);
        create.addAll(List.of("--cluster-replicas", "0", "--cluster-yes"));
        cli(create.toArray(String[]::new));
        for (RedisFixture.Server s : masters) {
            long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
            while (!cli("-p", Integer.toString(s.port()), "CLUSTER", "INFO").contains("cluster_state:ok")) {
                assertTrue(System.nanoTime() < deadline, "cluster did not form");
                Thread.sleep(100);
            }
        }
        mesh = MeshLauncher.start(new MeshLauncher.Options(
                null,
                MeshEndToEndTest.SHAPE,
                7,
                "f32",
                null,
                String.join(",", masters.stream().map(RedisFixture.Server::url).toList()),
                1,
                0,
                0,
                MeshEndToEndTest.MAX_PROMPT,
                MeshEndToEndTest.CAP,
                null,
                Map.of(
                        "logging.level.root", "WARN",
                        "goldfinch.cache.redis-cluster", "true",
                        "goldfinch.cache.redis-timeout", "300ms",
                        "goldfinch.cache.redis-breaker-open", "1s")));
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
        masters.forEach(RedisFixture.Server::kill);
    }

    List<Integer> prompt() {
        List<Integer> p = new ArrayList<>();
        new Random(100 + ++seed).ints(300, 1, 65000).forEach(p::add);
        return p;
    }

    MeshClient.Generation ask(List<Integer> prompt, String salt) throws Exception {
        return client.complete(
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
    }

    long keys(RedisFixture.Server s) {
        RedisClient c = RedisClient.create(s.url());
        try (StatefulRedisConnection<String, String> conn = c.connect()) {
            return conn.sync().dbsize();
        } finally {
            c.shutdown();
        }
    }

    @Test
    void oneMasterDiesRequestsSucceedAndCachingGoesOnInTheOthers() throws Exception {
        List<Integer> warm = prompt();
        String warmSalt = MeshEndToEndTest.salt();
        List<Integer> expected = ask(warm, MeshEndToEndTest.salt()).tokens();
        ask(warm, warmSalt);
        assertTrue(ask(warm, warmSalt).cachedTokens() > 0, "cached in the cluster");
        for (RedisFixture.Server s : masters) {
            assertTrue(keys(s) > 0, "entries spread over every master");
        }

        RedisFixture.Server dead = masters.get(2);
        dead.kill();
        List<RedisFixture.Server> alive = masters.subList(0, 2);
        long before = alive.stream().mapToLong(this::keys).sum();
        assertEquals(expected, ask(warm, warmSalt).tokens(), "what the dead master held is recomputed");
        int restored = 0;
        for (int i = 0; i < 6; i++) {
            List<Integer> p = prompt();
            String salt = MeshEndToEndTest.salt();
            MeshClient.Generation first = ask(p, salt);
            assertEquals(ask(p, MeshEndToEndTest.salt() + "-cold").tokens(), first.tokens());
            MeshClient.Generation again = ask(p, salt);
            assertEquals(first.tokens(), again.tokens());
            restored += again.cachedTokens() > 0 ? 1 : 0;
        }
        long after = alive.stream().mapToLong(this::keys).sum();
        System.out.printf(
                "RELIABILITY redis cluster, one of 3 masters dead: %d keys written to the other two by 6 prompts;"
                        + " %d of 6 second requests restored from cache%n",
                after - before, restored);
        assertTrue(after > before, "caching goes on in the live masters: " + before + " -> " + after + " keys");
        assertTrue(restored > 0, "second requests restore again");
    }
}
