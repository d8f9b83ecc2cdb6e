package dev.goldfinch.model.state;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class HeadRowsTest {
    /** Rows of [3 heads x 2 channels]: value = 100 * row + column. */
    private static float[] rows(int from, int n) {
        float[] r = new float[n * 6];
        for (int i = 0; i < n; i++) {
            for (int col = 0; col < 6; col++) {
                r[i * 6 + col] = 100 * (from + i) + col;
            }
        }
        return r;
    }

    @Test
    void eachHeadHoldsItsColumnsOfEveryRowContiguously() {
        HeadRows heads = new HeadRows(3, 2);
        heads.appendSplit(rows(0, 2), 0, 2);
        heads.appendSplit(rows(2, 1), 0, 1);
        assertEquals(3, heads.rows());
        for (int h = 0; h < 3; h++) {
            float[] a = heads.head(h).floats();
            for (int r = 0; r < 3; r++) {
                assertEquals(100 * r + 2 * h, a[r * 2], "head " + h + " row " + r);
                assertEquals(100 * r + 2 * h + 1, a[r * 2 + 1], "head " + h + " row " + r);
            }
        }
    }

    @ParameterizedTest
    @EnumSource(KvFormat.class)
    void forksAndReservesNeverShowEachOthersAppends(KvFormat format) {
        HeadRows base = new HeadRows(format, 3, 2, 1);
        base.appendSplit(rows(0, 4), 0, 4);
        HeadRows fork = base.fork();
        HeadRows prefix = base.prefix(2);
        fork.reserve(40);
        base.appendSplit(rows(4, 1), 0, 1);
        fork.appendSplit(rows(70, 1), 0, 1);
        prefix.appendSplit(rows(90, 1), 0, 1);
        assertEquals(5, base.rows());
        assertEquals(5, fork.rows());
        assertEquals(3, prefix.rows());
        for (int h = 0; h < 3; h++) {
            // bf16 keeps 8 bits of mantissa, int8 7 bits below a row's largest value: within 1 % here
            assertEquals(400 + 2 * h, base.head(h).get(4, 0), 0.01 * (400 + 2 * h));
            assertEquals(7000 + 2 * h, fork.head(h).get(4, 0), 0.01 * (7000 + 2 * h));
            assertEquals(9000 + 2 * h, prefix.head(h).get(2, 0), 0.01 * (9000 + 2 * h));
            assertEquals(100 + 2 * h, prefix.head(h).get(1, 0), 0.01 * (100 + 2 * h), "the shared rows are intact");
            assertEquals(format, prefix.head(h).format());
        }
    }

    @Test
    void int8KeepsOneScalePerRunOfARow() {
        KvRows rows = new KvRows(KvFormat.INT8, 4, 2);
        rows.append(new float[] {1f, -2f, 0.5f, 0.25f, 0f, 0f, 0f, 0f}, 0, 2);
        assertEquals(2f / 127, rows.scales()[0], 1e-9, "max |x| / 127 over the first run");
        assertEquals(0.5f / 127, rows.scales()[1], 1e-9, "its own over the second");
        assertEquals(-127, rows.bytes()[1]);
        assertEquals(127, rows.bytes()[2]);
        assertEquals(0.25f, rows.get(0, 3), 0.5f / 254);
        assertEquals(0f, rows.get(1, 0), "a run of zeros stays zero");
    }
}
