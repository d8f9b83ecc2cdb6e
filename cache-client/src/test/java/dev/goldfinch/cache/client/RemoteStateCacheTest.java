package dev.goldfinch.cache.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.cache.CacheBackend;
import dev.goldfinch.cache.PrefixCache;
import dev.goldfinch.cache.PrefixCacheStore;
import dev.goldfinch.cache.PrefixHasher;
import dev.goldfinch.cache.grpc.CacheStoreGrpcService;
import dev.goldfinch.model.GoldFinchModel;
import dev.goldfinch.model.ModelShapes;
import dev.goldfinch.model.RandomWeights;
import dev.goldfinch.model.state.SequenceState;
import dev.goldfinch.model.state.StateCodec;
import dev.goldfinch.model.tensor.DType;
import dev.goldfinch.proto.internal.v1.CacheStoreGrpc;
import dev.goldfinch.proto.internal.v1.EntryKind;
import dev.goldfinch.proto.internal.v1.GetManyRequest;
import dev.goldfinch.proto.internal.v1.PutRequest;
import dev.goldfinch.service.Channels;
import io.grpc.ForwardingServerCallListener;
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
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A state written and restored through the real CacheStore service over gRPC on loopback, with the calls
 * counted on the server: a 4,096-token prefix is one Put to write and, besides its checkpoint, one GetMany
 * for all 64 key blocks to restore, and any missing or corrupt block is still a miss. Run once per backend.
 */
abstract class RemoteStateCacheTest {
    static final GoldFinchModel MODEL =
            RandomWeights.model(ModelShapes.parse("layers=2,width=64,head=32,vocab=300"), 5, DType.F32);
    static final int B = PrefixHasher.DEFAULT_BLOCK_SIZE;
    static final int PREFIX = 4096;
    static SequenceState prefix;

    final Map<String, AtomicInteger> calls = new ConcurrentHashMap<>();
    final List<Integer> getManySizes = Collections.synchronizedList(new ArrayList<>());
    final List<Integer> putMessages = Collections.synchronizedList(new ArrayList<>());
    final ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor();
    PrefixCache serverCache;
    Server server;
    RemotePrefixCacheStore client;
    StateCache cache;
    final SimpleMeterRegistry meters = new SimpleMeterRegistry();
    /** A fresh salt per test keeps tests apart on a shared Redis. */
    final String salt = UUID.randomUUID().toString();

    abstract CacheBackend backend();

    /** Removes one stored key block of the prefix, as an eviction would. */
    abstract void dropKeyBlock(String key);

    /** Flips a byte inside one stored key block's value. */
    abstract void corruptKeyBlock(String key);

    static synchronized SequenceState prefix() {
        if (prefix == null) {
            prefix = MODEL.newState();
            MODEL.prefill(prefix, new Random(11).ints(PREFIX, 1, 300).toArray());
        }
        return prefix;
    }

    @BeforeEach
    void start() throws IOException {
        serverCache = new PrefixCache(backend(), new PrefixHasher(B));
        ServerInterceptor counting = new ServerInterceptor() {
            @Override
            public <Q, A> ServerCall.Listener<Q> interceptCall(
                    ServerCall<Q, A> call, Metadata headers, ServerCallHandler<Q, A> next) {
                String method = call.getMethodDescriptor().getBareMethodName();
                calls.computeIfAbsent(method, m -> new AtomicInteger()).incrementAndGet();
                AtomicInteger messages = new AtomicInteger();
                return new ForwardingServerCallListener.SimpleForwardingServerCallListener<>(
                        next.startCall(call, headers)) {
                    @Override
                    public void onMessage(Q message) {
                        messages.incrementAndGet();
                        if (message instanceof GetManyRequest r) {
                            getManySizes.add(r.getPrefixHashesCount());
                        }
                        super.onMessage(message);
                    }

                    @Override
                    public void onHalfClose() {
                        if (method.equals("Put")) {
                            putMessages.add(messages.get());
                        }
                        super.onHalfClose();
                    }
                };
            }
        };
        server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .addService(ServerInterceptors.intercept(
                        new CacheStoreGrpcService(serverCache, 1L << 30, executor, new SimpleMeterRegistry()),
                        counting))
                .build()
                .start();
        client = new RemotePrefixCacheStore(
                Channels.open("127.0.0.1:" + server.getPort()), true, Duration.ofSeconds(20));
        cache = new StateCache(
                client, new PrefixHasher(B), MODEL, StateCodec.FloatType.F32, EntrySigner.withRandomKey(meters));
    }

