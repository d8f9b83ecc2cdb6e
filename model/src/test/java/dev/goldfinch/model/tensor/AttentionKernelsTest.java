package dev.goldfinch.model.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The attention kernels against plain scalar loops. */
class AttentionKernelsTest {
    @ParameterizedTest
    @CsvSource({"64,1", "64,300", "20,7", "5,3"})
    void weightedRowSumIsOneFusedMultiplyAddPerRowInOrder(int width, int count) {
        Random random = new Random(width * 31L + count);
        int stride = width * 3;
        int offset = width;
        float[] rows = MatrixKernelTest.gaussian(random, count * stride);
        float[] w = MatrixKernelTest.gaussian(random, count);
        float[] y = MatrixKernelTest.gaussian(random, width + 2);
        float[] expected = y.clone();
        for (int i = 0; i < width; i++) {
            for (int p = 0; p < count; p++) {
                expected[1 + i] = Math.fma(rows[p * stride + offset + i], w[p], expected[1 + i]);
            }
        }
        Kernels.weightedRowSum(w, count, rows, offset, stride, y, 1, width);
        assertArrayEquals(expected, y);
    }

    @ParameterizedTest
    @CsvSource({"64", "20", "3"})
    void dotIsCloseToTheExactSumAndDeterministic(int n) {
        Random random = new Random(n);
        float[] a = MatrixKernelTest.gaussian(random, n + 1);
        float[] b = MatrixKernelTest.gaussian(random, n + 2);
        double exact = 0;
        for (int i = 0; i < n; i++) {
            exact += (double) a[1 + i] * b[2 + i];
        }
        float first = Kernels.dot(a, 1, b, 2, n);
        assertEquals(exact, first, 1e-4 * n);
        assertEquals(Float.floatToIntBits(first), Float.floatToIntBits(Kernels.dot(a, 1, b, 2, n)));
    }
}
