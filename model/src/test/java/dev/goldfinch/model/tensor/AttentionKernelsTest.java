package dev.goldfinch.model.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The attention kernels against plain scalar loops. */
class AttentionKernelsTest {
    @ParameterizedTest
    @CsvSource({"64,1", "64,300", "20,7", "5,3", "100,9", "128,5", "200,6"})
    void weightedRowSumIsOneFusedMultiplyAddPerRowInOrder(int width, int count) {
        Random random = new Random(width * 31L + count);
        int stride = width * 3;
        int offset = width;
        float[] rows = MatrixKernelTest.gaussian(random, count * stride);
        float[] w = MatrixKernelTest.gaussian(random, count + 2); // weights from w[2]
        float[] y = MatrixKernelTest.gaussian(random, width + 2);
        float[] expected = y.clone();
        for (int i = 0; i < width; i++) {
            for (int p = 0; p < count; p++) {
                expected[1 + i] = Math.fma(rows[p * stride + offset + i], w[2 + p], expected[1 + i]);
            }
        }
        Kernels.weightedRowSum(w, 2, count, rows, offset, stride, y, 1, width);
        assertArrayEquals(expected, y);
    }

    @ParameterizedTest
    @CsvSource({"64", "66", "3"})
    void blockScoresMatchTheirScalarTwinAndTheExactProducts(int n) {
        Random random = new Random(n * 5L);
        int lanes = jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.length();
        float[] q = MatrixKernelTest.gaussian(random, n + 3);
        float[] kt = MatrixKernelTest.gaussian(random, 7 + n * lanes);
        float[] vector = new float[lanes + 2];
        float[] scalar = new float[lanes + 2];
        float maxVector = Kernels.blockScores(q, 3, kt, 7, n, 0.125f, vector, 2);
        float maxScalar = Kernels.blockScoresScalar(q, 3, kt, 7, n, 0.125f, scalar, 2);
        assertArrayEquals(scalar, vector);
        assertEquals(Float.floatToIntBits(maxScalar), Float.floatToIntBits(maxVector));
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < lanes; i++) {
            double exact = 0;
            for (int d = 0; d < n; d++) {
                exact += (double) q[3 + d] * kt[7 + d * lanes + i];
            }
            assertEquals(exact * 0.125, vector[2 + i], 1e-5 * n);
            max = Math.max(max, vector[2 + i]);
        }
        assertEquals(max, maxVector);
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
