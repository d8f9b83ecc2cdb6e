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
    record Probe(boolean[] published, List<Set<String>> members) {
    }

    Probe probe(List<String> entryKeys, List<String> indexKeys);

    /** Publishes unless present (false then); adds {@code indexMember} to {@code indexKey} when that is non-null. */
    boolean publish(String key, byte[] value, String indexKey, String indexMember);

    /** The whole value, verified against its checksum; empty when missing, partial or corrupt. */
    Optional<byte[]> read(String key);

    /** Bytes held (an estimate for Redis). */
    long bytes();

    String describe();

    @Override
    void close();
}
