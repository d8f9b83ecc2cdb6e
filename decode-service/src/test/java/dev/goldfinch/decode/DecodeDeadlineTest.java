package dev.goldfinch.decode;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.cache.InMemoryCacheBackend;
import dev.goldfinch.cache.PrefixCache;
import dev.goldfinch.cache.PrefixHasher;
import dev.goldfinch.cache.client.EntrySigner;
import dev.goldfinch.cache.client.RemotePrefixCacheStore;
import dev.goldfinch.cache.client.StateCache;
import dev.goldfinch.cache.grpc.CacheStoreGrpcService;
import dev.goldfinch.model.GoldFinchModel;
import dev.goldfinch.model.ModelShapes;
import dev.goldfinch.model.RandomWeights;
import dev.goldfinch.model.constrain.JsonGrammars;
import dev.goldfinch.model.state.SequenceState;
import dev.goldfinch.model.state.StateCodec;
import dev.goldfinch.model.tensor.DType;
import dev.goldfinch.proto.internal.v1.DecodeGrpc;
import dev.goldfinch.proto.internal.v1.DecodeRequest;
import dev.goldfinch.proto.internal.v1.DecodeResponse;
import dev.goldfinch.proto.internal.v1.EntryRef;
import dev.goldfinch.proto.v1.SamplingParams;
import dev.goldfinch.service.Channels;
import dev.goldfinch.service.ModelProperties;
import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.ManagedChannel;
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
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The request's deadline on the hop from decode to the cache store, over real gRPC on loopback: the decode
 * service and a real CacheStore service (in-memory backend) on Netty, the store's side recording the deadline
 * each call arrived with. The store timeout is five minutes, the client's deadline under one.
 */
class DecodeDeadlineTest {
    static final int B = 16;
    static final Duration STORE_TIMEOUT = Duration.ofMinutes(5);
    static final long CLIENT_DEADLINE_MS = 45_000; // generous: the machine is loaded
    /** How much later than the client's deadline the store may see it: the time the request took to get there. */
    static final long TRAVEL_ALLOWANCE_MS = 15_000;

    record StoreCall(String method, long deadlineNanos) {}

    final GoldFinchModel model =
            RandomWeights.model(ModelShapes.parse("layers=2,width=64,head=32,vocab=300"), 7, DType.F32);
    final ExecutorService storeExecutor = Executors.newVirtualThreadPerTaskExecutor();
    final ExecutorService io = Executors.newVirtualThreadPerTaskExecutor();
    final PrefixCache serverCache = new PrefixCache(
            new InMemoryCacheBackend(256L << 20, Duration.ofHours(1), Clock.systemUTC()), new PrefixHasher(B));
    final List<StoreCall> storeCalls = new CopyOnWriteArrayList<>();
    Server store;
    Server decode;
    RemotePrefixCacheStore storeClient;
    StateCache cache;
    DecodeEngine engine;
    ManagedChannel channel;

    @BeforeEach
    void start() throws IOException {
        ServerInterceptor recording = new ServerInterceptor() {
            @Override
            public <Q, A> ServerCall.Listener<Q> interceptCall(
                    ServerCall<Q, A> call, Metadata headers, ServerCallHandler<Q, A> next) {
                Deadline deadline = Context.current().getDeadline();
                storeCalls.add(new StoreCall(
                        call.getMethodDescriptor().getBareMethodName(),
                        deadline == null
                                ? Long.MAX_VALUE
                                : System.nanoTime() + deadline.timeRemaining(TimeUnit.NANOSECONDS)));
                return next.startCall(call, headers);
            }
        };
        store = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .addService(ServerInterceptors.intercept(
                        new CacheStoreGrpcService(serverCache, 1L << 30, storeExecutor, new SimpleMeterRegistry()),
                        recording))
                .build()
                .start();
        storeClient = new RemotePrefixCacheStore(Channels.open("127.0.0.1:" + store.getPort()), true, STORE_TIMEOUT);
        cache = new StateCache(
                storeClient,
                new PrefixHasher(B),
                model,
                StateCodec.FloatType.F32,
                EntrySigner.withRandomKey(new SimpleMeterRegistry()));
        engine = new DecodeEngine(model, cache, io, 4, 4, 4, new SimpleMeterRegistry());
        ModelProperties props = new ModelProperties(null, null, null, null, null, null, null, null, null);
        decode = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .addService(new DecodeGrpcService(engine, props, new JsonGrammars(null, 4)))
                .build()
                .start();
        channel = Channels.open("127.0.0.1:" + decode.getPort());
    }

    @AfterEach
    void stop() {
        channel.shutdownNow();
        decode.shutdownNow();
        engine.close();
        io.shutdown();
        storeClient.close();
        store.shutdownNow();
        storeExecutor.shutdown();
        serverCache.close();
        model.close();
    }

    @Test
    void theEntryReadAndTheEndCheckpointKeepToTheClientsDeadline() {
        int[] prompt = new Random(3).ints(41, 1, 300).toArray();
        SequenceState state = model.newState();
        model.prefill(state, Arrays.copyOf(prompt, 40));
        byte[] hash = cache.persist("", state, 0); // made for no request: the store timeout
        storeCalls.clear();

        Deadline clients = Deadline.after(CLIENT_DEADLINE_MS, TimeUnit.MILLISECONDS);
        Iterator<DecodeResponse> tokens = DecodeGrpc.newBlockingStub(channel)
                .withDeadline(clients)
                .decode(DecodeRequest.newBuilder()
                        .setEntry(EntryRef.newBuilder()
                                .setModel(cache.modelId())
                                .setPrefixHash(PrefixHasher.hex(hash))
                                .setLength(40))
                        .setLastPromptToken(prompt[40])
                        .setSampling(
                                SamplingParams.newBuilder().setTemperature(0).setMaxTokens(4))
                        .setCheckpointAtEnd(true)
                        .build());
        List<DecodeResponse> received = new ArrayList<>();
        tokens.forEachRemaining(received::add);
        assertEquals(4, received.getLast().getGeneratedTokens());

        // The checkpoint and its key blocks (two GetMany), then the checkpoints after the prompt (before the
        // first token) and at the end (before the stream ends): all on the request's path.
        assertEquals(
                List.of("GetMany", "GetMany", "Put", "Put"),
                storeCalls.stream().map(StoreCall::method).toList());
        long clientsNanos = System.nanoTime() + clients.timeRemaining(TimeUnit.NANOSECONDS);
        for (StoreCall call : storeCalls) {
            long lateMs = TimeUnit.NANOSECONDS.toMillis(call.deadlineNanos() - clientsNanos);
            assertTrue(
                    lateMs <= TRAVEL_ALLOWANCE_MS,
                    call.method() + " reached the store with a deadline " + lateMs
                            + " ms after the client's (the store timeout is " + STORE_TIMEOUT + ")");
        }
    }
}
