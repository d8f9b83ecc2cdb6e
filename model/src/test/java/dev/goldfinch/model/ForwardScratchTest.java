package dev.goldfinch.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class ForwardScratchTest {
    @Test
    void aRepeatedShapeGetsLastPassArraysZeroedAndAPassNeverSharesOne() {
        ForwardScratch s = ForwardScratch.begin();
        float[] a = s.take(8);
        float[] b = s.take(8);
        assertNotSame(a, b);
        a[3] = 7;
        s = ForwardScratch.begin();
        assertSame(a, s.take(8), "same request, same array");
        assertEquals(0f, a[3], "handed out zeroed");
        assertSame(b, s.take(8));
        float[] c = s.take(9);
        assertEquals(9, c.length, "a new length gets a new array");
        s = ForwardScratch.begin();
        s.take(8);
        s.take(8);
        assertSame(c, s.take(9));
    }

    @Test
    void growingBuffersAreReplacedRarelyAndHugeOnesAreNotKept() {
        ForwardScratch s = ForwardScratch.begin();
        float[] scores = s.takeAtLeast(100);
        s = ForwardScratch.begin();
        assertSame(scores, s.takeAtLeast(90));
        s = ForwardScratch.begin();
        float[] grown = s.takeAtLeast(101);
        assertTrue(grown.length >= 150, "grows by half, not by one");
        s = ForwardScratch.begin();
        assertSame(grown, s.takeAtLeast(140));
        s = ForwardScratch.begin();
        float[] huge = s.take(ForwardScratch.MAX_KEPT_LENGTH + 1);
        s = ForwardScratch.begin();
        assertNotSame(huge, s.take(ForwardScratch.MAX_KEPT_LENGTH + 1), "a long prefill's arrays are not pinned");
    }
}
