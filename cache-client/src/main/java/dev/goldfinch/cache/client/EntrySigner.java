package dev.goldfinch.cache.client;

import dev.goldfinch.proto.internal.v1.EntryKind;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.Base64;
import java.util.HexFormat;
import java.util.Optional;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * The mesh's signature on its cache entries: a value is stored as an envelope — magic {@code "GFS1"},
 * a 32-byte HMAC-SHA256, then the payload — where the MAC covers the magic, the entry's address (model,
 * kind, prefix hash, length) and the payload under the mesh key. A writer without the key cannot plant a
 * state, an entry copied to another address or another mesh fails, and so does any changed byte. The
 * cache store never sees the key: it keeps serving opaque bytes (and checking their CRC32C, which catches
 * corruption where the key is not held). The key never leaves this class: no accessor, no {@code toString}.
 *
 * <p>An unsigned signer (a standalone service with {@code goldfinch.cache.allow-unsigned=true}) stores
 * payloads bare and trusts what it reads; it exists only for local use.
 */
public final class EntrySigner {
    /** Counted (tag {@code reason=signature}) each time an entry fails its MAC; Prometheus adds {@code _total}. */
    public static final String REJECTED_METRIC = "goldfinch.cache.entries.rejected";

    public static final int MIN_KEY_BYTES = 32;
    static final byte[] MAGIC = {'G', 'F', 'S', '1'};
    static final int MAC_BYTES = 32;
    static final int ENVELOPE_BYTES = MAGIC.length + MAC_BYTES;
    private static final String ALGORITHM = "HmacSHA256";
    private static final HexFormat HEX = HexFormat.of();

    private final SecretKeySpec key; // null: unsigned
    private final Counter rejected;

    private EntrySigner(SecretKeySpec key, MeterRegistry meters) {
        this.key = key;
        this.rejected = Counter.builder(REJECTED_METRIC)
                .description("Cache entries read and refused (a miss, deleted from the store)")
                .tag("reason", "signature")
                .register(meters);
    }

    /** Signs and verifies with {@code key} (at least {@value #MIN_KEY_BYTES} bytes). */
    public static EntrySigner withKey(byte[] key, MeterRegistry meters) {
        if (key.length < MIN_KEY_BYTES) {
            throw new IllegalArgumentException(
                    "the cache signing key must be at least " + MIN_KEY_BYTES + " bytes, got " + key.length);
        }
        return new EntrySigner(new SecretKeySpec(key, ALGORITHM), meters);
    }

    /** Signs with a fresh random key: a mesh of one run, or a test. */
    public static EntrySigner withRandomKey(MeterRegistry meters) {
        return withKey(parseKey(randomKey(), "random key"), meters);
    }

    /** Neither signs nor verifies: payloads are stored bare. For a standalone service in local use only. */
    public static EntrySigner unsigned(MeterRegistry meters) {
        return new EntrySigner(null, meters);
    }

    /**
     * The key in {@code text}: hex (an even number of hex digits) or else base64 (standard or URL-safe).
     * The message of a failure names the property, never the text.
     */
    public static byte[] parseKey(String text, String property) {
        String t = text.strip();
        byte[] key;
        if (t.length() % 2 == 0 && t.chars().allMatch(c -> Character.digit(c, 16) >= 0)) {
            key = HEX.parseHex(t);
        } else {
            try {
                key = t.indexOf('-') >= 0 || t.indexOf('_') >= 0
                        ? Base64.getUrlDecoder().decode(t)
                        : Base64.getDecoder().decode(t);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(property + " is neither hex nor base64");
            }
        }
        if (key.length < MIN_KEY_BYTES) {
            throw new IllegalArgumentException(property + " must hold at least " + MIN_KEY_BYTES
                    + " bytes (hex or base64), got " + key.length
                    + "; make one with: openssl rand -base64 32");
        }
        return key;
    }

    /** A fresh random key, base64: what {@code serve} uses when given none. */
    public static String randomKey() {
        byte[] key = new byte[MIN_KEY_BYTES];
        new SecureRandom().nextBytes(key);
        return Base64.getEncoder().encodeToString(key);
    }

    public boolean signs() {
        return key != null;
    }

    /** The value to store for {@code payload} at this address. */
    public byte[] seal(String model, EntryKind kind, byte[] hash, int length, byte[] payload) {
        if (key == null) {
            return payload;
        }
        byte[] sealed = new byte[ENVELOPE_BYTES + payload.length];
        System.arraycopy(MAGIC, 0, sealed, 0, MAGIC.length);
        System.arraycopy(payload, 0, sealed, ENVELOPE_BYTES, payload.length);
        byte[] mac = mac(model, kind, hash, length, sealed);
        System.arraycopy(mac, 0, sealed, MAGIC.length, MAC_BYTES);
        return sealed;
    }

    /**
     * The payload of a value read from this address, or empty (and counted) when it does not carry this
     * mesh's valid signature for exactly this address.
     */
    public Optional<byte[]> open(String model, EntryKind kind, byte[] hash, int length, byte[] stored) {
        if (key == null) {
            return Optional.of(stored);
        }
        if (stored.length < ENVELOPE_BYTES
                || !Arrays.equals(stored, 0, MAGIC.length, MAGIC, 0, MAGIC.length)
                || !MessageDigest.isEqual(
                        mac(model, kind, hash, length, stored),
                        Arrays.copyOfRange(stored, MAGIC.length, ENVELOPE_BYTES))) {
            rejected.increment();
            return Optional.empty();
        }
        return Optional.of(Arrays.copyOfRange(stored, ENVELOPE_BYTES, stored.length));
    }

    /** HMAC over the magic, the address and the payload of {@code envelope} (its MAC field skipped). */
    private byte[] mac(String model, EntryKind kind, byte[] hash, int length, byte[] envelope) {
        Mac mac;
        try {
            mac = Mac.getInstance(ALGORITHM);
            mac.init(key);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 is unavailable", e); // every JDK has it
        }
        byte[] modelBytes = model.getBytes(StandardCharsets.UTF_8);
        // Fixed-width fields, the variable one length-prefixed: no two addresses share an encoding.
        mac.update(ByteBuffer.allocate(MAGIC.length + 4 + modelBytes.length + 4 + 4 + hash.length + 4)
                .put(MAGIC)
                .putInt(modelBytes.length)
                .put(modelBytes)
                .putInt(kind.getNumber())
                .putInt(hash.length)
                .put(hash)
                .putInt(length)
                .array());
        mac.update(envelope, ENVELOPE_BYTES, envelope.length - ENVELOPE_BYTES);
        return mac.doFinal();
    }

    @Override
    public String toString() {
        return key == null ? "EntrySigner[unsigned]" : "EntrySigner[HmacSHA256]";
    }
}
