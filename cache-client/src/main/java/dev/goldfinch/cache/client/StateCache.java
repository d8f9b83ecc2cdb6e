package dev.goldfinch.cache.client;

import dev.goldfinch.cache.PrefixCacheStore;
import dev.goldfinch.cache.PrefixHasher;
import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.GoldFinchModel;
import dev.goldfinch.model.ModelConfig;
import dev.goldfinch.model.state.GoldKvDonors;
import dev.goldfinch.model.state.SequenceState;
import dev.goldfinch.model.state.StateCodec;
import dev.goldfinch.proto.internal.v1.EntryKind;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.stream.IntStream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Sequence states in the prefix cache, for one model: a checkpoint blob holds the recurrent state, the
 * token ids and the keys after the last full block; the keys of full blocks live in shared key blocks.
 * Restoring checks that the blob's tokens hash to the address asked for, then joins the key blocks,
 * fetched together in one call. Any missing, corrupt or foreign piece makes the restore a miss. Every
 * entry is sealed by the {@link EntrySigner} on write and opened before a byte of it is decoded; one that
 * fails its signature is a miss and is removed from the store, so the prefix is recomputed and rewritten.
 */
public final class StateCache {
    private static final Logger log = LoggerFactory.getLogger(StateCache.class);

    private final PrefixCacheStore store;
    private final PrefixHasher hasher;
    private final ModelConfig config;
    private final long fingerprint;
    private final String modelId;
    private final StateCodec.FloatType floatType;
    private final GoldKvDonors donors;
    private final EntrySigner signer;

    public StateCache(
            PrefixCacheStore store,
            PrefixHasher hasher,
            GoldFinchModel model,
            StateCodec.FloatType floatType,
            EntrySigner signer) {
        this.store = store;
        this.signer = signer;
        this.hasher = hasher;
        this.config = model.config();
        this.fingerprint = model.fingerprint();
        this.modelId = modelId(model.fingerprint());
        this.floatType = floatType;
        this.donors = model.goldKvDonors();
    }

    /** The model's name in cache keys and entry references: its fingerprint in hex. */
    public static String modelId(long fingerprint) {
        return String.format("%016x", fingerprint);
    }

    public String modelId() {
        return modelId;
    }

    public PrefixHasher hasher() {
        return hasher;
    }

    public PrefixCacheStore store() {
        return store;
    }

    public PrefixCacheStore.Lookup lookup(String salt, int[] tokens, int maxLength) {
        return store.lookup(modelId, salt, tokens, maxLength);
    }

    /**
     * Writes {@code state} (its tokens are the prefix): its full key blocks after the first {@code blocksStored},
     * then its checkpoint, in one batch, so the checkpoint appears only once the keys it needs are there.
     * The one way prefill and decode persist a state. Returns the checkpoint's address.
     */
    public byte[] persist(String salt, SequenceState state, int blocksStored) {
        int p = state.length();
        int b = hasher.blockSize();
        int fullBlocks = p / b;
        int[] tokens = state.tokens();
        byte[][] chain = hasher.chain(modelId, salt, tokens, p);
        List<PrefixCacheStore.Entry> entries = new ArrayList<>(Math.max(0, fullBlocks - blocksStored) + 1);
        for (int i = blocksStored + 1; i <= fullBlocks; i++) {
            entries.add(sealed(
                    EntryKind.ENTRY_KIND_KEY_BLOCK,
                    chain[i],
                    i * b,
                    null,
                    StateCodec.encodeKeyBlock(state, (i - 1) * b, i * b, floatType)));
        }
        byte[] blockHash = chain[fullBlocks];
        boolean aligned = fullBlocks * b == p;
        byte[] hash = aligned ? blockHash : hasher.extend(blockHash, tokens, fullBlocks * b, p);
        entries.add(sealed(
                EntryKind.ENTRY_KIND_CHECKPOINT,
                hash,
                p,
                aligned ? null : blockHash,
                StateCodec.encode(state, floatType, 0, fullBlocks * b)));
        store.putAll(modelId, entries);
        donors.offer(salt, state); // whoever restores this prefix here next shares its GOLD K/V
        return hash;
    }

