package dev.goldfinch.model.state;

import dev.goldfinch.model.Architecture;
import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.ModelConfig;
import dev.goldfinch.model.tensor.Floats;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.zip.CRC32C;

/**
 * The serialized sequence state ("cache entry", ARCHITECTURE §3), format version 1. Little-endian:
 *
 * <pre>
 * offset size  field
 *  0      4    magic "GFST"
 *  4      2    format version (1)
 *  6      1    float type: 0 = f32, 1 = bf16
 *  7      1    architecture: 0 goldfinch, 1 finchc2, 2 finch, 3 rwkv5.1, 4 rwkv5.2, 5 rwkv7 ({@link Architecture}'s order)
 *  8      8    model fingerprint (config + weights)
 * 16      8    namespace (tenant salt id; 0 = none), opaque to the engine
 * 24      4    n_layer        28  4  n_embd      32  4  head_size
 * 36      4    recurrent layers (Lf)             40  4  compressed key width (c)
 * 44      4    length p (tokens)                 48  4  keysFrom k (first position whose key is in this blob)
 * 52      8    payload bytes
 * 60      -    payload:
 *                token ids            p × int32
 *                per layer            att shift [C], ffn shift [C]             (float type)
 *                per recurrent layer  WKV [H][key N][value N]                  (float type)
 *                compressed keys      (p − k) × c, positions k..p−1            (float type)
 * end−4   4    CRC32C of everything before it
 * </pre>
 *
 * A blob with {@code k > 0} leaves the keys of positions {@code 0..k-1} to be supplied by the caller
 * (the cache store keeps them in shared, content-addressed key blocks). Decoding checks sizes against
 * the header and the header against the model before allocating anything, then the checksum.
 */
public final class StateCodec {
    public static final int VERSION = 1;
    public static final int HEADER_BYTES = 60;
    public static final int TRAILER_BYTES = 4;
    /** Refuse headers claiming absurd lengths before any arithmetic on them. */
    public static final int MAX_TOKENS = 1 << 24;

    private static final int MAGIC = 0x54534647; // "GFST" read little-endian

    public enum FloatType {
        F32(4),
        BF16(2);

        final int bytes;

        FloatType(int bytes) {
            this.bytes = bytes;
        }

        public int bytes() {
            return bytes;
        }

        /** {@code f32} or {@code bf16}, as configuration names them. */
        public static FloatType parse(String name) {
            return switch (name.toLowerCase(java.util.Locale.ROOT)) {
                case "f32" -> F32;
                case "bf16" -> BF16;
                default -> throw new GoldFinchException.InvalidInput("state dtype must be f32 or bf16, got " + name);
            };
        }
    }

    private StateCodec() {}

    /** The blob size for a state of {@code length} tokens whose keys from {@code keysFrom} are included. */
    public static long encodedSize(ModelConfig c, int length, int keysFrom, FloatType type) {
        return HEADER_BYTES + payloadBytes(c, length, keysFrom, type) + TRAILER_BYTES;
    }

    private static long payloadBytes(ModelConfig c, long length, long keysFrom, FloatType type) {
        long floats = (long) c.nLayer() * 2 * c.nEmbd()
                + (long) c.finchLayers() * c.nHead() * c.headSize() * c.headSize()
                + (length - keysFrom) * c.compressedDim();
        return length * 4 + floats * type.bytes;
    }

    public static byte[] encode(SequenceState s, FloatType type, long namespace) {
        return encode(s, type, namespace, 0);
    }

