package dev.goldfinch.prefill;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.cache.InMemoryCacheBackend;
import dev.goldfinch.cache.PrefixCache;
import dev.goldfinch.cache.PrefixHasher;
import dev.goldfinch.cache.client.BackgroundWrites;
import dev.goldfinch.cache.client.EntrySigner;
import dev.goldfinch.cache.client.RemotePrefixCacheStore;
import dev.goldfinch.cache.client.StateCache;
import dev.goldfinch.cache.grpc.CacheStoreGrpcService;
import dev.goldfinch.model.GoldFinchModel;
import dev.goldfinch.model.ModelShapes;
import dev.goldfinch.model.RandomWeights;
import dev.goldfinch.model.state.StateCodec;
import dev.goldfinch.model.tensor.DType;
import dev.goldfinch.proto.internal.v1.PrefillGrpc;
import dev.goldfinch.proto.internal.v1.PrefillRequest;
import dev.goldfinch.proto.internal.v1.PrefillResponse;
import dev.goldfinch.proto.internal.v1.PutRequest;
import dev.goldfinch.service.Channels;
import dev.goldfinch.service.ModelProperties;
import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.ForwardingServerCallListener;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The request's deadline on the hop from prefill to the cache store, over real gRPC on loopback: the prefill
 * service and a real CacheStore service (in-memory backend) on Netty, the store's side recording the deadline
 * each call arrived with. The store timeout is five minutes, the client's deadline under one.
 */
class PrefillDeadlineTest {
    static final int B = 16;
    static final int PROMPT = 300; // checkpoints after 16, 32, 64, 128, 256 tokens (background) and 299 (hand-off)
    static final int HAND_OFF = PROMPT - 1;
    static final Duration STORE_TIMEOUT = Duration.ofMinutes(5);
    static final long CLIENT_DEADLINE_MS = 45_000; // generous: the machine is loaded
    /** How much later than the client's deadline the store may see it: the time the request took to get there. */
    static final long TRAVEL_ALLOWANCE_MS = 15_000;

    /** One call as the cache store saw it. */
    record StoreCall(String method, long deadlineNanos, List<Integer> lengths, boolean[] completed) {
        boolean has(int length) {
            return lengths.contains(length);
        }
    }

    final GoldFinchModel model =
            RandomWeights.model(ModelShapes.parse("layers=2,width=64,head=32,vocab=300"), 3, DType.F32);
    final ExecutorService storeExecutor = Executors.newVirtualThreadPerTaskExecutor();
    final PrefixCache serverCache = new PrefixCache(
            new InMemoryCacheBackend(256L << 20, Duration.ofHours(1), Clock.systemUTC()), new PrefixHasher(B));
    final List<StoreCall> storeCalls = new CopyOnWriteArrayList<>();
    /** Store calls held at their half-close while it answers true (the test releases them). */
    volatile Predicate<StoreCall> hold = call -> false;

    final CountDownLatch release = new CountDownLatch(1);
    final ArrayBlockingQueue<StoreCall> held = new ArrayBlockingQueue<>(16);
    final CountDownLatch prefillCancelled = new CountDownLatch(1);
    final BackgroundWrites writes = new BackgroundWrites("prefill", 64, new SimpleMeterRegistry());
    final ThreadPoolExecutor prefillExecutor =
            new ThreadPoolExecutor(1, 1, 0, TimeUnit.SECONDS, new ArrayBlockingQueue<>(8));
    Server store;
    Server prefill;
    RemotePrefixCacheStore storeClient;
    PrefillEngine engine;
    ManagedChannel channel;

