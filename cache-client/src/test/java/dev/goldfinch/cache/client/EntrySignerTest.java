package dev.goldfinch.cache.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.proto.internal.v1.EntryKind;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.Base64;
import java.util.HexFormat;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The envelope binds a payload to its address and the mesh key; the key shows up nowhere. */
class EntrySignerTest {
    static final EntryKind CP = EntryKind.ENTRY_KIND_CHECKPOINT;
    final SimpleMeterRegistry meters = new SimpleMeterRegistry();
    final byte[] hash = HexFormat.of().parseHex("00112233445566778899aabbccddeeff");
    final byte[] payload = randomKey(2);

    double rejected() {
        return meters.counter(EntrySigner.REJECTED_METRIC, "reason", "signature")
                .count();
    }

    static byte[] randomKey(long seed) {
        byte[] k = new byte[32];
        new Random(seed).nextBytes(k);
        return k;
    }

    @Test
    void aSealedPayloadOpensAtItsAddressOnlyAndUnderItsKeyOnly() {
        EntrySigner signer = EntrySigner.withKey(randomKey(3), meters);
        byte[] sealed = signer.seal("m", CP, hash, 64, payload);
        assertEquals(payload.length + EntrySigner.ENVELOPE_BYTES, sealed.length);
        assertArrayEquals(payload, signer.open("m", CP, hash, 64, sealed).orElseThrow());
        assertEquals(0, rejected());

        byte[] otherHash = hash.clone();
        otherHash[15] ^= 1;
        assertTrue(signer.open("m2", CP, hash, 64, sealed).isEmpty(), "another model");
        assertTrue(
                signer.open("m", EntryKind.ENTRY_KIND_KEY_BLOCK, hash, 64, sealed)
                        .isEmpty(),
                "another kind");
        assertTrue(signer.open("m", CP, otherHash, 64, sealed).isEmpty(), "another prefix");
        assertTrue(signer.open("m", CP, hash, 65, sealed).isEmpty(), "another length");
        assertTrue(
                EntrySigner.withKey(randomKey(4), meters)
                        .open("m", CP, hash, 64, sealed)
                        .isEmpty(),
                "another mesh's key");
        assertTrue(signer.open("m", CP, hash, 64, payload).isEmpty(), "a bare, unsigned payload");
        assertTrue(signer.open("m", CP, hash, 64, new byte[3]).isEmpty(), "shorter than the envelope");
        for (int at : new int[] {0, 4, 35, 36, sealed.length - 1}) {
            byte[] tampered = sealed.clone();
            tampered[at] ^= 0x10;
            assertTrue(signer.open("m", CP, hash, 64, tampered).isEmpty(), "byte " + at + " changed");
        }
        assertEquals(12, rejected(), "every refusal is counted");
    }

    @Test
    void keysAreHexOrBase64OfAtLeast32BytesAndNeverEchoed() {
        byte[] k = randomKey(5);
        assertArrayEquals(k, EntrySigner.parseKey(HexFormat.of().formatHex(k), "p"));
        assertArrayEquals(k, EntrySigner.parseKey(" " + Base64.getEncoder().encodeToString(k) + "\n", "p"));
        assertArrayEquals(k, EntrySigner.parseKey(Base64.getUrlEncoder().encodeToString(k), "p"));
        assertEquals(32, Base64.getDecoder().decode(EntrySigner.randomKey()).length);

        String shortKey = Base64.getEncoder().encodeToString("sixteen byte key".getBytes());
        IllegalArgumentException tooShort =
                assertThrows(IllegalArgumentException.class, () -> EntrySigner.parseKey(shortKey, "the.property"));
        assertTrue(tooShort.getMessage().contains("the.property")
                && tooShort.getMessage().contains("32"));
        assertFalse(tooShort.getMessage().contains(shortKey), "the key is not in the message");
        IllegalArgumentException garbage =
                assertThrows(IllegalArgumentException.class, () -> EntrySigner.parseKey("not a key!", "the.property"));
        assertFalse(garbage.getMessage().contains("not a key"));
        assertThrows(IllegalArgumentException.class, () -> EntrySigner.withKey(new byte[31], meters));

        String text = HexFormat.of().formatHex(k);
        CacheClientProperties props = new CacheClientProperties(null, text, null);
        assertFalse(props.toString().contains(text), props.toString());
        EntrySigner signer = props.signer(meters);
        assertFalse(signer.toString().contains(text), signer.toString());
        IllegalStateException none = assertThrows(
                IllegalStateException.class, () -> new CacheClientProperties(null, null, null).signer(meters));
        assertTrue(none.getMessage().contains(CacheClientProperties.ALLOW_UNSIGNED));
        assertFalse(new CacheClientProperties(null, "", true).signer(meters).signs());
    }

    @Test
    void anUnsignedSignerStoresPayloadsBare() {
        EntrySigner unsigned = EntrySigner.unsigned(meters);
        assertArrayEquals(payload, unsigned.seal("m", CP, hash, 64, payload));
        assertArrayEquals(payload, unsigned.open("m", CP, hash, 64, payload).orElseThrow());
    }
}