    public static byte[] encode(SequenceState s, FloatType type, long namespace, int keysFrom) {
        ModelConfig c = s.config();
        int p = s.length();
        if (keysFrom < 0 || keysFrom > p) {
            throw new IllegalArgumentException("keysFrom " + keysFrom + " outside 0.." + p);
        }
        if (s.goldPending()) {
            throw new IllegalStateException("the state's GOLD token shifts lag its keys (a keys-only chunk was its last"
                    + " pass): it is no sequence state to store");
        }
        long payload = payloadBytes(c, p, keysFrom, type);
        ByteBuffer b = ByteBuffer.allocate(Math.toIntExact(HEADER_BYTES + payload + TRAILER_BYTES))
                .order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(MAGIC).putShort((short) VERSION).put((byte) type.ordinal()).put((byte)
                c.architecture().ordinal());
        b.putLong(s.modelFingerprint()).putLong(namespace);
        b.putInt(c.nLayer())
                .putInt(c.nEmbd())
                .putInt(c.headSize())
                .putInt(c.finchLayers())
                .putInt(c.compressedDim());
        b.putInt(p).putInt(keysFrom).putLong(payload);
        for (int i = 0; i < p; i++) {
            b.putInt(s.token(i));
        }
        for (int l = 0; l < c.nLayer(); l++) {
            putFloats(b, s.attShift[l], 0, c.nEmbd(), type);
            putFloats(b, s.ffnShift[l], 0, c.nEmbd(), type);
        }
        for (float[] m : s.wkv) {
            putFloats(b, m, 0, m.length, type);
        }
        if (c.compressedDim() > 0) {
            putFloats(
                    b,
                    s.compressedKeys.array(),
                    keysFrom * c.compressedDim(),
                    (p - keysFrom) * c.compressedDim(),
                    type);
        }
        CRC32C crc = new CRC32C();
        crc.update(b.array(), 0, b.position());
        b.putInt((int) crc.getValue());
        return b.array();
    }

    /** The header fields, read after the size and checksum checks. */
    public record Header(
            FloatType type,
            Architecture architecture,
            long modelFingerprint,
            long namespace,
            int length,
            int keysFrom) {}

    /** Checks structure and checksum without allocating state; returns the header. */
    public static Header inspect(byte[] blob) {
        if (blob.length < HEADER_BYTES + TRAILER_BYTES) {
            throw new GoldFinchException.CorruptState("state blob of " + blob.length
                    + " bytes is truncated (header needs " + (HEADER_BYTES + TRAILER_BYTES) + ")");
        }
        ByteBuffer b = ByteBuffer.wrap(blob).order(ByteOrder.LITTLE_ENDIAN);
        if (b.getInt(0) != MAGIC) {
            throw new GoldFinchException.CorruptState("not a GoldFinch state blob (bad magic)");
        }
        int version = Short.toUnsignedInt(b.getShort(4));
        long payload = b.getLong(52);
        if (payload < 0 || payload != blob.length - HEADER_BYTES - TRAILER_BYTES) {
            throw new GoldFinchException.CorruptState("state blob is " + blob.length
                    + " bytes but its header announces " + payload + " payload bytes (truncated or oversized)");
        }
        CRC32C crc = new CRC32C();
        crc.update(blob, 0, blob.length - TRAILER_BYTES);
        if ((int) crc.getValue() != b.getInt(blob.length - TRAILER_BYTES)) {
            throw new GoldFinchException.CorruptState("state blob fails its CRC32C checksum");
        }
        if (version != VERSION) {
            throw new GoldFinchException.StateMismatch(
                    "state format version " + version + " is not supported (this engine reads " + VERSION + ")");
        }
        int typeCode = blob[6];
        int archCode = blob[7];
        if (typeCode < 0
                || typeCode >= FloatType.values().length
                || archCode < 0
                || archCode >= Architecture.values().length) {
            throw new GoldFinchException.CorruptState("state blob has an unknown float type or architecture code");
        }
        int length = b.getInt(44);
        int keysFrom = b.getInt(48);
        if (length < 0 || length > MAX_TOKENS || keysFrom < 0 || keysFrom > length) {
            throw new GoldFinchException.CorruptState(
                    "state blob has an invalid length " + length + " / keysFrom " + keysFrom);
        }
        // The counts a caller acts on (token ids read, leading keys allocated) must be backed by payload
        // bytes: a forged header with a valid checksum must not make anyone read or reserve past the blob.
        FloatType type = FloatType.values()[typeCode];
        int keyWidth = b.getInt(40);
        long tokenBytes = (long) length * Integer.BYTES;
        if (keyWidth < 0
                || tokenBytes > payload
                || (long) (length - keysFrom) * keyWidth * type.bytes > payload - tokenBytes) {
            throw new GoldFinchException.CorruptState("state blob announces " + length + " tokens and "
                    + (length - keysFrom) + " key rows of width " + keyWidth + ", more than its " + payload
                    + " payload bytes hold");
        }
        return new Header(type, Architecture.values()[archCode], b.getLong(8), b.getLong(16), length, keysFrom);
    }

