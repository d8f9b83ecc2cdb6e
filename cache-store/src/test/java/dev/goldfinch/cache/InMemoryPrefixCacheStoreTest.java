package dev.goldfinch.cache;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class InMemoryPrefixCacheStoreTest {
    final AtomicLong now = new AtomicLong(1_000_000);
    final Clock clock = new Clock() {
        @Override
        public ZoneOffset getZone() {
            return ZoneOffset.UTC;
        }

        @Override
        public Clock withZone(java.time.ZoneId zone) {
            return this;
        }

        @Override
        public Instant instant() {
            return Instant.ofEpochMilli(now.get());
        }
    };
    final InMemoryPrefixCacheStore store = new InMemoryPrefixCacheStore(new PrefixHasher(4), 10_000, Duration.ofHours(1), clock);
    final int[] prompt = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};

    private void keyBlocks(int n) {
        for (int b = 1; b <= n; b++) {
            store.putKeyBlock("m", "s", prompt, b, new byte[]{(byte) b});
        }
    }

    @Test
    void lookupFindsTheDeepestUsableCheckpointAlignedOrNot() {
        assertEquals(new PrefixCacheStore.Lookup(0, 0), store.lookup("m", "s", prompt, 10));
        keyBlocks(2);
        store.putCheckpoint("m", "s", prompt, 4, new byte[]{4});
        assertEquals(new PrefixCacheStore.Lookup(4, 2), store.lookup("m", "s", prompt, 10));
        store.putCheckpoint("m", "s", prompt, 10, new byte[]{10}); // e.g. the end of a previous generation
        assertEquals(new PrefixCacheStore.Lookup(10, 2), store.lookup("m", "s", prompt, 10));
        assertEquals(4, store.lookup("m", "s", prompt, 9).checkpointLength(), "a checkpoint past maxLength is unusable");
        int[] other = prompt.clone();
        other[9] = 77;
        assertEquals(4, store.lookup("m", "s", other, 10).checkpointLength(), "a different tail misses the tail checkpoint");
        assertArrayEquals(new byte[]{10}, store.getCheckpoint("m", "s", prompt, 10).orElseThrow());
    }

    @Test
    void aMissingKeyBlockCapsTheUsableDepth() {
        store.putKeyBlock("m", "s", prompt, 2, new byte[]{2}); // block 1 missing
        store.putCheckpoint("m", "s", prompt, 8, new byte[]{8});
        assertEquals(new PrefixCacheStore.Lookup(0, 0), store.lookup("m", "s", prompt, 10));
    }

    @Test
    void tenantsNeverShareEntries() {
        keyBlocks(2);
        store.putCheckpoint("m", "s", prompt, 8, new byte[]{8});
        assertFalse(store.lookup("m", "other", prompt, 10).hit());
        assertFalse(store.lookup("other-model", "s", prompt, 10).hit());
        assertTrue(store.getCheckpoint("m", "other", prompt, 8).isEmpty());
    }

    @Test
    void corruptValuesAndExpiredEntriesAreMisses() {
        keyBlocks(1);
        store.putCheckpoint("m", "s", prompt, 4, new byte[]{4, 4});
        store.corrupt("m", "s", prompt, 4);
        assertTrue(store.getCheckpoint("m", "s", prompt, 4).isEmpty());
        assertTrue(store.putCheckpoint("m", "s", prompt, 4, new byte[]{4, 4}), "a corrupt entry can be rewritten");
        assertFalse(store.putCheckpoint("m", "s", prompt, 4, new byte[]{4, 4}), "entries are immutable");
        now.addAndGet(Duration.ofHours(2).toMillis());
        assertTrue(store.getCheckpoint("m", "s", prompt, 4).isEmpty());
        assertFalse(store.lookup("m", "s", prompt, 10).hit());
    }

    @Test
    void leastRecentlyUsedEntriesGoFirstWhenFull() {
        int[] a = {1, 2, 3, 4};
        int[] b = {5, 6, 7, 8};
        int[] c = {9, 10, 11, 12};
        store.putCheckpoint("m", "s", a, 4, new byte[4000]);
        store.putCheckpoint("m", "s", b, 4, new byte[4000]);
        store.getCheckpoint("m", "s", a, 4); // a is now the most recent
        store.putCheckpoint("m", "s", c, 4, new byte[4000]);
        assertTrue(store.getCheckpoint("m", "s", a, 4).isPresent());
        assertTrue(store.getCheckpoint("m", "s", b, 4).isEmpty());
        assertTrue(store.bytes() <= 10_000);
    }
}
