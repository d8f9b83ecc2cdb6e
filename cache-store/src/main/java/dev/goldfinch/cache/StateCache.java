package dev.goldfinch.cache;

import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.GoldFinchModel;
import dev.goldfinch.model.ModelConfig;
import dev.goldfinch.model.state.GoldKvDonors;
import dev.goldfinch.model.state.SequenceState;
import dev.goldfinch.model.state.StateCodec;
import dev.goldfinch.proto.internal.v1.EntryKind;
import java.util.Arrays;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Sequence states in the prefix cache, for one model: a checkpoint blob holds the recurrent state, the
 * token ids and the keys after the last full block; the keys of full blocks live in shared key blocks.
 * Restoring checks that the blob's tokens hash to the address asked for, then joins the key blocks.
 * Any missing, corrupt or foreign piece makes the restore a miss.
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

    public StateCache(PrefixCacheStore store, PrefixHasher hasher, GoldFinchModel model, StateCodec.FloatType floatType) {
        this.store = store;
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

    /** Writes the key blocks {@code (fromBlock, toBlock]} (1-based) of {@code state}, whose tokens are the prefix. */
    public void putKeyBlocks(String salt, SequenceState state, int fromBlock, int toBlock) {
        int b = hasher.blockSize();
        int[] tokens = state.tokens();
        byte[] h = hasher.chain(modelId, salt, tokens, fromBlock * b)[fromBlock];
        for (int i = fromBlock + 1; i <= toBlock; i++) {
            h = hasher.extend(h, tokens, (i - 1) * b, i * b);
            store.put(modelId, EntryKind.ENTRY_KIND_KEY_BLOCK, h, i * b, null,
                    StateCodec.encodeKeyBlock(state, (i - 1) * b, i * b, floatType));
        }
    }

    /** Writes a checkpoint of {@code state} (all its full key blocks must be written too); returns its address. */
    public byte[] putCheckpoint(String salt, SequenceState state) {
        int p = state.length();
        int b = hasher.blockSize();
        int aligned = (p / b) * b;
        int[] tokens = state.tokens();
        byte[][] chain = hasher.chain(modelId, salt, tokens, p);
        byte[] blockHash = chain[chain.length - 1];
        byte[] hash = aligned == p ? blockHash : hasher.extend(blockHash, tokens, aligned, p);
        store.put(modelId, EntryKind.ENTRY_KIND_CHECKPOINT, hash, p, aligned == p ? null : blockHash,
                StateCodec.encode(state, floatType, 0, aligned));
        donors.offer(salt, state); // whoever restores this prefix here next shares its GOLD K/V
        return hash;
    }

    /** The state after the prefix addressed by {@code hash}, or empty when any piece is missing or unusable. */
    public Optional<SequenceState> restore(String salt, byte[] hash, int length) {
        Optional<byte[]> blob = store.get(modelId, EntryKind.ENTRY_KIND_CHECKPOINT, hash);
        if (blob.isEmpty()) {
            return Optional.empty();
        }
        try {
            StateCodec.Header header = StateCodec.inspect(blob.get());
            int[] tokens = StateCodec.tokens(blob.get());
            if (header.length() != length || !Arrays.equals(hasher.prefix(modelId, salt, tokens, length), hash)) {
                log.warn("checkpoint {} does not hold the prefix it is filed under; ignoring it", PrefixHasher.hex(hash));
                return Optional.empty();
            }
            int b = hasher.blockSize();
            int blocks = header.keysFrom() / b;
            if (header.keysFrom() % b != 0) {
                return Optional.empty();
            }
            float[] keys = new float[header.keysFrom() * config.compressedDim()];
            byte[][] chain = hasher.chain(modelId, salt, tokens, header.keysFrom());
            for (int i = 1; i <= blocks; i++) {
                Optional<byte[]> block = store.get(modelId, EntryKind.ENTRY_KIND_KEY_BLOCK, chain[i]);
                if (block.isEmpty()) {
                    return Optional.empty();
                }
                StateCodec.decodeKeyBlock(block.get(), config, fingerprint, b, keys, (i - 1) * b * config.compressedDim());
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
