package dev.goldfinch.cache.grpc;

import com.google.protobuf.ByteString;
import dev.goldfinch.cache.PrefixCacheStore;
import dev.goldfinch.cache.PrefixHasher;
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
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import java.io.ByteArrayOutputStream;
import java.time.Duration;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32C;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@link PrefixCacheStore} over the CacheStore gRPC service. Store trouble (unreachable, deadline) is
 * logged and answered as a miss or an unwritten entry: the cache can only ever make a request faster.
 */
public final class RemotePrefixCacheStore implements PrefixCacheStore {
    private static final Logger log = LoggerFactory.getLogger(RemotePrefixCacheStore.class);

    private final ManagedChannel channel;
    private final boolean ownsChannel;
    private final Duration deadline;

    public RemotePrefixCacheStore(ManagedChannel channel, boolean ownsChannel, Duration deadline) {
        this.channel = channel;
        this.ownsChannel = ownsChannel;
        this.deadline = deadline;
    }

    private CacheStoreGrpc.CacheStoreBlockingStub blocking() {
        return CacheStoreGrpc.newBlockingStub(channel).withDeadlineAfter(deadline.toMillis(), TimeUnit.MILLISECONDS);
    }

    @Override
    public Lookup lookup(String model, String salt, int[] tokens, int maxLength) {
        LookupRequest.Builder req = LookupRequest.newBuilder().setModel(model).setCacheSalt(salt).setMaxLength(maxLength);
        for (int t : tokens) {
            req.addTokens(t);
        }
        try {
            LookupResponse r = blocking().lookup(req.build());
            if (!r.hasCheckpoint()) {
                return new Lookup(0, null, r.getKeyBlocks());
            }
            return new Lookup(r.getCheckpoint().getLength(), HexFormat.of().parseHex(r.getCheckpoint().getPrefixHash()), r.getKeyBlocks());
        } catch (StatusRuntimeException e) {
            log.warn("cache lookup failed, treating as a miss: {}", e.getStatus());
            return Lookup.MISS;
        }
    }

    @Override
    public boolean put(String model, EntryKind kind, byte[] hash, int length, byte[] blockHash, byte[] value) {
        CompletableFuture<Boolean> done = new CompletableFuture<>();
        StreamObserver<PutRequest> out = CacheStoreGrpc.newStub(channel).withDeadlineAfter(deadline.toMillis(), TimeUnit.MILLISECONDS)
                .put(new StreamObserver<>() {
                    @Override
                    public void onNext(PutResponse r) {
                        done.complete(r.getWritten());
                    }

                    @Override
                    public void onError(Throwable t) {
                        done.completeExceptionally(t);
                    }

                    @Override
                    public void onCompleted() {
                        done.complete(false);
                    }
                });
        CRC32C crc = new CRC32C();
        crc.update(value);
        PutHeader.Builder header = PutHeader.newBuilder().setKind(kind).setSize(value.length).setCrc32C((int) crc.getValue())
                .setEntry(EntryRef.newBuilder().setModel(model).setPrefixHash(PrefixHasher.hex(hash)).setLength(length));
        if (blockHash != null) {
            header.setBlockHash(PrefixHasher.hex(blockHash));
        }
        out.onNext(PutRequest.newBuilder().setHeader(header).build());
        for (int at = 0; at < value.length; at += CacheStoreGrpcService.CHUNK_BYTES) {
            out.onNext(PutRequest.newBuilder().setChunk(ByteString.copyFrom(value, at,
                    Math.min(CacheStoreGrpcService.CHUNK_BYTES, value.length - at))).build());
        }
        out.onCompleted();
        try {
            return done.get(deadline.toMillis() + 1000, TimeUnit.MILLISECONDS);
        } catch (Exception e) {
            log.warn("cache put failed; the entry stays unwritten: {}", e.getCause() != null ? e.getCause().toString() : e.toString());
            return false;
        }
    }

    @Override
    public Optional<byte[]> get(String model, EntryKind kind, byte[] hash) {
        GetRequest req = GetRequest.newBuilder().setKind(kind)
                .setEntry(EntryRef.newBuilder().setModel(model).setPrefixHash(PrefixHasher.hex(hash))).build();
        ByteArrayOutputStream value = new ByteArrayOutputStream();
        try {
            Iterator<GetResponse> chunks = blocking().get(req);
            while (chunks.hasNext()) {
                chunks.next().getChunk().writeTo(value);
            }
            return Optional.of(value.toByteArray());
        } catch (StatusRuntimeException e) {
            if (e.getStatus().getCode() != Status.Code.NOT_FOUND) {
                log.warn("cache get failed, treating as a miss: {}", e.getStatus());
            }
            return Optional.empty();
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public StoreStats stats() {
        StatsResponse s = blocking().stats(StatsRequest.getDefaultInstance());
        return new StoreStats(s.getBackend(), s.getBytes(), s.getHits(), s.getMisses(), s.getLookupHits(), s.getLookupMisses());
    }

    @Override
    public void close() {
        if (ownsChannel) {
            channel.shutdown();
        }
    }

}