    @BeforeEach
    void start() throws IOException {
        ServerInterceptor recording = new ServerInterceptor() {
            @Override
            public <Q, A> ServerCall.Listener<Q> interceptCall(
                    ServerCall<Q, A> call, Metadata headers, ServerCallHandler<Q, A> next) {
                Deadline deadline = Context.current().getDeadline();
                StoreCall seen = new StoreCall(
                        call.getMethodDescriptor().getBareMethodName(),
                        deadline == null
                                ? Long.MAX_VALUE
                                : System.nanoTime() + deadline.timeRemaining(TimeUnit.NANOSECONDS),
                        new CopyOnWriteArrayList<>(),
                        new boolean[1]);
                storeCalls.add(seen);
                return new ForwardingServerCallListener.SimpleForwardingServerCallListener<>(
                        next.startCall(call, headers)) {
                    @Override
                    public void onMessage(Q message) {
                        if (message instanceof PutRequest r && r.hasHeader()) {
                            seen.lengths().add(r.getHeader().getEntry().getLength());
                        }
                        super.onMessage(message);
                    }

                    @Override
                    public void onHalfClose() {
                        if (hold.test(seen)) {
                            held.add(seen);
                            try {
                                release.await(120, TimeUnit.SECONDS);
                            } catch (InterruptedException e) {
                                Thread.currentThread().interrupt();
                            }
                        }
                        super.onHalfClose();
                    }

                    @Override
                    public void onComplete() {
                        seen.completed()[0] = true;
                        super.onComplete();
                    }
                };
            }
        };
        store = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .addService(ServerInterceptors.intercept(
                        new CacheStoreGrpcService(serverCache, 1L << 30, storeExecutor, new SimpleMeterRegistry()),
                        recording))
                .build()
                .start();
        storeClient = new RemotePrefixCacheStore(Channels.open("127.0.0.1:" + store.getPort()), true, STORE_TIMEOUT);
        engine = new PrefillEngine(
                model,
                new StateCache(
                        storeClient,
                        new PrefixHasher(B),
                        model,
                        StateCodec.FloatType.F32,
                        EntrySigner.withRandomKey(new SimpleMeterRegistry())),
                prefillExecutor,
                writes);
        ServerInterceptor seeingCancel = new ServerInterceptor() {
            @Override
            public <Q, A> ServerCall.Listener<Q> interceptCall(
                    ServerCall<Q, A> call, Metadata headers, ServerCallHandler<Q, A> next) {
                return new ForwardingServerCallListener.SimpleForwardingServerCallListener<>(
                        next.startCall(call, headers)) {
                    @Override
                    public void onCancel() {
                        prefillCancelled.countDown();
                        super.onCancel();
                    }
                };
            }
        };
        ModelProperties props = new ModelProperties(null, null, null, null, null, null, null, null, null);
        prefill = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .addService(ServerInterceptors.intercept(
                        new PrefillGrpcService(engine, props, new SimpleMeterRegistry(), prefillExecutor),
                        seeingCancel))
                .build()
                .start();
        channel = Channels.open("127.0.0.1:" + prefill.getPort());
    }

    @AfterEach
    void stop() {
        release.countDown();
        channel.shutdownNow();
        prefill.shutdownNow();
        prefillExecutor.shutdownNow();
        writes.close();
        storeClient.close();
        store.shutdownNow();
        storeExecutor.shutdown();
        serverCache.close();
        model.close();
    }

    static PrefillRequest request(int[] tokens) {
        PrefillRequest.Builder r = PrefillRequest.newBuilder();
        for (int t : tokens) {
            r.addTokens(t);
        }
        return r.build();
    }

    List<StoreCall> calls(Predicate<StoreCall> which) {
        return storeCalls.stream().filter(which).toList();
    }

    static void assertNoLaterThan(Deadline clients, StoreCall call) {
        long clientsNanos = System.nanoTime() + clients.timeRemaining(TimeUnit.NANOSECONDS);
        long lateMs = TimeUnit.NANOSECONDS.toMillis(call.deadlineNanos() - clientsNanos);
        assertTrue(
                lateMs <= TRAVEL_ALLOWANCE_MS,
                call.method() + " " + call.lengths() + " reached the store with a deadline " + lateMs
                        + " ms after the client's (the store timeout is " + STORE_TIMEOUT + ")");
    }

