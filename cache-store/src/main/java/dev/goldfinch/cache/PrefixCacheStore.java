package dev.goldfinch.cache;

import java.util.Optional;

/**
 * The prefix cache (ARCHITECTURE §4–5): immutable, content-addressed entries of two kinds — the
 * compressed keys of a full block, and a recurrent-state checkpoint at any prefix length. Values are
 * opaque bytes (the engine's codec). A missing, partial or corrupt entry is a miss, never an error.
 */
public interface PrefixCacheStore {
    /** The deepest checkpoint usable for a prompt, and how many full key blocks are present from the start. */
    record Lookup(int checkpointLength, int keyBlocks) {
        public boolean hit() {
            return checkpointLength > 0;
        }
    }

    /** {@code maxLength}: the longest prefix the caller can use (a prompt of n tokens resumes from at most n−1). */
    Lookup lookup(String model, String salt, int[] tokens, int maxLength);

    /** Stores the keys of block {@code block} (1-based) of {@code tokens}; false when it already existed. */
    boolean putKeyBlock(String model, String salt, int[] tokens, int block, byte[] value);

    Optional<byte[]> getKeyBlock(String model, String salt, int[] tokens, int block);

    /** Stores the checkpoint after {@code tokens[0..length)}; false when it already existed. */
    boolean putCheckpoint(String model, String salt, int[] tokens, int length, byte[] value);

    Optional<byte[]> getCheckpoint(String model, String salt, int[] tokens, int length);
}