    @AfterEach
    void stop() {
        client.close();
        server.shutdownNow();
        serverCache.close();
        executor.shutdown();
    }

    @AfterAll
    static void closeModel() {
        MODEL.close();
    }

    int calls(String method) {
        AtomicInteger n = calls.get(method);
        return n == null ? 0 : n.get();
    }

    String keyBlockKey(int block) {
        byte[][] chain = cache.hasher().chain(cache.modelId(), salt, prefix().tokens(), block * B);
        return PrefixCache.key(cache.modelId(), EntryKind.ENTRY_KIND_KEY_BLOCK, chain[block]);
    }

    @Test
    void aCachedPrefixIsOnePutToWriteAndOneGetManyOfItsKeyBlocksToRestore() {
        SequenceState state = prefix();
        byte[] hash = cache.persist(salt, state, 0);
        assertEquals(1, calls("Put"), "64 key blocks and the checkpoint in one stream");
        assertTrue(putMessages.getFirst() >= 2 * (PREFIX / B + 1), "a header and a chunk per entry: " + putMessages);
        assertEquals(PREFIX / B, cache.lookup(salt, state.tokens(), PREFIX).keyBlocks());

        calls.clear();
        SequenceState restored = cache.restore(salt, hash, PREFIX).orElseThrow();
        assertEquals(0, calls("Get"));
        assertEquals(2, calls("GetMany"), "the checkpoint, then every key block at once");
        assertEquals(List.of(1, PREFIX / B), getManySizes);
        assertArrayEquals(
                StateCodec.encode(state, StateCodec.FloatType.F32, 0),
                StateCodec.encode(restored, StateCodec.FloatType.F32, 0),
                "tokens, recurrent state and every compressed key come back bit for bit");
    }

    double rejected() {
        return meters.counter(EntrySigner.REJECTED_METRIC, "reason", "signature")
                .count();
    }

    void assertRestoresBitForBit(byte[] hash) {
        assertArrayEquals(
                StateCodec.encode(prefix(), StateCodec.FloatType.F32, 0),
                StateCodec.encode(cache.restore(salt, hash, PREFIX).orElseThrow(), StateCodec.FloatType.F32, 0));
    }

