package dev.goldfinch.cache.grpc;

import com.google.protobuf.ByteString;
import dev.goldfinch.cache.PrefixCacheStore;
import dev.goldfinch.cache.PrefixHasher;
import dev.goldfinch.error.FailureKind;
import dev.goldfinch.error.TypedFailure;
import dev.goldfinch.proto.internal.v1.CacheStoreGrpc;
import dev.goldfinch.proto.internal.v1.EntryKind;
import dev.goldfinch.proto.internal.v1.EntryRef;
import dev.goldfinch.proto.internal.v1.GetRequest;
import dev.goldfinch.proto.internal.v1.GetResponse;
import dev.goldfinch.proto.internal.v1.LookupRequest;
import dev.goldfinch.proto.internal.v1.LookupResponse;
import dev.goldfinch.proto.internal.v1.PutHeader;
import dev.goldfinch.proto.internal.v1.PutRequest;
import dev.goldfinch.proto.internal.v1.PutResponse;
import dev.goldfinch.proto.internal.v1.StatsRequest;
import dev.goldfinch.proto.internal.v1.StatsResponse;
import dev.goldfinch.service.GrpcErrors;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.util.HexFormat;
import java.util.concurrent.ExecutorService;
import java.util.function.Supplier;
import java.util.zip.CRC32C;

/**
 * The CacheStore gRPC service over a {@link PrefixCacheStore}. A Put is published only when its header
 * was followed by exactly {@code size} bytes matching {@code crc32c} and the client completed the stream:
 * a writer that dies or cancels midway leaves nothing behind. Store calls (Redis round trips) run on
 * their own executor, never on a transport thread.
 */
public final class CacheStoreGrpcService extends CacheStoreGrpc.CacheStoreImplBase {
    /** Chunk size on the wire: far below gRPC's 4 MiB message limit. */
    public static final int CHUNK_BYTES = 256 << 10;

    private final PrefixCacheStore store;
    private final long maxValueBytes;
    private final ExecutorService executor;
    private final Timer lookupTimer;
    private final Timer getTimer;
    private final Timer putTimer;

    public CacheStoreGrpcService(PrefixCacheStore store, long maxValueBytes, ExecutorService executor, MeterRegistry meters) {
        this.store = store;
        this.maxValueBytes = maxValueBytes;
        this.executor = executor;
        this.lookupTimer = timer(meters, "lookup");
        this.getTimer = timer(meters, "get");
        this.putTimer = timer(meters, "put");
        meters.gauge("goldfinch.cache.store.bytes", store, s -> s.stats().bytes());
    }

    private static Timer timer(MeterRegistry meters, String op) {
        return Timer.builder("goldfinch.cache.store.operation").description("Cache store operation latency")
                .tag("op", op).publishPercentileHistogram().register(meters);
    }

    @Override
    public void lookup(LookupRequest request, StreamObserver<LookupResponse> response) {
        if (request.getModel().isBlank()) {
            response.onError(GrpcErrors.invalid("model is required"));
            return;
        }
        int[] tokens = request.getTokensList().stream().mapToInt(Integer::intValue).toArray();
        respond(response, () -> lookupTimer.record(() -> {
            PrefixCacheStore.Lookup l = store.lookup(request.getModel(), request.getCacheSalt(), tokens,
                    Math.toIntExact(Math.min(Integer.MAX_VALUE, Integer.toUnsignedLong(request.getMaxLength()))));
            LookupResponse.Builder b = LookupResponse.newBuilder().setKeyBlocks(l.keyBlocks());
            if (l.hit()) {
                b.setCheckpoint(EntryRef.newBuilder().setModel(request.getModel())
                        .setPrefixHash(PrefixHasher.hex(l.checkpointHash())).setLength(l.checkpointLength()));
            }
            return b.build();
        }));
    }

