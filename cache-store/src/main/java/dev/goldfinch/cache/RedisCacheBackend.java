package dev.goldfinch.cache;

import dev.goldfinch.error.FailureKind;
import dev.goldfinch.error.TypedFailure;
import io.lettuce.core.ClientOptions;
import io.lettuce.core.KeyValue;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisCommandTimeoutException;
import io.lettuce.core.RedisFuture;
import io.lettuce.core.RedisURI;
import io.lettuce.core.SetArgs;
import io.lettuce.core.SocketOptions;
import io.lettuce.core.SslOptions;
import io.lettuce.core.TimeoutOptions;
import io.lettuce.core.api.StatefulConnection;
import io.lettuce.core.cluster.ClusterClientOptions;
import io.lettuce.core.cluster.ClusterTopologyRefreshOptions;
import io.lettuce.core.cluster.RedisClusterClient;
import io.lettuce.core.cluster.api.async.RedisClusterAsyncCommands;
import io.lettuce.core.codec.ByteArrayCodec;
import io.lettuce.core.codec.RedisCodec;
import io.lettuce.core.codec.StringCodec;
import io.lettuce.core.resource.ClientResources;
import io.lettuce.core.resource.Delay;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.CRC32C;
import javax.net.ssl.SSLException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The Redis backend (Lettuce, standalone or Cluster with the same code).
 *
 * <p>A value lives under its key as a 32-byte header — magic "GFCH", version, flags, writer nonce, size,
 * chunk count, CRC32C — followed by the value itself when it fits one chunk; larger values go to
 * {@code key:nonce:i} chunks. A writer sends every chunk first and the header last with {@code SET NX EX},
 * so a reader never finds a header whose chunks were not all sent; the nonce keeps two racing writers'
 * chunks apart. A reader checks sizes and the CRC and treats any missing or corrupt piece as a miss (and
 * deletes the header so the entry can be written again). Every key of one entry shares the entry's hash
 * tag, so Cluster keeps them in one slot. Expiry: a TTL on every key, refreshed on a hit; deploy Redis with
 * {@code maxmemory-policy allkeys-lru}.
 *
 * <p>Trouble is bounded by Lettuce's own options: every command times out after {@code timeout}
 * ({@link TimeoutOptions}); while the connection is down commands are rejected at once rather than queued
 * ({@link ClientOptions.DisconnectedBehavior#REJECT_COMMANDS}), and Lettuce reconnects by itself within a
 * second of Redis coming back. A call that fails throws a {@link TypedFailure} of kind UNAVAILABLE
 * ({@link ResilientCacheBackend} turns that into misses and a circuit breaker). On a Cluster one dead master
 * must not cost the others' keys: reads and probes go key by key, and a key whose node failed is a miss; the
 * call fails only when every key failed or any timed out.
 */
public final class RedisCacheBackend implements CacheBackend {
    private static final Logger log = LoggerFactory.getLogger(RedisCacheBackend.class);
    private static final int MAGIC = 0x48434647; // "GFCH" little-endian
    private static final int HEADER = 32;
    private static final byte INLINE = 1;
    private static final Pattern USED_MEMORY = Pattern.compile("used_memory:(\\d+)");

    private final AutoCloseable client;
    private final StatefulConnection<String, byte[]> connection;
    private final RedisClusterAsyncCommands<String, byte[]> redis;
    private final String description;
    private final int chunkBytes;
    private final long maxValueBytes;
    private final long ttlSeconds;
    private final Duration timeout;
    private final boolean cluster;

    private RedisCacheBackend(
            AutoCloseable client,
            boolean cluster,
            StatefulConnection<String, byte[]> connection,
            RedisClusterAsyncCommands<String, byte[]> redis,
            String description,
            int chunkBytes,
            long maxValueBytes,
            Duration ttl,
            Duration timeout) {
        this.client = client;
        this.cluster = cluster;
        this.connection = connection;
        this.redis = redis;
        this.description = description;
        this.chunkBytes = chunkBytes;
        this.maxValueBytes = maxValueBytes;
        this.ttlSeconds = Math.max(1, ttl.toSeconds());
        this.timeout = timeout;
    }

    /**
     * How to log in to Redis, beyond what its URL says. TLS is the URL's {@code rediss://} scheme.
     *
     * @param username an ACL user; null: {@code default} (or the URL's)
     * @param password the user's password ({@code requirepass} for {@code default}); null: the URL's, if any
     * @param ca       PEM file of the CA that issued Redis's TLS certificate; null: the JVM's trust store
     */
    public record Access(String username, String password, Path ca) {
        public static final Access NONE = new Access(null, null, null);

        @Override
        public String toString() { // never the password
            return "Access[username=" + username + ", password=" + (password == null ? "none" : "******") + ", ca=" + ca
                    + "]";
        }
    }

    /**
     * Connects to {@code urls}: one {@code redis://host:port} URL for a standalone server, or with
     * {@code cluster} true, one or more seed nodes of a Redis Cluster (comma-separated). A stored header
     * announcing more than {@code maxValueBytes} is a miss.
     */
    public static RedisCacheBackend connect(
            String urls, boolean cluster, int chunkBytes, long maxValueBytes, Duration ttl, Duration timeout) {
        return connect(urls, Access.NONE, cluster, chunkBytes, maxValueBytes, ttl, timeout);
    }

    /**
     * As {@link #connect(String, boolean, int, long, Duration, Duration)}, logging in with {@code access}. No
     * password, whether from {@code access} or a URL's user info, reaches a log line, an error or
     * {@link #describe()}.
     */
    public static RedisCacheBackend connect(
            String urls,
            Access access,
            boolean cluster,
            int chunkBytes,
            long maxValueBytes,
            Duration ttl,
            Duration timeout) {
        if (chunkBytes < 1024) {
            throw new IllegalArgumentException("chunk size must be at least 1 KiB, got " + chunkBytes);
        }
        RedisCodec<String, byte[]> codec = RedisCodec.of(StringCodec.UTF8, ByteArrayCodec.INSTANCE);
        List<RedisURI> uris = Arrays.stream(urls.split(","))
                .map(String::trim)
                .filter(s -> !s.isEmpty())
                .map(u -> uri(u, access, timeout))
                .toList();
        if (uris.isEmpty()) {
            throw new IllegalArgumentException("no Redis URL given");
        }
        String where =
                String.join(",", uris.stream().map(RedisCacheBackend::redacted).toList());
        SslOptions ssl = access.ca() == null
                ? SslOptions.create()
                : SslOptions.builder()
                        .jdkSslProvider()
                        .trustManager(access.ca().toFile())
                        .build();
        // Reconnect soon after Redis returns (Lettuce's default backs off to 30 s).
        ClientResources resources = ClientResources.builder()
                .reconnectDelay(
                        Delay.exponential(Duration.ofMillis(10), Duration.ofSeconds(1), 2, TimeUnit.MILLISECONDS))
                .build();
        Runnable release = () -> resources.shutdown(0, 2, TimeUnit.SECONDS);
        SocketOptions socket = SocketOptions.builder().connectTimeout(timeout).build();
        TimeoutOptions timeouts = TimeoutOptions.enabled(timeout);
        if (cluster) {
            RedisClusterClient client = RedisClusterClient.create(resources, uris);
            client.setOptions(ClusterClientOptions.builder()
                    .sslOptions(ssl)
                    .socketOptions(socket)
                    .timeoutOptions(timeouts)
                    .autoReconnect(true)
                    .disconnectedBehavior(ClientOptions.DisconnectedBehavior.REJECT_COMMANDS)
                    .topologyRefreshOptions(ClusterTopologyRefreshOptions.builder()
                            .enableAllAdaptiveRefreshTriggers()
                            .enablePeriodicRefresh(Duration.ofSeconds(30))
                            .build())
                    .build());
            Runnable shutdown = () -> {
                client.shutdown();
                release.run();
            };
            var connection = connectOrExplain(() -> client.connect(codec), where, shutdown);
            return new RedisCacheBackend(
                    shutdown::run,
                    true,
                    connection,
                    connection.async(),
                    "redis-cluster " + where,
                    chunkBytes,
                    maxValueBytes,
                    ttl,
                    timeout);
        }
        if (uris.size() > 1) {
            throw new IllegalArgumentException("several Redis URLs need cluster mode: " + where);
        }
        RedisClient client = RedisClient.create(resources, uris.getFirst());
        client.setOptions(ClientOptions.builder()
                .sslOptions(ssl)
                .socketOptions(socket)
                .timeoutOptions(timeouts)
                .autoReconnect(true)
                .disconnectedBehavior(ClientOptions.DisconnectedBehavior.REJECT_COMMANDS)
                .build());
        Runnable shutdown = () -> {
            client.shutdown();
            release.run();
        };
        var connection = connectOrExplain(() -> client.connect(codec), where, shutdown);
        return new RedisCacheBackend(
                shutdown::run,
                false,
                connection,
                connection.async(),
                "redis " + where,
                chunkBytes,
                maxValueBytes,
                ttl,
                timeout);
    }

    private static RedisURI uri(String url, Access access, Duration timeout) {
        RedisURI uri;
        try {
            uri = RedisURI.create(url);
        } catch (RuntimeException e) { // its message may quote the URL, password and all
            throw new IllegalArgumentException("not a Redis URL (redis://host:port or rediss://host:port)");
        }
        uri.setTimeout(timeout);
        if (access.password() != null) {
            if (access.username() != null) {
                uri.setAuthentication(access.username(), access.password());
            } else {
                uri.setAuthentication(access.password());
            }
        }
        return uri;
    }

    /** Scheme, host and port: what a log line, an error or {@code Stats} may say about where Redis is. */
    private static String redacted(RedisURI uri) {
        return (uri.isSsl() ? "rediss://" : "redis://") + uri.getHost() + ":" + uri.getPort();
    }

    /**
     * Lettuce's connect errors name host and port only, but a server's reply (e.g. WRONGPASS) comes in its
     * cause chain; this says what failed without carrying anything the caller sent.
     */
    private static <T> T connectOrExplain(Supplier<T> connect, String where, Runnable shutdown) {
        try {
            return connect.get();
        } catch (RuntimeException e) {
            shutdown.run();
            throw new IllegalStateException("cannot connect to " + where + ": " + reason(e));
        }
    }

    private static String reason(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            String m = String.valueOf(t.getMessage());
            if (m.contains("WRONGPASS") || m.contains("NOAUTH") || m.contains("invalid password")) {
                return "authentication failed (check goldfinch.cache.redis-username and redis-password)";
            }
            if (t instanceof SSLException) {
                return "TLS handshake failed (check goldfinch.cache.redis-ca): "
                        + t.getClass().getSimpleName();
            }
        }
        return e.getClass().getSimpleName();
    }

    @Override
    public Probe probe(List<String> entryKeys, List<String> indexKeys) {
        List<RedisFuture<Long>> exists = new ArrayList<>(entryKeys.size());
        for (String k : entryKeys) {
            exists.add(redis.exists(k));
        }
        List<RedisFuture<Set<byte[]>>> members = new ArrayList<>(indexKeys.size());
        for (String k : indexKeys) {
            members.add(redis.smembers(k));
        }
        boolean[] published = new boolean[entryKeys.size()];
        List<Set<String>> sets = new ArrayList<>(indexKeys.size());
        Replies replies = new Replies();
        for (int i = 0; i < published.length; i++) {
            published[i] = replies.get(exists.get(i), 0L) > 0;
        }
        for (RedisFuture<Set<byte[]>> f : members) {
            Set<String> m = new HashSet<>();
            for (byte[] b : replies.get(f, Set.<byte[]>of())) {
                m.add(new String(b, StandardCharsets.UTF_8));
            }
            sets.add(m);
        }
        replies.check("probe");
        return new Probe(published, sets);
    }

    /**
     * The replies of one call's commands. Standalone, the first failure fails the call. On a Cluster a key
     * whose node failed is answered as missing, so one dead master costs only its slots; the call still
     * fails when nothing answered or a command timed out (a timeout is what the circuit breaker counts).
     */
    private final class Replies {
        private int answered;
        private TypedFailure failure;
        private boolean timedOut;

        <T> T get(RedisFuture<T> future, T ifFailed) {
            try {
                T value = await(future);
                answered++;
                return value;
            } catch (TypedFailure e) {
                if (!cluster) {
                    throw e;
                }
                failure = e;
                timedOut |= costsATimeout(e);
                return ifFailed;
            }
        }

        void check(String what) {
            if (failure != null && (answered == 0 || timedOut)) {
                throw failure;
            }
            if (failure != null) {
                log.debug("Redis {}: some keys' nodes failed, answered as misses: {}", what, failure.getCause());
            }
        }
    }

    /** Whether a failure waited out a timeout (rather than being refused at once): what the breaker counts. */
    public static boolean costsATimeout(Throwable failure) {
        for (Throwable t = failure; t != null; t = t.getCause()) {
            if (t instanceof RedisCommandTimeoutException || t instanceof TimeoutException) {
                return true;
            }
        }
        return false;
    }

    /** A value on its way out: its header (with the value inline when it fits one chunk) and its chunks. */
    private record Outgoing(Write write, byte[] header, long nonce, int chunks) {}

    private Outgoing outgoing(Write w) {
        byte[] value = w.value();
        CRC32C crc = new CRC32C();
        crc.update(value);
        long nonce = ThreadLocalRandom.current().nextLong();
        boolean inline = value.length <= chunkBytes;
        int chunks = inline ? 0 : (value.length + chunkBytes - 1) / chunkBytes;
        ByteBuffer header =
                ByteBuffer.allocate(HEADER + (inline ? value.length : 0)).order(ByteOrder.LITTLE_ENDIAN);
        header.putInt(MAGIC)
                .put((byte) 1)
                .put(inline ? INLINE : 0)
                .putShort((short) 0)
                .putLong(nonce)
                .putLong(value.length)
                .putInt(chunks)
                .putInt((int) crc.getValue());
        if (inline) {
            header.put(value);
        }
        return new Outgoing(w, header.array(), nonce, chunks);
    }

    /**
     * Pipelined: one round of EXISTS (never resend what is there), one of every chunk, then the headers with
     * {@code SET NX EX} — all but the last together, then the last, so the batch's last entry (the checkpoint
     * after its key blocks) appears only after the others, on a Cluster too.
     */
    @Override
    public boolean[] publishAll(List<Write> writes) {
        boolean[] written = new boolean[writes.size()];
        try {
            // Any failure fails the call, on a Cluster too: the caller must know what was not written.
            List<RedisFuture<Long>> exists = new ArrayList<>(writes.size());
            for (Write w : writes) {
                exists.add(redis.exists(w.key()));
            }
            List<Integer> fresh = new ArrayList<>(writes.size());
            for (int i = 0; i < writes.size(); i++) {
                if (await(exists.get(i)) == 0) {
                    fresh.add(i);
                }
            }
            SetArgs ttl = SetArgs.Builder.ex(ttlSeconds);
            Outgoing[] out = new Outgoing[writes.size()];
            List<RedisFuture<String>> sent = new ArrayList<>();
            for (int i : fresh) {
                Outgoing o = outgoing(writes.get(i));
                out[i] = o;
                byte[] value = o.write().value();
                for (int c = 0; c < o.chunks(); c++) {
                    int from = c * chunkBytes;
                    sent.add(redis.set(
                            chunkKey(o.write().key(), o.nonce(), c),
                            Arrays.copyOfRange(value, from, Math.min(value.length, from + chunkBytes)),
                            ttl));
                }
            }
            for (RedisFuture<String> f : sent) {
                await(f);
            }
            // Headers last: only now can a reader find an entry.
            SetArgs once = SetArgs.Builder.nx().ex(ttlSeconds);
            List<RedisFuture<String>> headers = new ArrayList<>(fresh.size());
            for (int n = 0; n < fresh.size(); n++) {
                if (n == fresh.size() - 1) {
                    for (RedisFuture<String> f : headers) {
                        await(f);
                    }
                }
                Outgoing o = out[fresh.get(n)];
                headers.add(redis.set(o.write().key(), o.header(), once));
            }
            for (int n = 0; n < fresh.size(); n++) {
                int i = fresh.get(n);
                Outgoing o = out[i];
                written[i] = "OK".equals(await(headers.get(n)));
                if (!written[i] && o.chunks() > 0) {
                    redis.del(
                            chunkKeys(o.write().key(), o.nonce(), o.chunks())); // a racing writer won; ours are orphans
                }
                if (written[i] && o.write().indexKey() != null) {
                    redis.sadd(o.write().indexKey(), o.write().indexMember().getBytes(StandardCharsets.UTF_8));
                    redis.expire(o.write().indexKey(), ttlSeconds);
                }
            }
        } catch (TypedFailure e) {
            throw e;
        } catch (RuntimeException e) { // refused before a future existed
            throw unavailable(e);
        }
        return written;
    }

    /**
     * Two pipelined round trips for any number of keys: one MGET of the headers (inline values come with
     * them), one MGET of every chunk the headers name. Lettuce splits each MGET by slot on a Cluster.
     */
    @Override
    public List<Optional<byte[]>> readAll(List<String> keys) {
        List<Optional<byte[]>> values = new ArrayList<>(Collections.nCopies(keys.size(), Optional.empty()));
        if (keys.isEmpty()) {
            return values;
        }
        Replies replies = new Replies();
        try {
            List<KeyValue<String, byte[]>> headers = fetch(keys, replies);
            long[] sizes = new long[keys.size()];
            int[] crcs = new int[keys.size()];
            List<String> chunkKeys = new ArrayList<>();
            int[] firstChunk = new int[keys.size() + 1];
            byte[][] inline = new byte[keys.size()][];
            for (int i = 0; i < keys.size(); i++) {
                firstChunk[i] = chunkKeys.size();
                KeyValue<String, byte[]> kv = headers.get(i);
                if (!kv.hasValue()) {
                    sizes[i] = -1;
                    continue;
                }
                String key = keys.get(i);
                sizes[i] = -1;
                Header h;
                try {
                    h = Header.parse(kv.getValue(), chunkBytes, maxValueBytes);
                } catch (TypedFailure unusable) {
                    discard(key, unusable.getMessage());
                    continue;
                }
                long size = h.size();
                crcs[i] = h.crc();
                if (h.inline()) {
                    inline[i] = Arrays.copyOfRange(kv.getValue(), HEADER, kv.getValue().length);
                } else {
                    chunkKeys.addAll(Arrays.asList(chunkKeys(key, h.nonce(), h.chunks())));
                }
                sizes[i] = size;
            }
            firstChunk[keys.size()] = chunkKeys.size();
            List<KeyValue<String, byte[]>> parts = chunkKeys.isEmpty() ? List.of() : fetch(chunkKeys, replies);
            for (int i = 0; i < keys.size(); i++) {
                if (sizes[i] < 0) {
                    continue;
                }
                byte[] value = inline[i] != null
                        ? inline[i]
                        : join(keys.get(i), parts.subList(firstChunk[i], firstChunk[i + 1]), sizes[i]);
                if (value == null) {
                    continue;
                }
                CRC32C check = new CRC32C();
                check.update(value);
                if ((int) check.getValue() != crcs[i]) {
                    discard(keys.get(i), "checksum mismatch");
                    continue;
                }
                values.set(i, Optional.of(value));
                redis.expire(keys.get(i), ttlSeconds); // a hit keeps the entry, chunks included, alive
                for (String k : chunkKeys.subList(firstChunk[i], firstChunk[i + 1])) {
                    redis.expire(k, ttlSeconds);
                }
            }
        } catch (TypedFailure e) {
            throw e;
        } catch (RuntimeException e) {
            throw unavailable(e);
        }
        replies.check("read");
        return values;
    }

    /** The values of {@code keys}: one MGET standalone; on a Cluster one GET each, so a dead node loses only its keys. */
    private List<KeyValue<String, byte[]>> fetch(List<String> keys, Replies replies) {
        if (!cluster) {
            return replies.get(redis.mget(keys.toArray(String[]::new)), null);
        }
        List<RedisFuture<byte[]>> gets = new ArrayList<>(keys.size());
        for (String k : keys) {
            gets.add(redis.get(k));
        }
        List<KeyValue<String, byte[]>> values = new ArrayList<>(keys.size());
        for (int i = 0; i < keys.size(); i++) {
            byte[] v = replies.get(gets.get(i), null);
            values.add(v == null ? KeyValue.empty(keys.get(i)) : KeyValue.just(keys.get(i), v));
        }
        return values;
    }

    /**
     * A stored header, every count checked against the value-size limit before anything is read or reserved
     * for it: a chunked value names exactly the chunks its size needs at this store's chunk size, so a forged
     * count cannot make a reader build two billion chunk keys.
     */
    record Header(long nonce, long size, int chunks, int crc, boolean inline) {
        static Header parse(byte[] raw, int chunkBytes, long maxValueBytes) {
            if (raw.length < HEADER) {
                throw unusable("header of " + raw.length + " bytes");
            }
            ByteBuffer h = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
            if (h.getInt(0) != MAGIC || h.get(4) != 1) {
                throw unusable("bad magic or version");
            }
            boolean inline = h.get(5) == INLINE;
            long size = h.getLong(16);
            int chunks = h.getInt(24);
            long limit = Math.min(maxValueBytes, Integer.MAX_VALUE - 16);
            if (size < 0 || size > limit) {
                throw unusable("size " + size + " outside [0, " + limit + "]");
            }
            if (inline
                    ? size != raw.length - HEADER || chunks != 0
                    : raw.length != HEADER || size <= chunkBytes || chunks != (size + chunkBytes - 1) / chunkBytes) {
                throw unusable("size " + size + " does not match " + chunks + " chunks of " + chunkBytes + " bytes");
            }
            return new Header(h.getLong(8), size, chunks, h.getInt(28), inline);
        }

        private static TypedFailure unusable(String why) {
            return new TypedFailure(FailureKind.NOT_FOUND, "unusable cache entry header: " + why);
        }
    }

    /** An entry's chunks joined, or null (and the header dropped) when one is missing or the sizes disagree. */
    private byte[] join(String key, List<KeyValue<String, byte[]>> parts, long size) {
        byte[] value = new byte[(int) size];
        int at = 0;
        for (KeyValue<String, byte[]> part : parts) {
            if (!part.hasValue() || at + part.getValue().length > size) {
                discard(key, "missing or oversized chunk");
                return null;
            }
            System.arraycopy(part.getValue(), 0, value, at, part.getValue().length);
            at += part.getValue().length;
        }
        if (at != size) {
            discard(key, "short chunks");
            return null;
        }
        return value;
    }

    @Override
    public boolean delete(String key) {
        try {
            return await(redis.del(key)) > 0; // chunks, if any, go with their TTL, as on any discard
        } catch (TypedFailure e) {
            throw e;
        } catch (RuntimeException e) {
            throw unavailable(e);
        }
    }

    private void discard(String key, String why) {
        log.warn("cache entry {} is unusable ({}); dropping it", key, why);
        redis.del(key);
    }

    static String chunkKey(String key, long nonce, int i) {
        return key + ":" + Long.toHexString(nonce) + ":" + i;
    }

    private static String[] chunkKeys(String key, long nonce, int chunks) {
        String[] keys = new String[chunks];
        for (int i = 0; i < chunks; i++) {
            keys[i] = chunkKey(key, nonce, i);
        }
        return keys;
    }

    @Override
    public long bytes() {
        try {
            Matcher m = USED_MEMORY.matcher(await(redis.info("memory")));
            return m.find() ? Long.parseLong(m.group(1)) : -1;
        } catch (RuntimeException e) {
            return -1;
        }
    }

    @Override
    public String describe() {
        return description;
    }

    private <T> T await(RedisFuture<T> future) {
        try {
            return future.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new TypedFailure(FailureKind.UNAVAILABLE, "interrupted waiting for the cache backend", e);
        } catch (ExecutionException e) {
            throw unavailable(e.getCause());
        } catch (Exception e) {
            throw unavailable(e);
        }
    }

    /** Lettuce's text may name hosts: it stays in the cause, for the log. */
    private static TypedFailure unavailable(Throwable cause) {
        return new TypedFailure(FailureKind.UNAVAILABLE, "the cache backend did not answer", cause);
    }

    @Override
    public void close() {
        try {
            connection.close();
            client.close();
        } catch (Exception e) {
            log.debug("closing Redis", e);
        }
    }
}
