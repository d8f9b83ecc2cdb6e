package dev.goldfinch.cache;

import dev.goldfinch.proto.internal.v1.EntryKind;
import java.util.List;
import java.util.Optional;

/**
 * The prefix cache (ARCHITECTURE §4–5): immutable, content-addressed entries of two kinds — the
 * compressed keys of one full block ({@link EntryKind#ENTRY_KIND_KEY_BLOCK}, addressed by the block's
 * chain hash) and a recurrent-state checkpoint after any prefix ({@link EntryKind#ENTRY_KIND_CHECKPOINT},
 * addressed by the prefix hash). Addresses come from {@link PrefixHasher}; values are opaque bytes (the
 * engine's codec). A missing, partial or corrupt entry is a miss, never an error. Implemented by the cache
 * store's {@code PrefixCache} over a local backend and by the cache client's {@code RemotePrefixCacheStore}
 * over gRPC, where each call below is one round trip.
 */
public interface PrefixCacheStore extends AutoCloseable {
    /** Values travel the CacheStore wire in pieces of at most this many bytes, far below gRPC's 4 MiB message limit. */
    int WIRE_CHUNK_BYTES = 256 << 10;
    /** Entries in one batched call (a 256K-token prefix of 64-token blocks); larger batches are split by the client. */
    int MAX_BATCH_ENTRIES = 4096;

    /** The deepest checkpoint usable for a prompt (length 0 and no hash on a miss) and the full key blocks present from the start. */
    record Lookup(int checkpointLength, byte[] checkpointHash, int keyBlocks) {
        public static final Lookup MISS = new Lookup(0, null, 0);

        public boolean hit() {
            return checkpointLength > 0;
        }
    }

    /**
     * One entry to publish. {@code length}: tokens the entry covers. {@code blockHash}: for a checkpoint off a
     * block boundary, the hash of the aligned prefix before it (where lookup finds it); null otherwise.
     */
    record Entry(EntryKind kind, byte[] hash, int length, byte[] blockHash, byte[] value) {}

    /** {@code maxLength}: the longest prefix the caller can use (a prompt of n tokens resumes from at most n−1). */
    Lookup lookup(String model, String salt, int[] tokens, int maxLength);

    /**
     * Publishes each entry under its address unless one is already there (entries are immutable), in list
     * order, so key blocks listed before a checkpoint are in place when it appears; returns how many were
     * written. Nothing is published unless the whole batch arrived.
     */
    int putAll(String model, List<Entry> entries);

    /** The complete, checksum-verified values of {@code hashes} (one kind), in order; empty where missing or unusable. */
    List<Optional<byte[]>> getAll(String model, EntryKind kind, List<byte[]> hashes);

    /**
     * Removes an entry its reader found unusable (a failed signature), so the next writer can replace it;
     * best-effort: false when it was not there or the store could not be reached.
     */
    boolean forget(String model, EntryKind kind, byte[] hash);

    /** {@link #putAll} of one entry: false when an entry was already there. */
    default boolean put(String model, EntryKind kind, byte[] hash, int length, byte[] blockHash, byte[] value) {
        return putAll(model, List.of(new Entry(kind, hash, length, blockHash, value))) == 1;
    }

    /** {@link #getAll} of one entry. */
    default Optional<byte[]> get(String model, EntryKind kind, byte[] hash) {
        return getAll(model, kind, List.of(hash)).getFirst();
    }

    StoreStats stats();

    @Override
    void close();

    record StoreStats(String backend, long bytes, long hits, long misses, long lookupHits, long lookupMisses) {}
}