    @Override
    public StreamObserver<PutRequest> put(StreamObserver<PutResponse> response) {
        return new StreamObserver<>() {
            private PutHeader header;
            private byte[] value;
            private int received;
            private boolean failed;

            @Override
            public void onNext(PutRequest part) {
                if (failed) {
                    return;
                }
                if (header == null) {
                    if (!part.hasHeader()) {
                        fail(GrpcErrors.invalid("the first Put message must be the header"));
                        return;
                    }
                    header = part.getHeader();
                    String problem = check(header);
                    if (problem != null) {
                        fail(GrpcErrors.invalid(problem));
                        return;
                    }
                    value = new byte[(int) header.getSize()];
                    return;
                }
                if (part.hasHeader()) {
                    fail(GrpcErrors.invalid("only one Put header per stream"));
                    return;
                }
                ByteString chunk = part.getChunk();
                if (chunk.size() > CHUNK_BYTES || received + (long) chunk.size() > value.length) {
                    fail(GrpcErrors.invalid("Put chunks exceed the announced size " + value.length + " (or a chunk exceeds " + CHUNK_BYTES + " bytes)"));
                    return;
                }
                chunk.copyTo(value, received);
                received += chunk.size();
            }

            private void fail(RuntimeException e) {
                failed = true;
                value = null;
                response.onError(e);
            }

            @Override
            public void onError(Throwable t) {
                value = null; // cancelled or broken midway: nothing is published
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
                if (received != value.length) {
                    response.onError(GrpcErrors.invalid("Put received " + received + " of " + value.length + " announced bytes"));
                    return;
                }
                CRC32C crc = new CRC32C();
                crc.update(value);
                if ((int) crc.getValue() != header.getCrc32C()) {
                    response.onError(GrpcErrors.toStatus(TypedFailure.invalidArgument("crc32c", "Put value fails its crc32c")));
                    return;
                }
                byte[] v = value;
                PutHeader h = header;
                respond(response, () -> putTimer.record(() -> {
                    EntryRef e = h.getEntry();
                    boolean written = store.put(e.getModel(), h.getKind(), HexFormat.of().parseHex(e.getPrefixHash()), e.getLength(),
                            h.getBlockHash().isEmpty() ? null : HexFormat.of().parseHex(h.getBlockHash()), v);
                    return PutResponse.newBuilder().setWritten(written).build();
                }));
            }
        };
    }

    private String check(PutHeader h) {
        String entry = checkEntry(h.getEntry(), h.getKind());
        if (entry != null) {
            return entry;
        }
        if (h.getSize() > maxValueBytes) {
            return "entry of " + h.getSize() + " bytes exceeds the store's limit of " + maxValueBytes;
        }
        if (!h.getBlockHash().isEmpty() && !PrefixHasher.isHex(h.getBlockHash())) {
            return "block_hash must be 32 hex digits";
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

    @Override
    public void get(GetRequest request, StreamObserver<GetResponse> response) {
        String problem = checkEntry(request.getEntry(), request.getKind());
        if (problem != null) {
            response.onError(GrpcErrors.invalid(problem));
            return;
        }
        ServerCallStreamObserver<GetResponse> call = (ServerCallStreamObserver<GetResponse>) response;
        executor.execute(() -> {
            try {
                var value = getTimer.record(() -> store.get(request.getEntry().getModel(), request.getKind(),
                        HexFormat.of().parseHex(request.getEntry().getPrefixHash())));
                if (value.isEmpty()) {
                    response.onError(GrpcErrors.toStatus(new TypedFailure(FailureKind.NOT_FOUND, "no complete entry " + request.getEntry().getPrefixHash())));
                    return;
                }
                byte[] v = value.get();
                for (int at = 0; at < v.length && !call.isCancelled(); at += CHUNK_BYTES) {
                    response.onNext(GetResponse.newBuilder().setChunk(ByteString.copyFrom(v, at, Math.min(CHUNK_BYTES, v.length - at))).build());
                }
                response.onCompleted();
            } catch (RuntimeException e) {
                response.onError(GrpcErrors.toStatus(e));
            }
        });
    }

    @Override
    public void stats(StatsRequest request, StreamObserver<StatsResponse> response) {
        respond(response, () -> {
            PrefixCacheStore.StoreStats s = store.stats();
            return StatsResponse.newBuilder().setBackend(s.backend()).setBytes(Math.max(0, s.bytes())).setHits(s.hits())
                    .setMisses(s.misses()).setLookupHits(s.lookupHits()).setLookupMisses(s.lookupMisses()).build();
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
