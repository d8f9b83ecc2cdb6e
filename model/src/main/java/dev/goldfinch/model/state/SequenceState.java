package dev.goldfinch.model.state;

import dev.goldfinch.model.ModelConfig;
import java.util.Arrays;

/**
 * Everything needed to continue a sequence after its first {@code length()} tokens (ARCHITECTURE §3):
 * the recurrent state (two token shifts per layer, one WKV matrix per recurrent layer), the compressed
 * key of every position and the token ids. Not thread-safe: one request advances it at a time.
 *
 * <p>GOLD keys and values derived from the compressed cache are kept here too, per GOLD layer, as a
 * cache that is rebuilt on demand: they are never serialized.
 */
public final class SequenceState {
    private final ModelConfig config;
    private final long modelFingerprint;
    /** [layer][C] the previous token's LN1 output (GOLD layers: the query shift). */
    final float[][] attShift;
    /** [layer][C] the previous token's LN2 output. */
    final float[][] ffnShift;
    /** [recurrent layer][H * N * N], laid out [head][key j][value i]. */
    final float[][] wkv;
    /** [position][compressedDim]; GoldFinch only. */
    FloatRows compressedKeys;
    /** Token ids, one per row of width 1, stored as floats would lose ids above 2^24, so kept as ints. */
    IntRows tokens;
    /** How the GOLD keys and values below are held; the model's choice, set before every pass. */
    private KvFormat kvFormat = KvFormat.defaultFormat();
    /** [gold layer] materialised keys [position][A], int8 scales per head; may lag behind {@code length()}. */
    KvRows[] goldKeys;
    /** [gold layer] materialised values, head-major ([head][position][N]); as many rows as the keys. */
    HeadRows[] goldValues;
    /**
     * [gold layer] the keys again, head-major, per complete block of {@link #KEY_BLOCK} positions transposed
     * ([head][block][N][KEY_BLOCK]): what attention reads for all but the last incomplete block.
     */
    HeadRows[] goldKeyBlocks;
    /**
     * The last pass skipped the GOLD stack (a keys-only prefill chunk): the GOLD layers' token shifts lag the keys
     * until a pass runs GOLD over a whole window again.
     */
    private boolean goldPending;

    /** Positions per transposed key block: one vector of scores. */
    public static final int KEY_BLOCK = jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.length();

    public SequenceState(ModelConfig config, long modelFingerprint) {
        this.config = config;
        this.modelFingerprint = modelFingerprint;
        int c = config.nEmbd();
        attShift = new float[config.nLayer()][c];
        ffnShift = new float[config.nLayer()][c];
        wkv = new float[config.finchLayers()][config.nHead() * config.headSize() * config.headSize()];
        compressedKeys = new FloatRows(Math.max(1, config.compressedDim()));
        tokens = new IntRows();
        goldKeys = new KvRows[config.goldLayers()];
        goldValues = new HeadRows[config.goldLayers()];
        goldKeyBlocks = new HeadRows[config.goldLayers()];
        dropDerived();
    }

    private SequenceState(SequenceState s) {
        config = s.config;
        modelFingerprint = s.modelFingerprint;
        attShift = deepCopy(s.attShift);
        ffnShift = deepCopy(s.ffnShift);
        wkv = deepCopy(s.wkv);
        compressedKeys = s.compressedKeys.fork();
        tokens = s.tokens.fork();
        kvFormat = s.kvFormat;
        goldKeys = Arrays.stream(s.goldKeys).map(KvRows::fork).toArray(KvRows[]::new);
        goldValues = Arrays.stream(s.goldValues).map(HeadRows::fork).toArray(HeadRows[]::new);
        goldKeyBlocks = Arrays.stream(s.goldKeyBlocks).map(HeadRows::fork).toArray(HeadRows[]::new);
        goldPending = s.goldPending;
    }

    private static float[][] deepCopy(float[][] a) {
        float[][] c = new float[a.length][];
        for (int i = 0; i < a.length; i++) {
            c[i] = a[i].clone();
        }
        return c;
    }

    /**
     * An independent state with the same content. The recurrent part (fixed size, mutated every
     * token) is copied; the per-position rows (keys, ids, GOLD K/V) are shared until either side appends.
     */
    public SequenceState fork() {
        return new SequenceState(this);
    }

