package dev.goldfinch.cache;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.proto.internal.v1.EntryKind;
import java.util.Random;
import java.util.UUID;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** What every backend must do behind {@link PrefixCache}; run once per backend. */
abstract class PrefixCacheContractTest {
    static final int B = 8;
    PrefixCache cache;
    PrefixHasher hasher = new PrefixHasher(B);
    /** A fresh model id per test keeps tests apart on a shared Redis. */
    String model;

    int[] tokens;

    abstract CacheBackend backend();

    @BeforeEach
    void setUp() {
        cache = new PrefixCache(backend(), hasher);
        model = UUID.randomUUID().toString().substring(0, 8);
        tokens = new Random(7).ints(40, 0, 1000).toArray();
    }

    @AfterEach
    void tearDown() {
        cache.close();
    }

    void putBlocks(String salt, int upTo) {
        byte[][] chain = hasher.chain(model, salt, tokens, upTo * B);
        for (int i = 1; i <= upTo; i++) {
            cache.put(model, EntryKind.ENTRY_KIND_KEY_BLOCK, chain[i], i * B, null, ("keys" + i).getBytes());
        }
    }

    boolean putCheckpoint(String salt, int length, byte[] value) {
        byte[] hash = hasher.prefix(model, salt, tokens, length);
        byte[] block = length % B == 0 ? null : hasher.prefix(model, salt, tokens, length - length % B);
        return cache.put(model, EntryKind.ENTRY_KIND_CHECKPOINT, hash, length, block, value);
    }

    @Test
    void emptyCacheMisses() {
        PrefixCacheStore.Lookup l = cache.lookup(model, "", tokens, 39);
        assertFalse(l.hit());
        assertEquals(0, l.keyBlocks());
        assertNull(l.checkpointHash());
    }

    @Test
    void findsTheDeepestCheckpointWhoseKeyBlocksArePresent() {
        putBlocks("", 3);
        putCheckpoint("", 16, new byte[] {1});
        putCheckpoint("", 27, new byte[] {2}); // off the boundary: found through block 3's index
        putCheckpoint("", 35, new byte[] {3}); // needs key block 4, which is absent
        PrefixCacheStore.Lookup l = cache.lookup(model, "", tokens, 39);
        assertEquals(3, l.keyBlocks());
        assertEquals(27, l.checkpointLength());
        assertArrayEquals(hasher.prefix(model, "", tokens, 27), l.checkpointHash());
        assertEquals(16, cache.lookup(model, "", tokens, 26).checkpointLength(), "max length bounds the answer");
        assertArrayEquals(
                new byte[] {2},
                cache.get(model, EntryKind.ENTRY_KIND_CHECKPOINT, l.checkpointHash())
                        .orElseThrow());
    }

    @Test
    void aDifferentPromptOrSaltNeverMatches() {
        putBlocks("", 2);
        putCheckpoint("", 16, new byte[] {1});
        putCheckpoint("", 13, new byte[] {2});
        int[] other = tokens.clone();
        other[12] = 9999; // diverges inside block 2
        assertEquals(8, cache.lookup(model, "", other, 39).keyBlocks() * B);
        assertFalse(cache.lookup(model, "", other, 39).hit(), "no checkpoint at or before the divergence");
        assertFalse(cache.lookup(model, "tenant-b", tokens, 39).hit(), "salts isolate tenants");
        assertEquals(0, cache.lookup(model, "tenant-b", tokens, 39).keyBlocks());
    }

    @Test
    void entriesAreImmutable() {
        putBlocks("", 1);
        assertTrue(putCheckpoint("", 8, new byte[] {1, 2, 3}));
        assertFalse(putCheckpoint("", 8, new byte[] {9}));
        assertArrayEquals(
                new byte[] {1, 2, 3},
                cache.get(model, EntryKind.ENTRY_KIND_CHECKPOINT, hasher.prefix(model, "", tokens, 8))
                        .orElseThrow());
    }

    @Test
    void largeValuesRoundTrip() {
        byte[] big = new byte[3 * 1024 * 1024 + 17];
        new Random(1).nextBytes(big);
        putBlocks("", 2);
        putCheckpoint("", 16, big);
        assertArrayEquals(
                big,
                cache.get(model, EntryKind.ENTRY_KIND_CHECKPOINT, hasher.prefix(model, "", tokens, 16))
                        .orElseThrow());
    }
}
