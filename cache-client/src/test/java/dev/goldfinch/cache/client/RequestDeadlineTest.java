package dev.goldfinch.cache.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.cache.InMemoryCacheBackend;
import dev.goldfinch.cache.PrefixCache;
import dev.goldfinch.cache.PrefixCacheStore;
import dev.goldfinch.cache.PrefixHasher;
import dev.goldfinch.cache.grpc.CacheStoreGrpcService;
import dev.goldfinch.proto.internal.v1.EntryKind;
import dev.goldfinch.service.Channels;
import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.netty.NettyServerBuilder;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Each cache call's deadline, as the real CacheStore service on loopback sees it: the store timeout, or the
 * request's deadline when sooner; a background write gets the store timeout whatever the request that queued it.
 */
class RequestDeadlineTest {
    static final Duration STORE_TIMEOUT = Duration.ofSeconds(120);
    /** Ends the requests' gRPC contexts at their deadlines. */
    static final ScheduledExecutorService SCHEDULER = Executors.newSingleThreadScheduledExecutor(
            Thread.ofPlatform().daemon().factory());
    /** Slack for the time between taking a deadline and the call reaching the store on a loaded machine. */
    static final long SLACK_MS = 15_000;

    final ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor();
    final PrefixCache serverCache = new PrefixCache(
            new InMemoryCacheBackend(64L << 20, Duration.ofHours(1), Clock.systemUTC()), new PrefixHasher(16));
    /** Milliseconds left of each call's deadline as it reached the store (Long.MAX_VALUE: none). */
    final LinkedBlockingQueue<Long> arrivedWithMs = new LinkedBlockingQueue<>();

    Server server;
    RemotePrefixCacheStore client;

    @BeforeEach
    void start() throws IOException {
        ServerInterceptor recording = new ServerInterceptor() {
            @Override
            public <Q, A> ServerCall.Listener<Q> interceptCall(
                    ServerCall<Q, A> call, Metadata headers, ServerCallHandler<Q, A> next) {
                Deadline d = Context.current().getDeadline();
                arrivedWithMs.add(d == null ? Long.MAX_VALUE : d.timeRemaining(TimeUnit.MILLISECONDS));
                return next.startCall(call, headers);
            }
        };
        server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .addService(ServerInterceptors.intercept(
                        new CacheStoreGrpcService(serverCache, 1L << 30, executor, new SimpleMeterRegistry()),
                        recording))
                .build()
                .start();
        client = new RemotePrefixCacheStore(Channels.open("127.0.0.1:" + server.getPort()), true, STORE_TIMEOUT);
    }

    @AfterEach
    void stop() {
        client.close();
        server.shutdownNow();
        serverCache.close();
        executor.shutdown();
    }

    long lookupArrivedWithMs() throws InterruptedException {
        client.lookup("m", "", new int[] {1, 2, 3}, 2);
        Long ms = arrivedWithMs.poll(60, TimeUnit.SECONDS);
        assertTrue(ms != null, "the lookup never reached the store");
        return ms;
    }

    @Test
    void aCallTakesTheRequestsDeadlineWhenSoonerAndTheStoreTimeoutOtherwise() throws Exception {
        long storeMs = STORE_TIMEOUT.toMillis();
        // The gRPC context's own deadline (a call made on the request's thread).
        try (Context.CancellableContext request =
                Context.current().withDeadlineAfter(20, TimeUnit.SECONDS, SCHEDULER)) {
            long ms = request.call(this::lookupArrivedWithMs);
            assertTrue(ms <= 20_000, "arrived with " + ms + " ms left, after a 20 s request deadline");
        }
        // A deadline carried as a value (work shared by several requests).
        long carried = RequestDeadline.within(Deadline.after(20, TimeUnit.SECONDS), () -> {
            try {
                return lookupArrivedWithMs();
            } catch (InterruptedException e) {
                throw new IllegalStateException(e);
            }
        });
        assertTrue(carried <= 20_000, "arrived with " + carried + " ms left, after a 20 s carried deadline");
        // A request with more time than the store timeout: the store timeout still bounds the call.
        long later = RequestDeadline.within(Deadline.after(1, TimeUnit.HOURS), () -> {
            try {
                return lookupArrivedWithMs();
            } catch (InterruptedException e) {
                throw new IllegalStateException(e);
            }
        });
        assertTrue(later <= storeMs && later > storeMs - SLACK_MS, "arrived with " + later + " ms left");
    }

    @Test
    void aBackgroundWriteKeepsTheStoreTimeoutAndOutlivesItsRequest() throws Exception {
        BackgroundWrites writes = new BackgroundWrites("test", 8, new SimpleMeterRegistry());
        byte[] hash = new byte[16];
        hash[0] = 7;
        try (Context.CancellableContext request =
                Context.current().withDeadlineAfter(20, TimeUnit.SECONDS, SCHEDULER)) {
            request.run(() -> RequestDeadline.within(Deadline.after(20, TimeUnit.SECONDS), () -> {
                writes.submit(() -> client.putAll(
                        "m",
                        List.of(new PrefixCacheStore.Entry(
                                EntryKind.ENTRY_KIND_CHECKPOINT, hash, 16, null, new byte[] {1, 2, 3}))));
                return null;
            }));
            request.cancel(null); // the request is gone before (or while) its write runs
        }
        writes.awaitIdle();
        writes.close();
        Long ms = arrivedWithMs.poll(60, TimeUnit.SECONDS);
        assertTrue(ms != null, "the write never reached the store");
        assertTrue(ms > 20_000, "the write arrived with the request's deadline (" + ms + " ms left)");
        assertEquals(
                Optional.of(3),
                client.get("m", EntryKind.ENTRY_KIND_CHECKPOINT, hash).map(v -> v.length));
    }
}
