package dev.goldfinch.cache;

import dev.goldfinch.proto.internal.v1.EntryKind;
import java.util.Optional;

/**
 * The prefix cache (ARCHITECTURE §4–5): immutable, content-addressed entries of two kinds — the
 * compressed keys of one full block ({@link EntryKind#ENTRY_KIND_KEY_BLOCK}, addressed by the block's
 * chain hash) and a recurrent-state checkpoint after any prefix ({@link EntryKind#ENTRY_KIND_CHECKPOINT},
 * addressed by the prefix hash). Addresses come from {@link PrefixHasher}; values are opaque bytes (the
 * engine's codec). A missing, partial or corrupt entry is a miss, never an error. Implemented by
 * {@link PrefixCache} over a local backend and by {@link RemotePrefixCacheStore} over gRPC.
 */
public interface PrefixCacheStore extends AutoCloseable {
    /** The deepest checkpoint usable for a prompt (length 0 and no hash on a miss) and the full key blocks present from the start. */
    record Lookup(int checkpointLength, byte[] checkpointHash, int keyBlocks) {
        public static final Lookup MISS = new Lookup(0, null, 0);

        public boolean hit() {
            return checkpointLength > 0;
        }
    }

    /** {@code maxLength}: the longest prefix the caller can use (a prompt of n tokens resumes from at most n−1). */
    Lookup lookup(String model, String salt, int[] tokens, int maxLength);

    /**
     * Publishes {@code value} under its address unless an entry is already there (entries are immutable);
     * false when one was. {@code length}: tokens the entry covers. {@code blockHash}: for a checkpoint off a
     * block boundary, the hash of the aligned prefix before it (where lookup finds it); null otherwise.
     */
    boolean put(String model, EntryKind kind, byte[] hash, int length, byte[] blockHash, byte[] value);

    /** The complete, checksum-verified value, or empty. */
    Optional<byte[]> get(String model, EntryKind kind, byte[] hash);

    StoreStats stats();

    @Override
    void close();

    record StoreStats(String backend, long bytes, long hits, long misses, long lookupHits, long lookupMisses) {
    }
}
