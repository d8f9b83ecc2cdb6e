package dev.goldfinch.cache;

import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * The storage primitives {@link PrefixCache} needs, over string keys and byte values: embedded
 * ({@link InMemoryCacheBackend}) or Redis ({@link RedisCacheBackend}). A value is published whole or not
 * at all, and read back verified or not at all.
 */
public interface CacheBackend extends AutoCloseable {
    /** Which entry keys hold a published value, and the members of each index set: one round trip. */
    record Probe(boolean[] published, List<Set<String>> members) {}

    /** A value to publish under {@code key}, adding {@code indexMember} to {@code indexKey} when that is non-null. */
    record Write(String key, byte[] value, String indexKey, String indexMember) {}

    Probe probe(List<String> entryKeys, List<String> indexKeys);

    /**
     * Publishes each value unless its key is present; the batch's last value becomes visible only after
     * every earlier one (a checkpoint after its key blocks). Per write, whether it was written.
     */
    boolean[] publishAll(List<Write> writes);

    /** The whole values, each verified against its checksum; empty where missing, partial or corrupt. */
    List<Optional<byte[]>> readAll(List<String> keys);

    /** Removes the value under {@code key} (its chunks, if any, are left to expire); whether it was there. */
    boolean delete(String key);

    /** {@link #publishAll} of one value: false when the key was present. */
    default boolean publish(String key, byte[] value, String indexKey, String indexMember) {
        return publishAll(List.of(new Write(key, value, indexKey, indexMember)))[0];
    }

    /** {@link #readAll} of one key. */
    default Optional<byte[]> read(String key) {
        return readAll(List.of(key)).getFirst();
    }

    /** Bytes held (an estimate for Redis). */
    long bytes();

    String describe();

    @Override
    void close();
}
