package dev.goldfinch.cache.testing;

import io.lettuce.core.RedisClient;
import io.lettuce.core.api.StatefulRedisConnection;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.testcontainers.DockerClientFactory;
import org.testcontainers.containers.GenericContainer;

/**
 * A real Redis for tests, one per JVM: {@code REDIS_URL} when set; else a {@code redis-server} from the
 * PATH started on a free loopback port (what {@code .ci/run} installs); else a Testcontainers Redis when
 * Docker is there; else none, and the Redis tests are skipped with a reason.
 */
public final class RedisFixture {
    private static Optional<String> url;
    private static Process server;
    private static GenericContainer<?> container;

    private RedisFixture() {}

    /** The URL of a running Redis, started on first use; empty when this machine has none. */
    public static synchronized Optional<String> url() {
        if (url == null) {
            url = start();
        }
        return url;
    }

    private static Optional<String> start() {
        String env = System.getenv("REDIS_URL");
        if (env != null && !env.isBlank()) {
            return Optional.of(env);
        }
        Optional<Path> binary = findOnPath("redis-server");
        if (binary.isPresent()) {
            try {
                int port = freePort();
                server = new ProcessBuilder(
                                binary.get().toString(),
                                "--port",
                                Integer.toString(port),
                                "--bind",
                                "127.0.0.1",
                                "--save",
                                "",
                                "--appendonly",
                                "no",
                                "--maxmemory-policy",
                                "allkeys-lru")
                        .redirectErrorStream(true)
                        .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                        .start();
                Runtime.getRuntime().addShutdownHook(new Thread(server::destroy));
                String u = "redis://127.0.0.1:" + port;
                awaitPing(u);
                return Optional.of(u);
            } catch (IOException e) {
                throw new IllegalStateException("could not start redis-server", e);
            }
        }
        if (DockerClientFactory.instance().isDockerAvailable()) {
            container = new GenericContainer<>("redis:7-alpine").withExposedPorts(6379);
            container.start();
            return Optional.of("redis://" + container.getHost() + ":" + container.getMappedPort(6379));
        }
        return Optional.empty();
    }

    /** A redis-server of a test's own on a free loopback port, with {@code args} added; empty when none is installed. */
    public static Optional<Server> startServer(String... args) {
        return startServerOn(freePort(), args);
    }

    /** As {@link #startServer}, on {@code port} (a restart in the same place). */
    public static Optional<Server> startServerOn(int port, String... args) {
        Optional<Path> binary = findOnPath("redis-server");
        if (binary.isEmpty()) {
            return Optional.empty();
        }
        List<String> command = new java.util.ArrayList<>(List.of(
                binary.get().toString(), "--port", Integer.toString(port), "--bind", "127.0.0.1", "--save", ""));
        command.addAll(List.of(args));
        try {
            Process p = new ProcessBuilder(command)
                    .redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                    .start();
            Runtime.getRuntime().addShutdownHook(new Thread(p::destroy));
            return Optional.of(new Server(port, p));
        } catch (IOException e) {
            throw new IllegalStateException("could not start redis-server", e);
        }
    }

    /** A redis-server process on {@code port} (plaintext; a TLS port comes from its arguments). */
    public record Server(int port, Process process) implements AutoCloseable {
        public String url() {
            return "redis://127.0.0.1:" + port;
        }

        /** {@code kill -9}, and waits until the process is gone. */
        public void kill() {
            process.destroyForcibly();
            try {
                process.waitFor();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }

        @Override
        public void close() {
            process.destroy();
        }
    }

    /** Waits (up to 20 s) until the Redis at {@code u} answers PING. */
    public static void awaitPing(String u) {
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        RedisClient client = RedisClient.create(u);
        try {
            while (true) {
                try (StatefulRedisConnection<String, String> c = client.connect()) {
                    if ("PONG".equals(c.sync().ping())) {
                        return;
                    }
                } catch (RuntimeException e) {
                    if (System.nanoTime() > deadline) {
                        throw new IllegalStateException("redis-server did not answer at " + u, e);
                    }
                    Thread.sleep(50);
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        } finally {
            client.shutdown();
        }
    }

    public static int freePort() {
        try (ServerSocket s = new ServerSocket(0)) {
            s.setReuseAddress(true);
            return s.getLocalPort();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    public static Optional<Path> findOnPath(String name) {
        String path = System.getenv().getOrDefault("PATH", "");
        for (String dir : List.of(path.split(java.io.File.pathSeparator))) {
            Path p = Path.of(dir, name);
            if (Files.isExecutable(p)) {
                return Optional.of(p);
            }
        }
        Path sbin = Path.of("/usr/sbin", name);
        return Files.isExecutable(sbin) ? Optional.of(sbin) : Optional.empty();
    }
}