    public ModelConfig config() {
        return config;
    }

    public long modelFingerprint() {
        return modelFingerprint;
    }

    /** Tokens consumed so far. */
    public int length() {
        return tokens.size();
    }

    public int token(int position) {
        return tokens.get(position);
    }

    public int[] tokens() {
        return tokens.toArray();
    }

    public float[] attShift(int layer) {
        return attShift[layer];
    }

    public float[] ffnShift(int layer) {
        return ffnShift[layer];
    }

    /** WKV state of a recurrent layer, [head][key][value]. */
    public float[] wkv(int layer) {
        return wkv[layer];
    }

    public FloatRows compressedKeys() {
        return compressedKeys;
    }

    /** GOLD layer {@code g}'s materialised keys (internal to the engine; exposed for the engine package). */
    public KvRows goldKeys(int g) {
        return goldKeys[g];
    }

    /** GOLD layer {@code g}'s materialised values, head-major (engine-internal). */
    public HeadRows goldValues(int g) {
        return goldValues[g];
    }

    /** GOLD layer {@code g}'s keys by complete blocks of {@link #KEY_BLOCK} positions, head-major and transposed (engine-internal). */
    public HeadRows goldKeyBlocks(int g) {
        return goldKeyBlocks[g];
    }

    public void appendTokens(int[] ids) {
        tokens.append(ids);
    }

    /**
     * Room for {@code positions} tokens in every per-position part (ids, compressed keys, GOLD keys and values),
     * so a decode up to there never copies them: appends within a reserve allocate nothing.
     */
    public void reserve(int positions) {
        tokens.reserve(positions);
        if (config.goldLayers() == 0) {
            return;
        }
        compressedKeys.reserve(positions);
        for (int g = 0; g < goldKeys.length; g++) {
            goldKeys[g].reserve(positions);
            goldValues[g].reserve(positions);
            goldKeyBlocks[g].reserve(positions / KEY_BLOCK);
        }
    }

    /** Whether the GOLD layers' token shifts lag the keys (the last pass skipped GOLD); see the model's GoldMode. */
    public boolean goldPending() {
        return goldPending;
    }

    /** Set by the model after each pass: whether it skipped the GOLD stack. */
    public void goldPending(boolean pending) {
        goldPending = pending;
    }

    public KvFormat kvFormat() {
        return kvFormat;
    }

    /**
     * Holds the GOLD keys and values in {@code format} from now on: a state in another format drops them (they
     * are derived, rebuilt on the next pass), so a restored or foreign state never mixes formats.
     */
    public void kvFormat(KvFormat format) {
        if (format != kvFormat) {
            kvFormat = format;
            dropDerived();
        }
    }

    /** Drops the derived GOLD keys and values (memory pressure, or after a restore); they are rebuilt on demand. */
    public void dropDerived() {
        int heads = config.nHead();
        for (int g = 0; g < goldKeys.length; g++) {
            goldKeys[g] = new KvRows(kvFormat, config.dimAtt(), heads);
            goldValues[g] = new HeadRows(kvFormat, heads, config.headSize(), 1);
            // A block row is KEY_BLOCK keys transposed ([N][KEY_BLOCK]): one int8 scale per key, copied from goldKeys.
            goldKeyBlocks[g] = new HeadRows(kvFormat, heads, config.headSize() * KEY_BLOCK, KEY_BLOCK);
        }
    }

    /**
     * A state of {@code ids.length} positions holding these compressed keys ({@code ids.length × c}) and a zero
     * recurrent part, its GOLD keys and values to be rebuilt as after a cache restore: a long context for a benchmark
     * without prefilling it.
     */
    public static SequenceState withKeys(ModelConfig config, long modelFingerprint, int[] ids, float[] keys) {
        if (keys.length != (long) ids.length * config.compressedDim()) {
            throw new IllegalArgumentException(ids.length + " positions need "
                    + (long) ids.length * config.compressedDim() + " key floats, got " + keys.length);
        }
        SequenceState state = new SequenceState(config, modelFingerprint);
        state.restore(ids, keys);
        return state;
    }

    /** Restores the serialized parts (used by the codec). */
    void restore(int[] ids, float[] keys) {
        tokens = IntRows.of(ids);
        compressedKeys = FloatRows.of(compressedKeys.width(), keys, ids.length);
        dropDerived();
    }
}