    @Test
    void aForgedEntryWithAValidChecksumIsNeverServedAndIsDeletedAndCounted() {
        SequenceState state = prefix();
        byte[][] chain = cache.hasher().chain(cache.modelId(), salt, state.tokens(), PREFIX);
        byte[] hash = chain[PREFIX / B];
        // The attacker writes first, straight to the store: well-formed state blobs with valid CRCs, no MAC.
        List<PrefixCacheStore.Entry> forged = new ArrayList<>();
        for (int i = 1; i <= PREFIX / B; i++) {
            forged.add(new PrefixCacheStore.Entry(
                    EntryKind.ENTRY_KIND_KEY_BLOCK,
                    chain[i],
                    i * B,
                    null,
                    StateCodec.encodeKeyBlock(state, (i - 1) * B, i * B, StateCodec.FloatType.F32)));
        }
        forged.add(new PrefixCacheStore.Entry(
                EntryKind.ENTRY_KIND_CHECKPOINT,
                hash,
                PREFIX,
                null,
                StateCodec.encode(state, StateCodec.FloatType.F32, 0, PREFIX)));
        assertEquals(forged.size(), client.putAll(cache.modelId(), forged), "the store, holding no key, takes them");
        assertEquals(PREFIX, cache.lookup(salt, state.tokens(), PREFIX).checkpointLength());

        assertTrue(cache.restore(salt, hash, PREFIX).isEmpty(), "a forged checkpoint is a miss");
        assertEquals(1, rejected());
        assertTrue(client.get(cache.modelId(), EntryKind.ENTRY_KIND_CHECKPOINT, hash)
                .isEmpty());

        cache.persist(salt, state, 0); // the checkpoint is written; the forged key blocks are still in its way
        assertTrue(cache.restore(salt, hash, PREFIX).isEmpty(), "forged key blocks are a miss too");
        assertEquals(1 + PREFIX / B, rejected(), "every forged key block is caught in the one restore");
        assertEquals(0, cache.lookup(salt, state.tokens(), PREFIX).keyBlocks(), "and deleted");

        cache.persist(salt, state, 0);
        assertRestoresBitForBit(hash);
        assertEquals(1 + PREFIX / B, rejected());
    }

    @Test
    void anEntryWrittenUnderAnotherMeshKeyIsAMiss() {
        StateCache otherMesh = new StateCache(
                client, new PrefixHasher(B), MODEL, StateCodec.FloatType.F32, EntrySigner.withRandomKey(meters));
        byte[] hash = otherMesh.persist(salt, prefix(), 0);
        assertTrue(otherMesh.restore(salt, hash, PREFIX).isPresent(), "its own mesh reads it");
        assertTrue(cache.restore(salt, hash, PREFIX).isEmpty());
        assertEquals(1, rejected());
        assertTrue(client.get(cache.modelId(), EntryKind.ENTRY_KIND_CHECKPOINT, hash)
                .isEmpty());
    }

    @Test
    void aTamperedByteUnderAValidChecksumIsAMiss() {
        byte[] hash = cache.persist(salt, prefix(), 0);
        byte[][] chain = cache.hasher().chain(cache.modelId(), salt, prefix().tokens(), PREFIX);
        byte[] block = client.get(cache.modelId(), EntryKind.ENTRY_KIND_KEY_BLOCK, chain[5])
                .orElseThrow();
        block[block.length / 2] ^= 0x01;
        // Replaced through the store's own calls, so its CRC matches the tampered bytes.
        assertTrue(client.forget(cache.modelId(), EntryKind.ENTRY_KIND_KEY_BLOCK, chain[5]));
        assertTrue(client.put(cache.modelId(), EntryKind.ENTRY_KIND_KEY_BLOCK, chain[5], 5 * B, null, block));

        assertTrue(cache.restore(salt, hash, PREFIX).isEmpty());
        assertEquals(1, rejected());
        assertEquals(4, cache.lookup(salt, prefix().tokens(), PREFIX).keyBlocks(), "block 5 is gone");
        cache.persist(salt, prefix(), 4);
        assertRestoresBitForBit(hash);
    }

    @Test
    void aMissingKeyBlockMakesTheRestoreAMiss() {
        byte[] hash = cache.persist(salt, prefix(), 0);
        dropKeyBlock(keyBlockKey(37));
        assertTrue(cache.restore(salt, hash, PREFIX).isEmpty());
    }

    @Test
    void aCorruptKeyBlockMakesTheRestoreAMiss() {
        byte[] hash = cache.persist(salt, prefix(), 0);
        corruptKeyBlock(keyBlockKey(5));
        assertTrue(cache.restore(salt, hash, PREFIX).isEmpty());
        assertTrue(
                cache.restore(salt, hash, PREFIX).isEmpty(), "and stays one: the bad block was dropped, not repaired");
    }