    private PrefixCacheStore.Entry sealed(EntryKind kind, byte[] hash, int length, byte[] blockHash, byte[] payload) {
        return new PrefixCacheStore.Entry(
                kind, hash, length, blockHash, signer.seal(modelId, kind, hash, length, payload));
    }

    /** The payload of an entry read from its address, or empty when it fails its signature (then it is forgotten). */
    private Optional<byte[]> opened(EntryKind kind, byte[] hash, int length, byte[] stored) {
        Optional<byte[]> payload = signer.open(modelId, kind, hash, length, stored);
        if (payload.isEmpty()) {
            store.forget(modelId, kind, hash);
        }
        return payload;
    }

    /** The state after the prefix addressed by {@code hash}, or empty when any piece is missing or unusable. */
    public Optional<SequenceState> restore(String salt, byte[] hash, int length) {
        Optional<byte[]> sealed = store.get(modelId, EntryKind.ENTRY_KIND_CHECKPOINT, hash);
        if (sealed.isEmpty()) {
            return Optional.empty();
        }
        Optional<byte[]> blob = opened(EntryKind.ENTRY_KIND_CHECKPOINT, hash, length, sealed.get());
        if (blob.isEmpty()) {
            log.warn("checkpoint {} fails its signature; deleted, recomputing", PrefixHasher.hex(hash));
            return Optional.empty();
        }
        try {
            StateCodec.Header header = StateCodec.inspect(blob.get());
            int[] tokens = StateCodec.tokens(blob.get());
            if (header.length() != length || !Arrays.equals(hasher.prefix(modelId, salt, tokens, length), hash)) {
                log.warn(
                        "checkpoint {} does not hold the prefix it is filed under; ignoring it",
                        PrefixHasher.hex(hash));
                return Optional.empty();
            }
            int b = hasher.blockSize();
            if (header.keysFrom() % b != 0) {
                return Optional.empty();
            }
            float[] keys = new float[header.keysFrom() * config.compressedDim()];
            byte[][] chain = hasher.chain(modelId, salt, tokens, header.keysFrom());
            List<Optional<byte[]>> blocks = store.getAll(
                    modelId,
                    EntryKind.ENTRY_KIND_KEY_BLOCK,
                    Arrays.asList(chain).subList(1, chain.length)); // every key block in one round trip
            List<Optional<byte[]>> payloads = new ArrayList<>(blocks.size());
            for (int i = 0; i < blocks.size(); i++) {
                int block = i + 1;
                // Every block is checked, so all forged ones go in one pass and the next write replaces them.
                payloads.add(blocks.get(i)
                        .flatMap(stored -> opened(EntryKind.ENTRY_KIND_KEY_BLOCK, chain[block], block * b, stored)));
            }
            long forged = IntStream.range(0, blocks.size())
                    .filter(i -> blocks.get(i).isPresent() && payloads.get(i).isEmpty())
                    .count();
            if (forged > 0) {
                log.warn(
                        "{} key blocks under checkpoint {} fail their signature; deleted, recomputing",
                        forged,
                        PrefixHasher.hex(hash));
            }
            if (payloads.stream().anyMatch(Optional::isEmpty)) {
                return Optional.empty();
            }
            for (int i = 0; i < payloads.size(); i++) {
                StateCodec.decodeKeyBlock(
                        payloads.get(i).get(), config, fingerprint, b, keys, i * b * config.compressedDim());
            }
            SequenceState restored = StateCodec.decode(blob.get(), config, fingerprint, keys);
            donors.adopt(salt, restored);
            return Optional.of(restored);
        } catch (GoldFinchException e) {
            log.warn("cached state {} is unusable ({}); recomputing", PrefixHasher.hex(hash), e.getMessage());
            return Optional.empty();
        }
    }
}
