package dev.goldfinch.cache.grpc;

import com.google.protobuf.ByteString;
import dev.goldfinch.cache.PrefixCacheStore;
import dev.goldfinch.cache.PrefixHasher;
import dev.goldfinch.error.FailureKind;
import dev.goldfinch.error.TypedFailure;
import dev.goldfinch.proto.internal.v1.CacheStoreGrpc;
import dev.goldfinch.proto.internal.v1.EntryKind;
import dev.goldfinch.proto.internal.v1.EntryRef;
import dev.goldfinch.proto.internal.v1.ForgetRequest;
import dev.goldfinch.proto.internal.v1.ForgetResponse;
import dev.goldfinch.proto.internal.v1.GetManyRequest;
import dev.goldfinch.proto.internal.v1.GetManyResponse;
import dev.goldfinch.proto.internal.v1.GetRequest;
import dev.goldfinch.proto.internal.v1.GetResponse;
import dev.goldfinch.proto.internal.v1.LookupRequest;
import dev.goldfinch.proto.internal.v1.LookupResponse;
import dev.goldfinch.proto.internal.v1.PutHeader;
import dev.goldfinch.proto.internal.v1.PutRequest;
import dev.goldfinch.proto.internal.v1.PutResponse;
import dev.goldfinch.proto.internal.v1.StatsRequest;
import dev.goldfinch.proto.internal.v1.StatsResponse;
import dev.goldfinch.service.ErrorTable;
import dev.goldfinch.service.GrpcErrors;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.function.Supplier;
import java.util.zip.CRC32C;

/**
 * The CacheStore gRPC service over a {@link PrefixCacheStore}. A Put is published only when each header
 * was followed by exactly {@code size} bytes matching {@code crc32c} and the client completed the stream:
 * a writer that dies or cancels midway leaves nothing behind. Store calls (Redis round trips) run on
 * their own executor, never on a transport thread.
 */
public final class CacheStoreGrpcService extends CacheStoreGrpc.CacheStoreImplBase {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(CacheStoreGrpcService.class);
    /** One entry is one Java array whatever the configured limit: below 2^31 with the JVM's headroom. */
    public static final long MAX_ENTRY_BYTES = Integer.MAX_VALUE - 16;

    private final PrefixCacheStore store;
    private final long maxValueBytes;
    private final ExecutorService executor;
    /** Value chunks Get and GetMany have handed to gRPC: a slow reader's stream stops growing it. */
    private final java.util.concurrent.atomic.AtomicLong chunksSent = new java.util.concurrent.atomic.AtomicLong();

    private final Timer lookupTimer;
    private final Timer getTimer;
    private final Timer putTimer;

    public CacheStoreGrpcService(
            PrefixCacheStore store, long maxValueBytes, ExecutorService executor, MeterRegistry meters) {
        this.store = store;
        this.maxValueBytes = maxValueBytes;
        this.executor = executor;
        this.lookupTimer = timer(meters, "lookup");
        this.getTimer = timer(meters, "get");
        this.putTimer = timer(meters, "put");
        meters.gauge("goldfinch.cache.store.bytes", store, s -> s.stats().bytes());
    }

    private static Timer timer(MeterRegistry meters, String op) {
        return Timer.builder("goldfinch.cache.store.operation")
                .description("Cache store operation latency")
                .tag("op", op)
                .publishPercentileHistogram()
                .register(meters);
    }

    @Override
    public void lookup(LookupRequest request, StreamObserver<LookupResponse> response) {
        if (request.getModel().isBlank()) {
            response.onError(GrpcErrors.invalid("model is required"));
            return;
        }
        int[] tokens =
                request.getTokensList().stream().mapToInt(Integer::intValue).toArray();
        respond(
                response,
                () -> lookupTimer.record(() -> {
                    PrefixCacheStore.Lookup l = store.lookup(
                            request.getModel(),
                            request.getCacheSalt(),
                            tokens,
                            Math.toIntExact(
                                    Math.min(Integer.MAX_VALUE, Integer.toUnsignedLong(request.getMaxLength()))));
                    LOG.debug("lookup: {} key blocks, checkpoint at {}", l.keyBlocks(), l.checkpointLength());
                    LookupResponse.Builder b = LookupResponse.newBuilder().setKeyBlocks(l.keyBlocks());
                    if (l.hit()) {
                        b.setCheckpoint(EntryRef.newBuilder()
                                .setModel(request.getModel())
                                .setPrefixHash(PrefixHasher.hex(l.checkpointHash()))
                                .setLength(l.checkpointLength()));
                    }
                    return b.build();
                }));
    }

