package dev.goldfinch.cache;

import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.zip.CRC32C;

/**
 * The embedded backend for one machine: least-recently-used eviction by bytes (index sets count too,
 * so nothing grows without bound), a TTL per key, and a CRC32C per value checked on every read.
 */
public final class InMemoryCacheBackend implements CacheBackend {
    private sealed interface Item permits Blob, Index {
        long bytes();

        long expiresAtMillis();
    }

    private record Blob(byte[] value, int crc, long expiresAtMillis) implements Item {
        public long bytes() {
            return value.length;
        }
    }

    private record Index(Set<String> members, long expiresAtMillis) implements Item {
        public long bytes() {
            return members.stream().mapToLong(m -> m.length() + 16L).sum();
        }
    }

    private final long maxBytes;
    private final Duration ttl;
    private final Clock clock;
    private final LinkedHashMap<String, Item> items = new LinkedHashMap<>(64, 0.75f, true);
    private long bytes;

    public InMemoryCacheBackend(long maxBytes, Duration ttl, Clock clock) {
        if (maxBytes <= 0 || ttl.isNegative() || ttl.isZero()) {
            throw new IllegalArgumentException("the in-memory cache needs a positive size and TTL");
        }
        this.maxBytes = maxBytes;
        this.ttl = ttl;
        this.clock = clock;
    }

    @Override
    public synchronized Probe probe(List<String> entryKeys, List<String> indexKeys) {
        boolean[] published = new boolean[entryKeys.size()];
        for (int i = 0; i < published.length; i++) {
            published[i] = live(entryKeys.get(i)) instanceof Blob;
        }
        List<Set<String>> members = new ArrayList<>(indexKeys.size());
        for (String k : indexKeys) {
            members.add(live(k) instanceof Index(Set<String> m, long ignored) ? Set.copyOf(m) : Set.of());
        }
        return new Probe(published, members);
    }

    @Override
    public synchronized boolean[] publishAll(List<Write> writes) {
        boolean[] written = new boolean[writes.size()];
        for (int i = 0; i < written.length; i++) {
            written[i] = publishOne(writes.get(i));
        }
        evict();
        return written;
    }

    private boolean publishOne(Write w) {
        if (live(w.key()) != null) {
            return false;
        }
        long expires = clock.millis() + ttl.toMillis();
        CRC32C crc = new CRC32C();
        crc.update(w.value());
        replace(w.key(), new Blob(w.value().clone(), (int) crc.getValue(), expires));
        if (w.indexKey() != null) {
            Set<String> members = new LinkedHashSet<>();
            if (live(w.indexKey()) instanceof Index(Set<String> m, long ignored)) {
                members.addAll(m);
            }
            members.add(w.indexMember());
            replace(w.indexKey(), new Index(members, expires));
        }
        return true;
    }

    @Override
    public synchronized List<Optional<byte[]>> readAll(List<String> keys) {
        List<Optional<byte[]>> values = new ArrayList<>(keys.size());
        for (String key : keys) {
            values.add(readOne(key));
        }
        return values;
    }

    private Optional<byte[]> readOne(String key) {
        if (!(live(key) instanceof Blob b)) {
            return Optional.empty();
        }
        CRC32C crc = new CRC32C();
        crc.update(b.value());
        if ((int) crc.getValue() != b.crc()) {
            remove(key); // corrupt: a miss, and gone so the next writer can replace it
            return Optional.empty();
        }
        return Optional.of(b.value().clone());
    }

    @Override
    public synchronized long bytes() {
        return bytes;
    }

    @Override
    public String describe() {
        return "memory";
    }

    @Override
    public void close() {}

    /** For the corruption tests: flips one bit of a stored value in place, as a bad disk or a bug would. */
    public synchronized boolean corrupt(String key) {
        if (items.get(key) instanceof Blob b && b.value().length > 0) {
            b.value()[b.value().length / 2] ^= 1;
            return true;
        }
        return false;
    }

    @Override
    public boolean delete(String key) {
        return drop(key);
    }

    /** For the eviction tests: drops one key, as the LRU would; whether it was there. */
    public synchronized boolean drop(String key) {
        boolean present = items.containsKey(key);
        remove(key);
        return present;
    }

    public synchronized Set<String> keys() {
        return Set.copyOf(items.keySet());
    }

    private Item live(String key) {
        Item item = items.get(key);
        if (item != null && item.expiresAtMillis() <= clock.millis()) {
            remove(key);
            return null;
        }
        return item;
    }

    private void replace(String key, Item item) {
        remove(key);
        items.put(key, item);
        bytes += item.bytes();
    }

    private void remove(String key) {
        Item old = items.remove(key);
        if (old != null) {
            bytes -= old.bytes();
        }
    }

    private void evict() {
        Iterator<Map.Entry<String, Item>> lru = items.entrySet().iterator();
        while (bytes > maxBytes && lru.hasNext()) {
            bytes -= lru.next().getValue().bytes();
            lru.remove();
        }
    }
}
