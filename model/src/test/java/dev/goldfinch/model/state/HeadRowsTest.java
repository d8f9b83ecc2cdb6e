package dev.goldfinch.model.state;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

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
            float[] a = heads.head(h).array();
            for (int r = 0; r < 3; r++) {
                assertEquals(100 * r + 2 * h, a[r * 2], "head " + h + " row " + r);
                assertEquals(100 * r + 2 * h + 1, a[r * 2 + 1], "head " + h + " row " + r);
            }
        }
    }

    @Test
    void forksAndReservesNeverShowEachOthersAppends() {
        HeadRows base = new HeadRows(3, 2);
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
            assertEquals(400 + 2 * h, base.head(h).get(4, 0));
            assertEquals(7000 + 2 * h, fork.head(h).get(4, 0));
            assertEquals(9000 + 2 * h, prefix.head(h).get(2, 0));
            assertEquals(100 + 2 * h, prefix.head(h).get(1, 0), "the shared rows are intact");
        }
    }
}