    /**
     * One or more entries, each a header and then exactly its announced bytes; all are checked as they
     * arrive and published together, in stream order, once the client completes the stream.
     */
    @Override
    public StreamObserver<PutRequest> put(StreamObserver<PutResponse> response) {
        return new StreamObserver<>() {
            private final List<PrefixCacheStore.Entry> complete = new ArrayList<>();
            private String firstModel;
            private PutHeader header;
            /** The current entry's chunks as they arrived: memory grows with bytes received, never announced. */
            private final List<ByteString> chunks = new ArrayList<>();

            private long received;
            private long streamBytes;
            private boolean failed;

            @Override
            public void onNext(PutRequest part) {
                if (failed) {
                    return;
                }
                if (part.hasHeader()) {
                    if (header != null && !finishEntry()) {
                        return;
                    }
                    header = part.getHeader();
                    String problem = check(header);
                    if (problem == null
                            && firstModel != null
                            && !header.getEntry().getModel().equals(firstModel)) {
                        problem = "every entry of one Put names the same model";
                    }
                    if (problem == null && complete.size() >= PrefixCacheStore.MAX_BATCH_ENTRIES) {
                        problem = "at most " + PrefixCacheStore.MAX_BATCH_ENTRIES + " entries per Put";
                    }
                    if (problem != null) {
                        fail(GrpcErrors.invalid(problem));
                        return;
                    }
                    String tooLarge = checkSize(header.getSize());
                    if (tooLarge == null && streamBytes + header.getSize() > maxValueBytes) {
                        tooLarge = "a Put of more than " + maxValueBytes + " bytes";
                    }
                    if (tooLarge != null) {
                        fail(ErrorTable.status(FailureKind.INVALID_ARGUMENT, tooLarge, "size"));
                        return;
                    }
                    firstModel = firstModel == null ? header.getEntry().getModel() : firstModel;
                    streamBytes += header.getSize();
                    chunks.clear();
                    received = 0;
                    return;
                }
                if (header == null) {
                    fail(GrpcErrors.invalid("the first Put message must be the header"));
                    return;
                }
                ByteString chunk = part.getChunk();
                if (chunk.size() > PrefixCacheStore.WIRE_CHUNK_BYTES || received + chunk.size() > header.getSize()) {
                    fail(GrpcErrors.invalid("Put chunks exceed the announced size " + header.getSize()
                            + " (or a chunk exceeds " + PrefixCacheStore.WIRE_CHUNK_BYTES + " bytes)"));
                    return;
                }
                chunks.add(chunk);
                received += chunk.size();
            }

            /** The current entry has all its bytes and they match its checksum; else the stream fails. */
            private boolean finishEntry() {
                if (received != header.getSize()) {
                    fail(GrpcErrors.invalid(
                            "Put received " + received + " of " + header.getSize() + " announced bytes"));
                    return false;
                }
                byte[] value = ByteString.copyFrom(chunks).toByteArray();
                chunks.clear();
                CRC32C crc = new CRC32C();
                crc.update(value);
                if ((int) crc.getValue() != header.getCrc32C()) {
                    fail(GrpcErrors.toStatus(TypedFailure.invalidArgument("crc32c", "Put value fails its crc32c")));
                    return false;
                }
                EntryRef e = header.getEntry();
                complete.add(new PrefixCacheStore.Entry(
                        header.getKind(),
                        HexFormat.of().parseHex(e.getPrefixHash()),
                        e.getLength(),
                        header.getBlockHash().isEmpty() ? null : HexFormat.of().parseHex(header.getBlockHash()),
                        value));
                header = null;
                return true;
            }

            private void fail(RuntimeException e) {
                failed = true;
                chunks.clear();
                complete.clear();
                response.onError(e);
            }

            @Override
            public void onError(Throwable t) {
                chunks.clear(); // cancelled or broken midway: nothing is published
                complete.clear();
            }

            @Override
            public void onCompleted() {
                if (failed) {
                    return;
                }
                if (header == null) {
                    response.onError(GrpcErrors.invalid("Put stream had no header"));
                    return;
                }
                if (!finishEntry()) {
                    return;
                }
                List<PrefixCacheStore.Entry> entries = List.copyOf(complete);
                String model = firstModel;
                respond(
                        response,
                        () -> putTimer.record(() -> {
                            int written = store.putAll(model, entries);
                            LOG.debug("put: {} of {} entries written", written, entries.size());
                            return PutResponse.newBuilder()
                                    .setWritten(written > 0)
                                    .setEntriesWritten(written)
                                    .build();
                        }));
            }
        };
    }

