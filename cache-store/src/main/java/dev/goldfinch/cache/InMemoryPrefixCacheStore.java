package dev.goldfinch.cache;

import java.time.Clock;
import java.time.Duration;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.zip.CRC32C;

/**
 * The embedded store for one machine: the same semantics as Redis with {@code allkeys-lru} and a TTL —
 * entries bounded by total bytes (least recently used evicted first) and by age — and every value
 * checked against the CRC32C taken when it was written. Thread-safe.
 */
public final class InMemoryPrefixCacheStore implements PrefixCacheStore {
    private record Entry(byte[] value, int crc, long expiresAtMillis) {
    }

    private final PrefixHasher hasher;
    private final long maxBytes;
    private final Duration ttl;
    private final Clock clock;
    private final LinkedHashMap<String, Entry> entries = new LinkedHashMap<>(16, 0.75f, true);
    /** Per full-block address: the tail lengths (1..B-1) at which checkpoints exist after it. */
    private final Map<String, Set<Integer>> tails = new LinkedHashMap<>();
    private long bytes;

    public InMemoryPrefixCacheStore(PrefixHasher hasher, long maxBytes, Duration ttl, Clock clock) {
        this.hasher = hasher;
        this.maxBytes = maxBytes;
        this.ttl = ttl;
        this.clock = clock;
    }

    private static String key(byte[] hash, char kind) {
        return PrefixHasher.hex(hash) + ":" + kind;
    }

    @Override
    public synchronized Lookup lookup(String model, String salt, int[] tokens, int maxLength) {
        int usable = Math.min(maxLength, tokens.length);
        byte[][] chain = hasher.chain(model, salt, tokens, usable);
        int keyBlocks = 0;
        while (keyBlocks + 1 < chain.length && present(key(chain[keyBlocks + 1], 'k'))) {
            keyBlocks++;
        }
        int best = 0;
        int b = hasher.blockSize();
        // Checkpoints need the key blocks before them: search blocks 0..keyBlocks, deepest first.
        for (int j = keyBlocks; j >= 0 && best == 0; j--) {
            for (int tail : tails.getOrDefault(key(chain[j], 'x'), Set.of())) {
                int p = j * b + tail;
                if (p <= usable && p > best && present(key(hasher.extend(chain[j], tokens, j * b, p), 's'))) {
                    best = p;
                }
            }
            if (best == 0 && j > 0 && present(key(chain[j], 's'))) {
                best = j * b;
            }
        }
        return new Lookup(best, keyBlocks);
    }

    @Override
    public boolean putKeyBlock(String model, String salt, int[] tokens, int block, byte[] value) {
        return put(key(hasher.prefix(model, salt, tokens, block * hasher.blockSize()), 'k'), value);
    }

    @Override
    public Optional<byte[]> getKeyBlock(String model, String salt, int[] tokens, int block) {
        return get(key(hasher.prefix(model, salt, tokens, block * hasher.blockSize()), 'k'));
    }

    @Override
    public boolean putCheckpoint(String model, String salt, int[] tokens, int length, byte[] value) {
        boolean written = put(key(hasher.prefix(model, salt, tokens, length), 's'), value);
        int tail = length % hasher.blockSize();
        if (tail != 0) {
            byte[] block = hasher.prefix(model, salt, tokens, length - tail);
            synchronized (this) {
                tails.computeIfAbsent(key(block, 'x'), k -> new HashSet<>()).add(tail);
            }
        }
        return written;
    }

    @Override
    public Optional<byte[]> getCheckpoint(String model, String salt, int[] tokens, int length) {
        return get(key(hasher.prefix(model, salt, tokens, length), 's'));
    }

    private synchronized boolean put(String key, byte[] value) {
        if (present(key)) {
            return false;
        }
        CRC32C crc = new CRC32C();
        crc.update(value);
        entries.put(key, new Entry(value.clone(), (int) crc.getValue(), clock.millis() + ttl.toMillis()));
        bytes += value.length;
        Iterator<Map.Entry<String, Entry>> lru = entries.entrySet().iterator();
        while (bytes > maxBytes && lru.hasNext()) {
            bytes -= lru.next().getValue().value().length;
            lru.remove();
        }
        return true;
    }

    private synchronized Optional<byte[]> get(String key) {
        if (!present(key)) {
            return Optional.empty();
        }
        Entry e = entries.get(key);
        CRC32C crc = new CRC32C();
        crc.update(e.value());
        if ((int) crc.getValue() != e.crc()) {
            entries.remove(key); // corrupt: a miss, and gone so the next writer can replace it
            bytes -= e.value().length;
            return Optional.empty();
        }
        return Optional.of(e.value().clone());
    }

    /** Present and not expired (expired entries are dropped on sight). */
    private boolean present(String key) {
        Entry e = entries.get(key);
        if (e == null) {
            return false;
        }
        if (e.expiresAtMillis() <= clock.millis()) {
            entries.remove(key);
            bytes -= e.value().length;
            return false;
        }
        return true;
    }

    /** For tests of the miss-on-corruption rule: flips a bit of a stored value in place. */
    synchronized void corrupt(String model, String salt, int[] tokens, int length) {
        entries.get(key(hasher.prefix(model, salt, tokens, length), 's')).value()[0] ^= 1;
    }

    public synchronized long bytes() {
        return bytes;
    }
}
