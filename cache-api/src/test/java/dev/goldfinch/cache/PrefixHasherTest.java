package dev.goldfinch.cache;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Arrays;
import org.junit.jupiter.api.Test;

class PrefixHasherTest {
    final PrefixHasher h = new PrefixHasher(4);
    final int[] a = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};

    @Test
    void sharedBlockAlignedPrefixesShareTheirBlockHashes() {
        int[] b = a.clone();
        b[9] = 99; // differs only in the third, partial block
        byte[][] ca = h.chain("m", "s", a, a.length);
        byte[][] cb = h.chain("m", "s", b, b.length);
        assertEquals(3, ca.length);
        for (int i = 0; i < ca.length; i++) {
            assertArrayEquals(ca[i], cb[i], "block " + i);
        }
        assertFalse(Arrays.equals(h.prefix("m", "s", a, 10), h.prefix("m", "s", b, 10)));
        assertArrayEquals(h.prefix("m", "s", a, 9), h.prefix("m", "s", b, 9));
        int[] c = a.clone();
        c[0] = 42; // a change in block 1 changes every later hash
        assertFalse(Arrays.equals(ca[2], h.chain("m", "s", c, c.length)[2]));
    }

    @Test
    void saltAndModelIsolateEntries() {
        assertFalse(Arrays.equals(h.prefix("m", "tenant-a", a, 8), h.prefix("m", "tenant-b", a, 8)));
        assertFalse(Arrays.equals(h.prefix("m1", "s", a, 8), h.prefix("m2", "s", a, 8)));
        // Length-prefixed fields: ("ab", "c") and ("a", "bc") are different roots.
        assertFalse(Arrays.equals(h.root("ab", "c"), h.root("a", "bc")));
    }

    @Test
    void aSaltPartitionsOnlyInsideItsTenant() {
        String a1 = PrefixHasher.namespace("a", "bc");
        assertEquals(a1, PrefixHasher.namespace("a", "bc"));
        assertFalse(a1.equals(PrefixHasher.namespace("ab", "c")), "length-prefixed: no shift between the parts");
        assertFalse(a1.equals(PrefixHasher.namespace("b", "bc")), "another tenant with the same salt");
        assertFalse(PrefixHasher.namespace("b", "").equals(PrefixHasher.namespace("b", "a")), "a tenant's id as salt");
        assertFalse(PrefixHasher.namespace("", "a").equals(PrefixHasher.namespace("a", "")));
        assertEquals(32, a1.length());
        assertFalse(Arrays.equals(
                h.prefix("m", PrefixHasher.namespace("a", "s"), a, 8),
                h.prefix("m", PrefixHasher.namespace("b", "s"), a, 8)));
    }

    @Test
    void everyPrefixLengthHasItsOwnAddress() {
        for (int p = 1; p <= a.length; p++) {
            for (int q = p + 1; q <= a.length; q++) {
                assertFalse(Arrays.equals(h.prefix("m", "s", a, p), h.prefix("m", "s", a, q)), p + " vs " + q);
            }
        }
        assertArrayEquals(h.chain("m", "s", a, 8)[2], h.prefix("m", "s", a, 8));
        assertEquals(32, PrefixHasher.hex(h.root("m", "s")).length());
        assertThrows(IllegalArgumentException.class, () -> new PrefixHasher(0));
    }
}