    private String check(PutHeader h) {
        String entry = checkEntry(h.getEntry(), h.getKind());
        if (entry != null) {
            return entry;
        }
        if (!h.getBlockHash().isEmpty() && !PrefixHasher.isHex(h.getBlockHash())) {
            return "block_hash must be 32 hex digits";
        }
        return null;
    }

    /** An announced size within the store's limit and one array's; checked before anything is reserved. */
    private String checkSize(long size) {
        // uint64 on the wire: a size of 2^63 or more reads negative here.
        if (size < 0 || size > maxValueBytes || size > MAX_ENTRY_BYTES) {
            return "entry of " + Long.toUnsignedString(size) + " bytes exceeds the store's limit of "
                    + Math.min(maxValueBytes, MAX_ENTRY_BYTES);
        }
        return null;
    }

    private static String checkEntry(EntryRef e, EntryKind kind) {
        if (kind != EntryKind.ENTRY_KIND_KEY_BLOCK && kind != EntryKind.ENTRY_KIND_CHECKPOINT) {
            return "kind must be KEY_BLOCK or CHECKPOINT";
        }
        if (e.getModel().isBlank() || e.getModel().length() > 64) {
            return "entry.model is required (at most 64 characters)";
        }
        if (!PrefixHasher.isHex(e.getPrefixHash())) {
            return "entry.prefix_hash must be 32 hex digits";
        }
        return null;
    }

    long chunksSent() {
        return chunksSent.get();
    }

    @Override
    public void get(GetRequest request, StreamObserver<GetResponse> response) {
        String problem = checkEntry(request.getEntry(), request.getKind());
        if (problem != null) {
            response.onError(GrpcErrors.invalid(problem));
            return;
        }
        ReadyWait flow = new ReadyWait((ServerCallStreamObserver<GetResponse>) response);
        executor.execute(() -> {
            try {
                var value = getTimer.record(() -> store.get(
                        request.getEntry().getModel(),
                        request.getKind(),
                        HexFormat.of().parseHex(request.getEntry().getPrefixHash())));
                if (value.isEmpty()) {
                    response.onError(GrpcErrors.toStatus(new TypedFailure(
                            FailureKind.NOT_FOUND,
                            "no complete entry " + request.getEntry().getPrefixHash())));
                    return;
                }
                byte[] v = value.get();
                LOG.debug("get: {} bytes", v.length);
                for (int at = 0; at < v.length; at += PrefixCacheStore.WIRE_CHUNK_BYTES) {
                    if (!flow.ready()) {
                        return; // cancelled
                    }
                    chunksSent.incrementAndGet();
                    response.onNext(GetResponse.newBuilder()
                            .setChunk(ByteString.copyFrom(
                                    v, at, Math.min(PrefixCacheStore.WIRE_CHUNK_BYTES, v.length - at)))
                            .build());
                }
                response.onCompleted();
            } catch (RuntimeException e) {
                response.onError(GrpcErrors.toStatus(e));
            }
        });
    }