    /** Decodes a self-contained blob (all keys included) for the given model. */
    public static SequenceState decode(byte[] blob, ModelConfig config, long modelFingerprint) {
        return decode(blob, config, modelFingerprint, new float[0]);
    }

    /**
     * Decodes a blob whose keys start at {@code keysFrom}; {@code leadingKeys} holds the keys of
     * positions {@code 0..keysFrom-1} ({@code keysFrom × c} floats).
     */
    public static SequenceState decode(byte[] blob, ModelConfig c, long modelFingerprint, float[] leadingKeys) {
        Header h = inspect(blob);
        if (h.modelFingerprint() != modelFingerprint) {
            throw new GoldFinchException.StateMismatch(String.format(
                    "state belongs to model %016x, not to the loaded model %016x",
                    h.modelFingerprint(), modelFingerprint));
        }
        ByteBuffer b = ByteBuffer.wrap(blob).order(ByteOrder.LITTLE_ENDIAN);
        if (h.architecture() != c.architecture()
                || b.getInt(24) != c.nLayer()
                || b.getInt(28) != c.nEmbd()
                || b.getInt(32) != c.headSize()
                || b.getInt(36) != c.finchLayers()
                || b.getInt(40) != c.compressedDim()) {
            throw new GoldFinchException.StateMismatch("state dimensions do not match the loaded model");
        }
        if (payloadBytes(c, h.length(), h.keysFrom(), h.type()) != blob.length - HEADER_BYTES - TRAILER_BYTES) {
            throw new GoldFinchException.CorruptState("state payload size does not match its header");
        }
        if (leadingKeys.length != (long) h.keysFrom() * c.compressedDim()) {
            throw new IllegalArgumentException("blob needs the keys of its first " + h.keysFrom() + " positions, got "
                    + leadingKeys.length + " floats");
        }
        b.position(HEADER_BYTES);
        SequenceState s = new SequenceState(c, modelFingerprint);
        int[] ids = new int[h.length()];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = b.getInt();
            if (ids[i] < 0 || ids[i] >= c.vocabSize()) {
                throw new GoldFinchException.CorruptState("state holds token id " + ids[i] + " outside the vocabulary");
            }
        }
        for (int l = 0; l < c.nLayer(); l++) {
            getFloats(b, s.attShift[l], 0, c.nEmbd(), h.type());
            getFloats(b, s.ffnShift[l], 0, c.nEmbd(), h.type());
        }
        for (float[] m : s.wkv) {
            getFloats(b, m, 0, m.length, h.type());
        }
        float[] keys = new float[h.length() * c.compressedDim()];
        System.arraycopy(leadingKeys, 0, keys, 0, leadingKeys.length);
        getFloats(b, keys, leadingKeys.length, keys.length - leadingKeys.length, h.type());
        s.restore(ids, keys);
        return s;
    }

    /** The token ids of a blob that passed {@link #inspect}: what the caller hashes to check the blob is the prefix it asked for. */
    public static int[] tokens(byte[] blob) {
        Header h = inspect(blob);
        ByteBuffer b = ByteBuffer.wrap(blob).order(ByteOrder.LITTLE_ENDIAN).position(HEADER_BYTES);
        int[] ids = new int[h.length()];
        b.asIntBuffer().get(ids);
        return ids;
    }

    private static final int KEY_BLOCK_MAGIC = 0x424b4647; // "GFKB"
    private static final int KEY_BLOCK_HEADER = 24;

    /**
     * A key block: the compressed keys of positions {@code [from, to)}, shared by every prompt with that
     * prefix. Layout: magic "GFKB", version u16, float type u8, pad u8, fingerprint u64, rows u32, width
     * u32, then rows × width floats, then CRC32C of everything before it.
     */
    public static byte[] encodeKeyBlock(SequenceState s, int from, int to, FloatType type) {
        ModelConfig c = s.config();
        if (from < 0 || to > s.length() || from > to) {
            throw new IllegalArgumentException("key rows [" + from + ", " + to + ") outside 0.." + s.length());
        }
        int width = c.compressedDim();
        int rows = to - from;
        ByteBuffer b = ByteBuffer.allocate(KEY_BLOCK_HEADER + rows * width * type.bytes + TRAILER_BYTES)
                .order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(KEY_BLOCK_MAGIC)
                .putShort((short) VERSION)
                .put((byte) type.ordinal())
                .put((byte) 0);
        b.putLong(s.modelFingerprint()).putInt(rows).putInt(width);
        putFloats(b, s.compressedKeys.array(), from * width, rows * width, type);
        CRC32C crc = new CRC32C();
        crc.update(b.array(), 0, b.position());
        b.putInt((int) crc.getValue());
        return b.array();
    }

    /** Decodes a key block of exactly {@code rows} rows for the given model into {@code dst[offset..]}. */
    public static void decodeKeyBlock(
            byte[] blob, ModelConfig c, long modelFingerprint, int rows, float[] dst, int offset) {
        int width = c.compressedDim();
        long expected = KEY_BLOCK_HEADER + TRAILER_BYTES;
        if (blob.length < expected) {
            throw new GoldFinchException.CorruptState("key block of " + blob.length + " bytes is truncated");
        }
        ByteBuffer b = ByteBuffer.wrap(blob).order(ByteOrder.LITTLE_ENDIAN);
        int typeCode = blob[6];
        if (b.getInt(0) != KEY_BLOCK_MAGIC || typeCode < 0 || typeCode >= FloatType.values().length) {
            throw new GoldFinchException.CorruptState("not a GoldFinch key block");
        }
        FloatType type = FloatType.values()[typeCode];
        if (b.getInt(16) != rows
                || b.getInt(20) != width
                || blob.length != expected + (long) rows * width * type.bytes) {
            throw new GoldFinchException.CorruptState("key block holds " + b.getInt(16) + "×" + b.getInt(20)
                    + " keys in " + blob.length + " bytes, expected " + rows + "×" + width);
        }
        CRC32C crc = new CRC32C();
        crc.update(blob, 0, blob.length - TRAILER_BYTES);
        if ((int) crc.getValue() != b.getInt(blob.length - TRAILER_BYTES)) {
            throw new GoldFinchException.CorruptState("key block fails its CRC32C checksum");
        }
        if (b.getLong(8) != modelFingerprint) {
            throw new GoldFinchException.StateMismatch("key block belongs to another model");
        }
        if (Short.toUnsignedInt(b.getShort(4)) != VERSION) {
            throw new GoldFinchException.StateMismatch(
                    "key block format version " + b.getShort(4) + " is not supported");
        }
        b.position(KEY_BLOCK_HEADER);
        getFloats(b, dst, offset, rows * width, type);
    }

    private static void putFloats(ByteBuffer b, float[] a, int off, int n, FloatType type) {
        if (type == FloatType.F32) {
            b.asFloatBuffer().put(a, off, n);
            b.position(b.position() + n * 4);
        } else {
            for (int i = 0; i < n; i++) {
                b.putShort(Floats.floatToBf16(a[off + i]));
            }
        }
    }

    private static void getFloats(ByteBuffer b, float[] a, int off, int n, FloatType type) {
        if (type == FloatType.F32) {
            b.asFloatBuffer().get(a, off, n);
            b.position(b.position() + n * 4);
        } else {
            for (int i = 0; i < n; i++) {
                a[off + i] = Floats.bf16ToFloat(b.getShort());
            }
        }
    }
}