    @Test
    void cacheCallsForAPrefillKeepToItsClientsDeadlineAndBackgroundWritesToTheStoreTimeout() {
        int[] first = new Random(1).ints(PROMPT, 1, 300).toArray();
        Deadline clients = Deadline.after(CLIENT_DEADLINE_MS, TimeUnit.MILLISECONDS);
        PrefillResponse cold =
                PrefillGrpc.newBlockingStub(channel).withDeadline(clients).prefill(request(first));
        assertEquals(HAND_OFF, cold.getEntry().getLength());
        engine.awaitCheckpointWrites();

        // On the request path: the lookup and the write of the entry decode pulls.
        List<StoreCall> lookups = calls(c -> c.method().equals("Lookup"));
        assertEquals(1, lookups.size());
        assertNoLaterThan(clients, lookups.getFirst());
        List<StoreCall> handOff = calls(c -> c.method().equals("Put") && c.has(HAND_OFF));
        assertEquals(1, handOff.size());
        assertNoLaterThan(clients, handOff.getFirst());

        // Off it: the checkpoints on the way serve later requests and keep the store's own timeout.
        List<StoreCall> background = calls(c -> c.method().equals("Put") && !c.has(HAND_OFF));
        assertEquals(5, background.size(), "checkpoints after 16, 32, 64, 128 and 256 tokens");
        for (StoreCall write : background) {
            long afterClientsMs = TimeUnit.NANOSECONDS.toMillis(
                    write.deadlineNanos() - (System.nanoTime() + clients.timeRemaining(TimeUnit.NANOSECONDS)));
            assertTrue(
                    afterClientsMs > TRAVEL_ALLOWANCE_MS,
                    "background write " + write.lengths() + " was given the client's deadline, not the store timeout");
        }

        // A longer prompt on the same prefix restores the 299-token entry: its reads keep to the new deadline.
        storeCalls.clear();
        int[] second = java.util.Arrays.copyOf(first, PROMPT + 40);
        Deadline again = Deadline.after(CLIENT_DEADLINE_MS, TimeUnit.MILLISECONDS);
        PrefillResponse warm =
                PrefillGrpc.newBlockingStub(channel).withDeadline(again).prefill(request(second));
        assertEquals(HAND_OFF, warm.getCachedTokens());
        List<StoreCall> reads = calls(c -> List.of("Lookup", "Get", "GetMany").contains(c.method()));
        // The lookup, then the checkpoint and its key blocks (each a GetMany).
        assertEquals(
                List.of("Lookup", "GetMany", "GetMany"),
                reads.stream().map(StoreCall::method).toList());
        for (StoreCall read : reads) {
            assertNoLaterThan(again, read);
        }
    }

    @Test
    void cacheWritesInFlightWhenTheClientCancelsStillComplete() throws Exception {
        // Hold the first background checkpoint and the hand-off entry at the store until the client has gone.
        hold = call -> call.method().equals("Put") && (call.has(B) || call.has(HAND_OFF));
        int[] tokens = new Random(2).ints(PROMPT, 1, 300).toArray();
        Context.CancellableContext client = Context.current().withCancellation();
        List<Throwable> outcome = new CopyOnWriteArrayList<>();
        CountDownLatch ended = new CountDownLatch(1);
        client.run(() -> PrefillGrpc.newStub(channel)
                .withDeadlineAfter(CLIENT_DEADLINE_MS * 2, TimeUnit.MILLISECONDS)
                .prefill(request(tokens), new StreamObserver<>() {
                    @Override
                    public void onNext(PrefillResponse value) {}

                    @Override
                    public void onError(Throwable t) {
                        outcome.add(t);
                        ended.countDown();
                    }

                    @Override
                    public void onCompleted() {
                        ended.countDown();
                    }
                }));
        List<StoreCall> holding = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            StoreCall call = held.poll(60, TimeUnit.SECONDS);
            assertTrue(call != null, "the store saw " + storeCalls.size() + " calls, not both writes to hold");
            holding.add(call);
        }
        client.cancel(null);
        assertTrue(ended.await(30, TimeUnit.SECONDS));
        assertEquals(
                Status.Code.CANCELLED, Status.fromThrowable(outcome.getFirst()).getCode());
        assertTrue(prefillCancelled.await(30, TimeUnit.SECONDS), "the prefill service never saw the cancellation");

        release.countDown();
        engine.awaitCheckpointWrites();
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (holding.stream().anyMatch(c -> !c.completed()[0]) && System.nanoTime() < until) {
            Thread.sleep(20);
        }
        for (StoreCall write : holding) {
            assertTrue(write.completed()[0], "the write of " + write.lengths() + " was cut short with its request");
        }
        // Both entries are in the store: the next request with this prompt resumes from them.
        String modelId = StateCache.modelId(model.fingerprint());
        assertEquals(HAND_OFF, serverCache.lookup(modelId, "", tokens, HAND_OFF).checkpointLength());
        assertEquals(B, serverCache.lookup(modelId, "", tokens, B).checkpointLength());
    }
}
