package dev.goldfinch.cache;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;

/**
 * The content address of a token prefix (ARCHITECTURE §4). Tokens are grouped in blocks of B; block
 * hashes chain: {@code h_0 = H(model, namespace(tenant, salt))}, {@code h_i = H(h_{i-1}, tokens of block i)}. A prefix of
 * any length p is addressed by {@code H(h_floor(p/B), tokens[floor(p/B)·B .. p))}, so two prompts share
 * an address exactly when they share the prefix, the model, the tenant and its salt. H is SHA-256 cut to
 * 128 bits; tokens enter as little-endian int32. The one place that computes these hashes.
 */
public final class PrefixHasher {
    public static final int DEFAULT_BLOCK_SIZE = 64;
    private static final int HASH_BYTES = 16;

    private final int blockSize;

    public PrefixHasher(int blockSize) {
        if (blockSize <= 0) {
            throw new IllegalArgumentException("block size must be positive, got " + blockSize);
        }
        this.blockSize = blockSize;
    }

    public int blockSize() {
        return blockSize;
    }

    /**
     * The cache namespace of a tenant's salt, what the gateway sends downstream as the salt and so what
     * enters {@code h_0}, the GOLD K/V donors and the decode replicas' entry caches: a client's salt only
     * partitions inside its own tenant. Both parts are length-prefixed, so tenant "a" with salt "bc" and
     * tenant "ab" with salt "c" differ; the result is hex, one fixed length whatever the inputs.
     */
    public static String namespace(String tenant, String salt) {
        MessageDigest sha = sha256();
        sha.update("goldfinch-namespace-v1\0".getBytes(StandardCharsets.UTF_8));
        byte[] t = tenant.getBytes(StandardCharsets.UTF_8);
        byte[] s = salt.getBytes(StandardCharsets.UTF_8);
        sha.update(intLe(t.length));
        sha.update(t);
        sha.update(intLe(s.length));
        sha.update(s);
        return hex(Arrays.copyOf(sha.digest(), HASH_BYTES));
    }

    /** {@code h_0}: the model fingerprint and the namespace ({@link #namespace}); namespaces never share entries. */
    public byte[] root(String model, String salt) {
        MessageDigest sha = sha256();
        sha.update("goldfinch-prefix-v1\0".getBytes(StandardCharsets.UTF_8));
        byte[] m = model.getBytes(StandardCharsets.UTF_8);
        byte[] s = salt.getBytes(StandardCharsets.UTF_8);
        sha.update(intLe(m.length));
        sha.update(m);
        sha.update(intLe(s.length));
        sha.update(s);
        return Arrays.copyOf(sha.digest(), HASH_BYTES);
    }

    /** {@code H(prev, tokens[from..to))}. */
    public byte[] extend(byte[] prev, int[] tokens, int from, int to) {
        MessageDigest sha = sha256();
        sha.update(prev);
        byte[] buf = new byte[(to - from) * 4];
        for (int i = from; i < to; i++) {
            int t = tokens[i];
            int o = (i - from) * 4;
            buf[o] = (byte) t;
            buf[o + 1] = (byte) (t >>> 8);
            buf[o + 2] = (byte) (t >>> 16);
            buf[o + 3] = (byte) (t >>> 24);
        }
        sha.update(buf);
        return Arrays.copyOf(sha.digest(), HASH_BYTES);
    }

    /** {@code [h_0, h_1, .., h_m]} for the m full blocks of {@code tokens[0..length)}. */
    public byte[][] chain(String model, String salt, int[] tokens, int length) {
        int blocks = length / blockSize;
        byte[][] h = new byte[blocks + 1][];
        h[0] = root(model, salt);
        for (int i = 1; i <= blocks; i++) {
            h[i] = extend(h[i - 1], tokens, (i - 1) * blockSize, i * blockSize);
        }
        return h;
    }

    /** The address of the prefix {@code tokens[0..length)}: a block hash when aligned, else its partial-block hash. */
    public byte[] prefix(String model, String salt, int[] tokens, int length) {
        byte[][] h = chain(model, salt, tokens, length);
        int aligned = (length / blockSize) * blockSize;
        return aligned == length ? h[h.length - 1] : extend(h[h.length - 1], tokens, aligned, length);
    }

    /** Whether {@code s} is a hash as {@link #hex} writes it (what callers check before parsing one off the wire). */
    public static boolean isHex(String s) {
        return s.length() == 2 * HASH_BYTES && s.chars().allMatch(c -> Character.digit(c, 16) >= 0);
    }

    public static String hex(byte[] hash) {
        return HexFormat.of().formatHex(hash);
    }

    private static byte[] intLe(int v) {
        return new byte[] {(byte) v, (byte) (v >>> 8), (byte) (v >>> 16), (byte) (v >>> 24)};
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
