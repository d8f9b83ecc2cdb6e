package dev.goldfinch.model.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;

class GangTest {
    @Test
    void everyPartRunsOnceAndFailuresReachTheCaller() {
        Gang gang = new Gang(3, "test-gang");
        for (int round = 0; round < 200; round++) {
            AtomicIntegerArray runs = new AtomicIntegerArray(3);
            gang.run(runs::incrementAndGet);
            assertArrayEquals(new int[] {1, 1, 1}, new int[] {runs.get(0), runs.get(1), runs.get(2)});
        }
        IllegalStateException e = assertThrows(
                IllegalStateException.class,
                () -> gang.run(part -> {
                    if (part == 2) {
                        throw new IllegalStateException("part 2 failed");
                    }
                }));
        assertEquals("part 2 failed", e.getMessage());
    }

    @Test
    void aJobStartedInsideAJobRunsInlineInsteadOfDeadlocking() {
        Gang gang = new Gang(2, "test-gang-nested");
        AtomicIntegerArray inner = new AtomicIntegerArray(2);
        gang.run(outer -> gang.run(inner::incrementAndGet));
        assertEquals(2, inner.get(0));
        assertEquals(2, inner.get(1));
    }
}