    @Test
    void aBatchAnswersEachEntryInOrderWithItsMissesAndItsLargeValues() {
        String model = "m" + salt.substring(0, 8);
        byte[] big = new byte[3 * PrefixCacheStore.WIRE_CHUNK_BYTES + 7]; // several wire chunks
        new Random(2).nextBytes(big);
        byte[][] hashes = new byte[4][];
        for (int i = 0; i < hashes.length; i++) {
            hashes[i] = new PrefixHasher(B).root(model, salt + i);
        }
        List<PrefixCacheStore.Entry> entries = List.of(
                new PrefixCacheStore.Entry(EntryKind.ENTRY_KIND_KEY_BLOCK, hashes[0], B, null, new byte[] {1, 2, 3}),
                new PrefixCacheStore.Entry(EntryKind.ENTRY_KIND_KEY_BLOCK, hashes[2], 2 * B, null, big),
                new PrefixCacheStore.Entry(EntryKind.ENTRY_KIND_KEY_BLOCK, hashes[3], 3 * B, null, new byte[0]));
        assertEquals(3, client.putAll(model, entries));
        assertEquals(0, client.putAll(model, entries), "entries are immutable");
        List<Optional<byte[]>> got = client.getAll(model, EntryKind.ENTRY_KIND_KEY_BLOCK, List.of(hashes));
        assertEquals(4, got.size());
        assertArrayEquals(new byte[] {1, 2, 3}, got.get(0).orElseThrow());
        assertTrue(got.get(1).isEmpty(), "never written");
        assertArrayEquals(big, got.get(2).orElseThrow());
        assertArrayEquals(new byte[0], got.get(3).orElseThrow());
        assertTrue(
                client.getAll(model, EntryKind.ENTRY_KIND_CHECKPOINT, List.of(hashes[0]))
                        .getFirst()
                        .isEmpty(),
                "kinds are apart");
        assertEquals(2, calls("Put"));
        assertEquals(2, calls("GetMany"));
    }

    @Test
    void aPutStreamThatBreaksItsOwnFramingIsRejectedAndPublishesNothing() {
        String model = "m" + salt.substring(0, 8);
        byte[] first = new PrefixHasher(B).root(model, "a");
        var header = dev.goldfinch.proto.internal.v1.PutHeader.newBuilder()
                .setKind(EntryKind.ENTRY_KIND_KEY_BLOCK)
                .setSize(4)
                .setEntry(dev.goldfinch.proto.internal.v1.EntryRef.newBuilder()
                        .setModel(model)
                        .setPrefixHash(PrefixHasher.hex(first)));
        var status = new java.util.concurrent.CompletableFuture<io.grpc.Status>();
        var out = CacheStoreGrpc.newStub(Channels.open("127.0.0.1:" + server.getPort()))
                .put(new io.grpc.stub.StreamObserver<>() {
                    @Override
                    public void onNext(dev.goldfinch.proto.internal.v1.PutResponse r) {}

                    @Override
                    public void onError(Throwable t) {
                        status.complete(io.grpc.Status.fromThrowable(t));
                    }

                    @Override
                    public void onCompleted() {
                        status.complete(io.grpc.Status.OK);
                    }
                });
        out.onNext(PutRequest.newBuilder().setHeader(header).build());
        out.onNext(PutRequest.newBuilder()
                .setChunk(com.google.protobuf.ByteString.copyFrom(new byte[] {1, 2}))
                .build());
        out.onNext(PutRequest.newBuilder()
                .setHeader(header.setEntry(header.getEntry().toBuilder()
                        .setPrefixHash(PrefixHasher.hex(new PrefixHasher(B).root(model, "b")))))
                .build()); // 2 of 4 bytes so far
        out.onCompleted();
        assertEquals(io.grpc.Status.Code.INVALID_ARGUMENT, status.join().getCode());
        assertTrue(client.get(model, EntryKind.ENTRY_KIND_KEY_BLOCK, first).isEmpty());
    }
}
