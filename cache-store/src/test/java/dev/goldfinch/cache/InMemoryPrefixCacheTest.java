package dev.goldfinch.cache;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.proto.internal.v1.EntryKind;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import org.junit.jupiter.api.Test;

class InMemoryPrefixCacheTest extends PrefixCacheContractTest {
    InMemoryCacheBackend memory;
    MutableClock clock = new MutableClock();

    @Override
    CacheBackend backend() {
        memory = new InMemoryCacheBackend(64L << 20, Duration.ofMinutes(10), clock);
        return memory;
    }

    @Test
    void aCorruptValueIsAMissAndIsDropped() {
        putBlocks("", 1);
        putCheckpoint("", 8, new byte[] {1, 2, 3});
        assertTrue(memory.corrupt(
                PrefixCache.key(model, EntryKind.ENTRY_KIND_CHECKPOINT, hasher.prefix(model, "", tokens, 8))));
        assertTrue(cache.get(model, EntryKind.ENTRY_KIND_CHECKPOINT, hasher.prefix(model, "", tokens, 8))
                .isEmpty());
        assertFalse(cache.lookup(model, "", tokens, 39).hit(), "a dropped entry is no longer offered");
        assertTrue(putCheckpoint("", 8, new byte[] {1, 2, 3}), "and can be written again");
    }

    @Test
    void entriesExpireAndTheLeastRecentlyUsedGoFirst() {
        putBlocks("", 1);
        putCheckpoint("", 8, new byte[100]);
        clock.advance(Duration.ofMinutes(11));
        assertFalse(cache.lookup(model, "", tokens, 39).hit());
        assertEquals(0, cache.lookup(model, "", tokens, 39).keyBlocks());

        InMemoryCacheBackend small = new InMemoryCacheBackend(1000, Duration.ofMinutes(10), clock);
        small.publish("a", new byte[400], null, null);
        small.publish("b", new byte[400], null, null);
        small.read("a"); // a is now the most recent
        small.publish("c", new byte[400], "idx", "m"); // over the bound: b goes
        assertTrue(small.read("a").isPresent());
        assertTrue(small.read("b").isEmpty());
        assertTrue(small.read("c").isPresent());
        assertTrue(small.bytes() <= 1000);
    }

    static final class MutableClock extends Clock {
        Instant now = Instant.parse("2026-01-01T00:00:00Z");

        void advance(Duration d) {
            now = now.plus(d);
        }

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
            return now;
        }
    }
}
