package dev.goldfinch.cache;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.classic.spi.ThrowableProxyUtil;
import ch.qos.logback.core.read.ListAppender;
import dev.goldfinch.cache.app.CacheStoreProperties;
import dev.goldfinch.cache.testing.RedisFixture;
import dev.goldfinch.service.tls.MeshCertificates;
import dev.goldfinch.service.tls.TlsProperties;
import io.lettuce.core.AclSetuserArgs;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import io.lettuce.core.api.StatefulRedisConnection;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.slf4j.LoggerFactory;

/**
 * Redis with a password and an ACL user, and Redis over TLS, each a redis-server of this test's own. The
 * passwords are checked against everything the backend says: its description (what {@code Stats} answers),
 * its errors, and every log line, Lettuce's debug lines included.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class RedisAccessTest {
    static final long MAX_VALUE_BYTES = 4L << 20;
    static final String ADMIN_PASSWORD = "requirepass-9f2c61d0e4";
    static final String USER = "goldfinch";
    static final String USER_PASSWORD = "acl-user-pw-5b7e03a8c2";
    static final String WRONG_PASSWORD = "not-the-pw-1d9a7c";
    static final Duration TIMEOUT = Duration.ofSeconds(5);

    RedisFixture.Server server;
    final ListAppender<ILoggingEvent> logs = new ListAppender<>();
    Level rootLevel;

    @BeforeAll
    void startRedis() {
        Optional<RedisFixture.Server> s = RedisFixture.startServer("--requirepass", ADMIN_PASSWORD);
        assumeTrue(s.isPresent(), "no redis-server on the PATH");
        server = s.get();
        RedisURI admin = RedisURI.create("redis://127.0.0.1:" + server.port());
        admin.setAuthentication(ADMIN_PASSWORD);
        awaitReady(() -> {
            RedisClient client = RedisClient.create(admin);
            try (StatefulRedisConnection<String, String> c = client.connect()) {
                c.sync()
                        .aclSetuser(
                                USER,
                                AclSetuserArgs.Builder.on()
                                        .addPassword(USER_PASSWORD)
                                        .allKeys()
                                        .allCommands());
                return true;
            } finally {
                client.shutdown();
            }
        });
    }

    @AfterAll
    void stopRedis() {
        if (server != null) {
            server.close();
        }
    }

    @BeforeEach
    void captureLogs() {
        Logger root = (Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
        rootLevel = root.getLevel();
        root.setLevel(Level.DEBUG);
        logs.start();
        root.addAppender(logs);
    }

    @AfterEach
    void noPasswordWasLogged() {
        Logger root = (Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
        root.detachAppender(logs);
        root.setLevel(rootLevel);
        for (ILoggingEvent e : logs.list) {
            String line = e.getFormattedMessage()
                    + (e.getThrowableProxy() == null ? "" : ThrowableProxyUtil.asString(e.getThrowableProxy()));
            assertNoSecret(line);
        }
        logs.list.clear();
    }

    static void assertNoSecret(String text) {
        for (String secret : List.of(ADMIN_PASSWORD, USER_PASSWORD, WRONG_PASSWORD)) {
            assertFalse(text.contains(secret), "a password in: " + text);
        }
    }

    String url() {
        return "redis://127.0.0.1:" + server.port();
    }

    static void roundTrip(RedisCacheBackend backend) {
        byte[] value = "state".getBytes(StandardCharsets.UTF_8);
        String key = "gf:{access-" + System.nanoTime() + "}:s";
        assertTrue(backend.publish(key, value, null, null));
        assertArrayEquals(value, backend.read(key).orElseThrow());
    }

    @Test
    void anAclUserWithItsPasswordIsServed() {
        try (RedisCacheBackend backend = RedisCacheBackend.connect(
                url(),
                new RedisCacheBackend.Access(USER, USER_PASSWORD, null),
                false,
                4096,
                MAX_VALUE_BYTES,
                Duration.ofMinutes(5),
                TIMEOUT)) {
            roundTrip(backend);
            assertEquals("redis redis://127.0.0.1:" + server.port(), backend.describe());
        }
        assertFalse(logs.list.isEmpty(), "the capture sees the client's debug lines, so their check means something");
    }

    @Test
    void theDefaultUserWithRequirepassIsServed() {
        try (RedisCacheBackend backend = RedisCacheBackend.connect(
                url(),
                new RedisCacheBackend.Access(null, ADMIN_PASSWORD, null),
                false,
                4096,
                MAX_VALUE_BYTES,
                Duration.ofMinutes(5),
                TIMEOUT)) {
            roundTrip(backend);
        }
    }

    @Test
    void aPasswordInTheUrlWorksAndIsNeverShown() {
        String withSecret = "redis://" + USER + ":" + USER_PASSWORD + "@127.0.0.1:" + server.port();
        try (RedisCacheBackend backend =
                RedisCacheBackend.connect(withSecret, false, 4096, MAX_VALUE_BYTES, Duration.ofMinutes(5), TIMEOUT)) {
            roundTrip(backend);
            assertNoSecret(backend.describe());
            PrefixCache cache = new PrefixCache(backend, new PrefixHasher(16));
            assertNoSecret(cache.stats().toString()); // what the Stats call answers
        }
    }

    @Test
    void aWrongPasswordIsATypedErrorThatDoesNotQuoteIt() {
        for (RedisCacheBackend.Access wrong : List.of(
                new RedisCacheBackend.Access(USER, WRONG_PASSWORD, null),
                new RedisCacheBackend.Access(null, WRONG_PASSWORD, null))) {
            IllegalStateException e = assertThrows(
                    IllegalStateException.class,
                    () -> RedisCacheBackend.connect(
                            url(), wrong, false, 4096, MAX_VALUE_BYTES, Duration.ofMinutes(5), TIMEOUT));
            assertTrue(e.getMessage().contains("authentication failed"), e.getMessage());
            for (Throwable t = e; t != null; t = t.getCause()) {
                assertNoSecret(String.valueOf(t.getMessage()));
            }
        }
        for (String malformed : List.of(
                "redis://" + USER + ":" + USER_PASSWORD + "@127.0.0.1:notaport",
                "redis://" + USER + ":" + USER_PASSWORD + "@[::1",
                "http://" + USER + ":" + USER_PASSWORD + "@127.0.0.1:1")) {
            RuntimeException bad = assertThrows(
                    RuntimeException.class,
                    () -> RedisCacheBackend.connect(
                            malformed, false, 4096, MAX_VALUE_BYTES, Duration.ofMinutes(5), TIMEOUT),
                    malformed);
            for (Throwable t = bad; t != null; t = t.getCause()) {
                assertNoSecret(String.valueOf(t.getMessage()));
            }
        }
    }

    @Test
    void thePropertiesNeverPrintThePassword() {
        CacheStoreProperties p = new CacheStoreProperties(
                "redis", url(), USER, USER_PASSWORD, null, null, null, null, null, null, null, null, null, null);
        assertNoSecret(p.toString());
        assertNoSecret(p.redisAccess().toString());
        assertTrue(p.toString().contains(USER), p.toString());
    }

    /** rediss:// with the CA file; without it the handshake fails, so the CA is what makes it trusted. */
    @Test
    void redissWithTheCaFile() {
        try (MeshCertificates ca = MeshCertificates.create("test-redis-ca")) {
            TlsProperties.Mesh cert = ca.issue("redis");
            int tlsPort = RedisFixture.freePort();
            Optional<RedisFixture.Server> s = RedisFixture.startServer(
                    "--tls-port", Integer.toString(tlsPort),
                    "--tls-cert-file", cert.certificate().toString(),
                    "--tls-key-file", cert.privateKey().toString(),
                    "--tls-ca-cert-file", cert.ca().toString(),
                    "--tls-auth-clients", "no",
                    "--requirepass", ADMIN_PASSWORD);
            assumeTrue(s.isPresent(), "no redis-server on the PATH");
            try (RedisFixture.Server tls = s.get()) {
                assumeTrue(waitAlive(tls), "this redis-server is built without TLS");
                String url = "rediss://127.0.0.1:" + tlsPort;
                RedisCacheBackend.Access access = new RedisCacheBackend.Access(null, ADMIN_PASSWORD, cert.ca());
                RedisCacheBackend backend = awaitReady(() -> RedisCacheBackend.connect(
                        url, access, false, 4096, MAX_VALUE_BYTES, Duration.ofMinutes(5), TIMEOUT));
                try (backend) {
                    roundTrip(backend);
                    assertEquals("redis rediss://127.0.0.1:" + tlsPort, backend.describe());
                }
                IllegalStateException untrusted = assertThrows(
                        IllegalStateException.class,
                        () -> RedisCacheBackend.connect(
                                url,
                                new RedisCacheBackend.Access(null, ADMIN_PASSWORD, null),
                                false,
                                4096,
                                MAX_VALUE_BYTES,
                                Duration.ofMinutes(5),
                                TIMEOUT));
                assertTrue(untrusted.getMessage().contains("TLS handshake failed"), untrusted.getMessage());
                assertNoSecret(untrusted.getMessage());
            }
        }
    }

    private static boolean waitAlive(RedisFixture.Server s) {
        try {
            Thread.sleep(200);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return s.process().isAlive();
    }

    /** Retries while redis-server is still starting. */
    private static <T> T awaitReady(Supplier<T> attempt) {
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (true) {
            try {
                return attempt.get();
            } catch (RuntimeException e) {
                if (System.nanoTime() > deadline) {
                    throw e;
                }
                try {
                    Thread.sleep(50);
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw e;
                }
            }
        }
    }
}
