package dev.goldfinch.cache.client;

import com.google.protobuf.ByteString;
import dev.goldfinch.cache.PrefixCacheStore;
import dev.goldfinch.cache.PrefixHasher;
import dev.goldfinch.proto.internal.v1.CacheStoreGrpc;
import dev.goldfinch.proto.internal.v1.EntryKind;
import dev.goldfinch.proto.internal.v1.EntryRef;
import dev.goldfinch.proto.internal.v1.ForgetRequest;
import dev.goldfinch.proto.internal.v1.GetManyRequest;
import dev.goldfinch.proto.internal.v1.GetManyResponse;
import dev.goldfinch.proto.internal.v1.LookupRequest;
import dev.goldfinch.proto.internal.v1.LookupResponse;
import dev.goldfinch.proto.internal.v1.PutHeader;
import dev.goldfinch.proto.internal.v1.PutRequest;
import dev.goldfinch.proto.internal.v1.PutResponse;
import dev.goldfinch.proto.internal.v1.StatsRequest;
import dev.goldfinch.proto.internal.v1.StatsResponse;
import io.grpc.Deadline;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32C;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@link PrefixCacheStore} over the CacheStore gRPC service: a lookup, a batch of reads ({@code GetMany})
 * or a batch of writes (one {@code Put} stream) is one call. Store trouble (unreachable, deadline) is
 * logged and answered as a miss or an unwritten entry: the cache can only ever make a request faster.
 * Each call's deadline is the store timeout, or the deadline of the request it is made for
 * ({@link RequestDeadline}) when that comes sooner: a lookup never outlives the client that waits for it.
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
        return CacheStoreGrpc.newBlockingStub(channel).withDeadline(callDeadline());
    }

    /** The store timeout from now, or the request's deadline when sooner. */
    private Deadline callDeadline() {
        Deadline own = Deadline.after(deadline.toMillis(), TimeUnit.MILLISECONDS);
        Deadline request = RequestDeadline.current();
        return request == null ? own : own.minimum(request);
    }

    @Override
    public Lookup lookup(String model, String salt, int[] tokens, int maxLength) {
        LookupRequest.Builder req =
                LookupRequest.newBuilder().setModel(model).setCacheSalt(salt).setMaxLength(maxLength);
        for (int t : tokens) {
            req.addTokens(t);
        }
        try {
            LookupResponse r = blocking().lookup(req.build());
            if (!r.hasCheckpoint()) {
                return new Lookup(0, null, r.getKeyBlocks());
            }
            return new Lookup(
                    r.getCheckpoint().getLength(),
                    HexFormat.of().parseHex(r.getCheckpoint().getPrefixHash()),
                    r.getKeyBlocks());
        } catch (StatusRuntimeException e) {
            log.warn("cache lookup failed, treating as a miss: {}", e.getStatus());
            return Lookup.MISS;
        }
    }

    /** One Put stream for every entry (more only past {@link #MAX_BATCH_ENTRIES}), in order. */
    @Override
    public int putAll(String model, List<Entry> entries) {
        int written = 0;
        for (int from = 0; from < entries.size(); from += MAX_BATCH_ENTRIES) {
            written += putBatch(model, entries.subList(from, Math.min(entries.size(), from + MAX_BATCH_ENTRIES)));
        }
        return written;
    }

    private int putBatch(String model, List<Entry> entries) {
        CompletableFuture<Integer> done = new CompletableFuture<>();
        Deadline callDeadline = callDeadline();
        StreamObserver<PutRequest> out = CacheStoreGrpc.newStub(channel)
                .withDeadline(callDeadline)
                .put(new StreamObserver<>() {
                    @Override
                    public void onNext(PutResponse r) {
                        done.complete(r.getEntriesWritten());
                    }

                    @Override
                    public void onError(Throwable t) {
                        done.completeExceptionally(t);
                    }

                    @Override
                    public void onCompleted() {
                        done.complete(0);
                    }
                });
        for (Entry e : entries) {
            byte[] value = e.value();
            CRC32C crc = new CRC32C();
            crc.update(value);
            PutHeader.Builder header = PutHeader.newBuilder()
                    .setKind(e.kind())
                    .setSize(value.length)
                    .setCrc32C((int) crc.getValue())
                    .setEntry(EntryRef.newBuilder()
                            .setModel(model)
                            .setPrefixHash(PrefixHasher.hex(e.hash()))
                            .setLength(e.length()));
            if (e.blockHash() != null) {
                header.setBlockHash(PrefixHasher.hex(e.blockHash()));
            }
            out.onNext(PutRequest.newBuilder().setHeader(header).build());
            for (int at = 0; at < value.length; at += WIRE_CHUNK_BYTES) {
                out.onNext(PutRequest.newBuilder()
                        .setChunk(ByteString.copyFrom(value, at, Math.min(WIRE_CHUNK_BYTES, value.length - at)))
                        .build());
            }
        }
        out.onCompleted();
        try {
            return done.get(callDeadline.timeRemaining(TimeUnit.MILLISECONDS) + 1000, TimeUnit.MILLISECONDS);
        } catch (Exception e) {
            log.warn(
                    "cache put of {} entries failed; they stay unwritten: {}",
                    entries.size(),
                    e.getCause() != null ? e.getCause().toString() : e.toString());
            return 0;
        }
    }

    /** One GetMany call for every hash (more only past {@link #MAX_BATCH_ENTRIES}). */
    @Override
    public List<Optional<byte[]>> getAll(String model, EntryKind kind, List<byte[]> hashes) {
        List<Optional<byte[]>> values = new ArrayList<>(hashes.size());
        for (int from = 0; from < hashes.size(); from += MAX_BATCH_ENTRIES) {
            values.addAll(
                    getBatch(model, kind, hashes.subList(from, Math.min(hashes.size(), from + MAX_BATCH_ENTRIES))));
        }
        return values;
    }

    private List<Optional<byte[]>> getBatch(String model, EntryKind kind, List<byte[]> hashes) {
        GetManyRequest.Builder req = GetManyRequest.newBuilder().setModel(model).setKind(kind);
        for (byte[] h : hashes) {
            req.addPrefixHashes(PrefixHasher.hex(h));
        }
        List<Optional<byte[]>> values = new ArrayList<>(Collections.nCopies(hashes.size(), Optional.empty()));
        ByteArrayOutputStream value = new ByteArrayOutputStream();
        int next = 0; // the entry the next message must belong to
        try {
            Iterator<GetManyResponse> parts = blocking().getMany(req.build());
            while (parts.hasNext()) {
                GetManyResponse part = parts.next();
                if (part.getIndex() != next) {
                    log.warn(
                            "cache GetMany answered entry {} where {} was due; treating the rest as misses",
                            part.getIndex(),
                            next);
                    parts.forEachRemaining(ignored -> {}); // ends the call rather than leaving it to the deadline
                    return values;
                }
                if (!part.getMissing()) {
                    part.getChunk().writeTo(value);
                }
                if (part.getLast()) {
                    if (!part.getMissing()) {
                        values.set(next, Optional.of(value.toByteArray()));
                    }
                    value.reset();
                    next++;
                }
            }
            return values;
        } catch (StatusRuntimeException e) {
            log.warn("cache get of {} entries failed, treating them as misses: {}", hashes.size(), e.getStatus());
            return new ArrayList<>(Collections.nCopies(hashes.size(), Optional.empty()));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public boolean forget(String model, EntryKind kind, byte[] hash) {
        try {
            return blocking()
                    .forget(ForgetRequest.newBuilder()
                            .setKind(kind)
                            .setEntry(EntryRef.newBuilder().setModel(model).setPrefixHash(PrefixHasher.hex(hash)))
                            .build())
                    .getForgotten();
        } catch (StatusRuntimeException e) {
            log.warn("cache forget failed; the entry stays until it expires: {}", e.getStatus());
            return false;
        }
    }

    @Override
    public StoreStats stats() {
        StatsResponse s = blocking().stats(StatsRequest.getDefaultInstance());
        return new StoreStats(
                s.getBackend(), s.getBytes(), s.getHits(), s.getMisses(), s.getLookupHits(), s.getLookupMisses());
    }

    @Override
    public void close() {
        if (ownsChannel) {
            channel.shutdown();
        }
    }
}