    @Override
    public void getMany(GetManyRequest request, StreamObserver<GetManyResponse> response) {
        String problem = request.getModel().isBlank() || request.getModel().length() > 64
                ? "model is required (at most 64 characters)"
                : request.getKind() != EntryKind.ENTRY_KIND_KEY_BLOCK
                                && request.getKind() != EntryKind.ENTRY_KIND_CHECKPOINT
                        ? "kind must be KEY_BLOCK or CHECKPOINT"
                        : request.getPrefixHashesCount() > PrefixCacheStore.MAX_BATCH_ENTRIES
                                ? "at most " + PrefixCacheStore.MAX_BATCH_ENTRIES + " prefix_hashes per GetMany"
                                : request.getPrefixHashesList().stream().allMatch(PrefixHasher::isHex)
                                        ? null
                                        : "every prefix_hash must be 32 hex digits";
        if (problem != null) {
            response.onError(GrpcErrors.invalid(problem));
            return;
        }
        ReadyWait flow = new ReadyWait((ServerCallStreamObserver<GetManyResponse>) response);
        executor.execute(() -> {
            try {
                List<byte[]> hashes = request.getPrefixHashesList().stream()
                        .map(HexFormat.of()::parseHex)
                        .toList();
                List<Optional<byte[]>> values =
                        getTimer.record(() -> store.getAll(request.getModel(), request.getKind(), hashes));
                for (int i = 0; i < values.size(); i++) {
                    if (!flow.ready()) {
                        return; // cancelled
                    }
                    if (values.get(i).isEmpty()) {
                        response.onNext(GetManyResponse.newBuilder()
                                .setIndex(i)
                                .setLast(true)
                                .setMissing(true)
                                .build());
                        continue;
                    }
                    byte[] v = values.get(i).get();
                    int at = 0;
                    do {
                        if (at > 0 && !flow.ready()) {
                            return; // cancelled
                        }
                        int n = Math.min(PrefixCacheStore.WIRE_CHUNK_BYTES, v.length - at);
                        chunksSent.incrementAndGet();
                        response.onNext(GetManyResponse.newBuilder()
                                .setIndex(i)
                                .setChunk(ByteString.copyFrom(v, at, n))
                                .setLast(at + n == v.length)
                                .build());
                        at += n;
                    } while (at < v.length);
                }
                response.onCompleted();
            } catch (RuntimeException e) {
                response.onError(GrpcErrors.toStatus(e));
            }
        });
    }

    @Override
    public void forget(ForgetRequest request, StreamObserver<ForgetResponse> response) {
        String problem = checkEntry(request.getEntry(), request.getKind());
        if (problem != null) {
            response.onError(GrpcErrors.invalid(problem));
            return;
        }
        respond(
                response,
                () -> ForgetResponse.newBuilder()
                        .setForgotten(store.forget(
                                request.getEntry().getModel(),
                                request.getKind(),
                                HexFormat.of().parseHex(request.getEntry().getPrefixHash())))
                        .build());
    }

    @Override
    public void stats(StatsRequest request, StreamObserver<StatsResponse> response) {
        respond(response, () -> {
            PrefixCacheStore.StoreStats s = store.stats();
            return StatsResponse.newBuilder()
                    .setBackend(s.backend())
                    .setBytes(Math.max(0, s.bytes()))
                    .setHits(s.hits())
                    .setMisses(s.misses())
                    .setLookupHits(s.lookupHits())
                    .setLookupMisses(s.lookupMisses())
                    .build();
        });
    }

    private <T> void respond(StreamObserver<T> response, Supplier<T> work) {
        try {
            executor.execute(() -> {
                try {
                    response.onNext(work.get());
                    response.onCompleted();
                } catch (RuntimeException e) {
                    response.onError(GrpcErrors.toStatus(e));
                }
            });
        } catch (RuntimeException e) {
            response.onError(GrpcErrors.toStatus(e));
        }
    }
}
