package dev.goldfinch.cache;

import dev.goldfinch.error.TypedFailure;
import dev.goldfinch.proto.internal.v1.EntryKind;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The prefix cache over a {@link CacheBackend}: the key layout of ARCHITECTURE §5 and the lookup.
 *
 * <p>Keys: {@code gf:{model:hash}:k} a key block, {@code gf:{model:hash}:s} a checkpoint,
 * {@code gf:{model:hash}:t} the index of checkpoints that end inside the block after the aligned prefix
 * {@code hash} (members {@code "length:prefixHash"}). The braces are a Redis Cluster hash tag: all keys
 * of one entry, chunks included, live in one slot.
 *
 * <p>Lookup asks, in one probe, for every key block and aligned checkpoint of the prompt and for every
 * block's index set; candidates off the block boundary are confirmed with one more probe only when they
 * beat the deepest aligned checkpoint. A checkpoint counts only if every key block before it is present.
 */
public final class PrefixCache implements PrefixCacheStore {
    private final CacheBackend backend;
    private final PrefixHasher hasher;
    private final AtomicLong hits = new AtomicLong();
    private final AtomicLong misses = new AtomicLong();
    private final AtomicLong lookupHits = new AtomicLong();
    private final AtomicLong lookupMisses = new AtomicLong();

    public PrefixCache(CacheBackend backend, PrefixHasher hasher) {
        this.backend = backend;
        this.hasher = hasher;
    }

    public PrefixHasher hasher() {
        return hasher;
    }

    public CacheBackend backend() {
        return backend;
    }

    public static String key(String model, EntryKind kind, byte[] hash) {
        String suffix = switch (kind) {
            case ENTRY_KIND_KEY_BLOCK -> "k";
            case ENTRY_KIND_CHECKPOINT -> "s";
            default -> throw TypedFailure.invalidArgument("kind", "no entry kind given");
        };
        return "gf:{" + model + ":" + PrefixHasher.hex(hash) + "}:" + suffix;
    }

    static String indexKey(String model, byte[] blockHash) {
        return "gf:{" + model + ":" + PrefixHasher.hex(blockHash) + "}:t";
    }

    @Override
    public Lookup lookup(String model, String salt, int[] tokens, int maxLength) {
        int usable = Math.max(0, Math.min(maxLength, tokens.length));
        int b = hasher.blockSize();
        byte[][] chain = hasher.chain(model, salt, tokens, usable);
        int blocks = chain.length - 1;
        List<String> entryKeys = new ArrayList<>(2 * blocks);
        List<String> indexKeys = new ArrayList<>(blocks + 1);
        for (int i = 1; i <= blocks; i++) {
            entryKeys.add(key(model, EntryKind.ENTRY_KIND_KEY_BLOCK, chain[i]));
        }
        for (int i = 1; i <= blocks; i++) {
            entryKeys.add(key(model, EntryKind.ENTRY_KIND_CHECKPOINT, chain[i]));
        }
        for (int i = 0; i <= blocks; i++) {
            indexKeys.add(indexKey(model, chain[i]));
        }
        CacheBackend.Probe probe = backend.probe(entryKeys, indexKeys);
        int keyBlocks = 0;
        while (keyBlocks < blocks && probe.published()[keyBlocks]) {
            keyBlocks++;
        }
        int aligned = 0;
        for (int i = keyBlocks; i >= 1; i--) {
            if (probe.published()[blocks + i - 1]) {
                aligned = i;
                break;
            }
        }
        // Tail candidates deeper than the best aligned checkpoint, deepest first.
        List<Integer> tailLengths = new ArrayList<>();
        List<byte[]> tailHashes = new ArrayList<>();
        for (int j = keyBlocks; j >= aligned; j--) {
            List<Integer> lengths = new ArrayList<>();
            for (String member : probe.members().get(j)) {
                int colon = member.indexOf(':');
                int p;
                try {
                    p = Integer.parseInt(member, 0, colon, 10);
                } catch (NumberFormatException | IndexOutOfBoundsException e) {
                    continue; // a stray member is no reason to fail a lookup
                }
                if (p > j * b && p < (j + 1) * b && p <= usable) {
                    byte[] h = hasher.extend(chain[j], tokens, j * b, p);
                    if (member.substring(colon + 1).equals(PrefixHasher.hex(h))) {
                        lengths.add(p);
                        tailHashes.add(h);
                    }
                }
            }
            tailLengths.addAll(lengths);
        }
        Lookup result =
                aligned > 0 ? new Lookup(aligned * b, chain[aligned], keyBlocks) : new Lookup(0, null, keyBlocks);
        if (!tailLengths.isEmpty()) {
            List<String> keys = tailHashes.stream()
                    .map(h -> key(model, EntryKind.ENTRY_KIND_CHECKPOINT, h))
                    .toList();
            boolean[] present = backend.probe(keys, List.of()).published();
            int best = -1;
            for (int i = 0; i < present.length; i++) {
                if (present[i] && (best < 0 || tailLengths.get(i) > tailLengths.get(best))) {
                    best = i;
                }
            }
            if (best >= 0 && tailLengths.get(best) > result.checkpointLength()) {
                result = new Lookup(tailLengths.get(best), tailHashes.get(best), keyBlocks);
            }
        }
        (result.hit() ? lookupHits : lookupMisses).incrementAndGet();
        return result;
    }

    @Override
    public int putAll(String model, List<Entry> entries) {
        List<CacheBackend.Write> writes = new ArrayList<>(entries.size());
        for (Entry e : entries) {
            boolean indexed = e.kind() == EntryKind.ENTRY_KIND_CHECKPOINT && e.length() % hasher.blockSize() != 0;
            if (indexed && e.blockHash() == null) {
                throw TypedFailure.invalidArgument(
                        "block_hash",
                        "a checkpoint of " + e.length() + " tokens needs block_hash, the hash of the block before it");
            }
            writes.add(new CacheBackend.Write(
                    key(model, e.kind(), e.hash()),
                    e.value(),
                    indexed ? indexKey(model, e.blockHash()) : null,
                    indexed ? e.length() + ":" + PrefixHasher.hex(e.hash()) : null));
        }
        int written = 0;
        for (boolean w : backend.publishAll(writes)) {
            written += w ? 1 : 0;
        }
        return written;
    }

    @Override
    public List<Optional<byte[]>> getAll(String model, EntryKind kind, List<byte[]> hashes) {
        List<Optional<byte[]>> values =
                backend.readAll(hashes.stream().map(h -> key(model, kind, h)).toList());
        for (Optional<byte[]> v : values) {
            (v.isPresent() ? hits : misses).incrementAndGet();
        }
        return values;
    }

    @Override
    public boolean forget(String model, EntryKind kind, byte[] hash) {
        // A checkpoint's index member stays; lookup confirms every candidate's key, so it only costs a probe.
        return backend.delete(key(model, kind, hash));
    }

    @Override
    public StoreStats stats() {
        return new StoreStats(
                backend.describe(), backend.bytes(), hits.get(), misses.get(), lookupHits.get(), lookupMisses.get());
    }

    @Override
    public void close() {
        backend.close();
    }
}
