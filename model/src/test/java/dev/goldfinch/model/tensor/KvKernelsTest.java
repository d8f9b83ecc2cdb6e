package dev.goldfinch.model.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The compact-K/V attention kernels: vector form and scalar twin give the same bits, and the widened values' sums. */
class KvKernelsTest {
    private static final int LANES = jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.length();

    private static short[] halves(float[] x) {
        short[] h = new short[x.length];
        for (int i = 0; i < x.length; i++) {
            h[i] = Floats.floatToBf16(x[i]);
        }
        return h;
    }

    private static byte[] bytes(Random random, int n) {
        byte[] b = new byte[n];
        random.nextBytes(b);
        for (int i = 0; i < n; i++) {
            b[i] = (byte) Math.max(-127, b[i]);
        }
        return b;
    }

    @ParameterizedTest
    @CsvSource({"64", "20", "3"})
    void dotsMatchTheirTwinsAndTheWidenedSum(int n) {
        Random random = new Random(n);
        float[] a = MatrixKernelTest.gaussian(random, n + 1);
        short[] h = halves(MatrixKernelTest.gaussian(random, n + 2));
        byte[] b = bytes(random, n + 2);
        float bf16 = KvKernels.dotBf16(a, 1, h, 2, n);
        float int8 = KvKernels.dotInt8(a, 1, b, 2, n);
        assertEquals(Float.floatToIntBits(KvKernels.dotBf16Scalar(a, 1, h, 2, n)), Float.floatToIntBits(bf16));
        assertEquals(Float.floatToIntBits(KvKernels.dotInt8Scalar(a, 1, b, 2, n)), Float.floatToIntBits(int8));
        double exactBf16 = 0;
        double exactInt8 = 0;
        for (int i = 0; i < n; i++) {
            exactBf16 += (double) a[1 + i] * Floats.bf16ToFloat(h[2 + i]);
            exactInt8 += (double) a[1 + i] * b[2 + i];
        }
        assertEquals(exactBf16, bf16, 1e-5 * n);
        assertEquals(exactInt8, int8, 1e-3 * n);
    }

    @ParameterizedTest
    @CsvSource({"64", "66", "3"})
    void blockScoresMatchTheirTwinsAndTheWidenedProducts(int n) {
        Random random = new Random(n * 5L);
        float[] q = MatrixKernelTest.gaussian(random, n + 3);
        short[] kh = halves(MatrixKernelTest.gaussian(random, 7 + n * LANES));
        byte[] kb = bytes(random, 7 + n * LANES);
        float[] scales = new float[LANES + 1];
        for (int i = 0; i < scales.length; i++) {
            scales[i] = 0.001f + random.nextFloat() / 50;
        }
        float[] vector = new float[LANES + 2];
        float[] scalar = new float[LANES + 2];
        float max = KvKernels.blockScoresBf16(q, 3, kh, 7, n, 0.125f, vector, 2);
        assertEquals(
                Float.floatToIntBits(KvKernels.blockScoresBf16Scalar(q, 3, kh, 7, n, 0.125f, scalar, 2)),
                Float.floatToIntBits(max));
        assertArrayEquals(scalar, vector);
        for (int i = 0; i < LANES; i++) {
            double exact = 0;
            for (int d = 0; d < n; d++) {
                exact += (double) q[3 + d] * Floats.bf16ToFloat(kh[7 + d * LANES + i]);
            }
            assertEquals(exact * 0.125, vector[2 + i], 1e-5 * n);
        }
        max = KvKernels.blockScoresInt8(q, 3, kb, 7, scales, 1, n, 0.125f, vector, 2);
        assertEquals(
                Float.floatToIntBits(KvKernels.blockScoresInt8Scalar(q, 3, kb, 7, scales, 1, n, 0.125f, scalar, 2)),
                Float.floatToIntBits(max));
        assertArrayEquals(scalar, vector);
        for (int i = 0; i < LANES; i++) {
            double exact = 0;
            for (int d = 0; d < n; d++) {
                exact += (double) q[3 + d] * kb[7 + d * LANES + i];
            }
            assertEquals(exact * scales[1 + i] * 0.125, vector[2 + i], 1e-5 * n);
        }
    }

    @ParameterizedTest
    @CsvSource({"64,1", "64,300", "20,7", "5,3", "128,5", "200,6"})
    void weightedRowSumsMatchTheirTwins(int width, int count) {
        Random random = new Random(width * 31L + count);
        int stride = width * 3;
        short[] h = halves(MatrixKernelTest.gaussian(random, count * stride));
        byte[] b = bytes(random, count * stride);
        float[] rowScales = new float[count + 1];
        for (int p = 0; p < rowScales.length; p++) {
            rowScales[p] = random.nextFloat() / 100;
        }
        float[] w = MatrixKernelTest.gaussian(random, count + 2);
        float[] y = MatrixKernelTest.gaussian(random, width + 2);
        float[] vector = y.clone();
        float[] scalar = y.clone();
        KvKernels.weightedRowSumBf16(w, 2, count, h, width, stride, vector, 1, width);
        KvKernels.weightedRowSumBf16Scalar(w, 2, count, h, width, stride, scalar, 1, width);
        assertArrayEquals(scalar, vector);
        float[] widened = y.clone();
        for (int i = 0; i < width; i++) {
            for (int p = 0; p < count; p++) {
                widened[1 + i] = Math.fma(Floats.bf16ToFloat(h[p * stride + width + i]), w[2 + p], widened[1 + i]);
            }
        }
        assertArrayEquals(widened, vector, "bf16: one fused multiply-add per widened row, in order");
        vector = y.clone();
        scalar = y.clone();
        KvKernels.weightedRowSumInt8(w, 2, count, b, width, stride, rowScales, 1, vector, 1, width);
        KvKernels.weightedRowSumInt8Scalar(w, 2, count, b, width, stride, rowScales, 1, scalar, 1, width);
        assertArrayEquals(scalar, vector);
        for (int i = 0; i < width; i++) {
            double exact = y[1 + i];
            for (int p = 0; p < count; p++) {
                exact += (double) w[2 + p] * rowScales[1 + p] * b[p * stride + width + i];
            }
            assertEquals(exact, vector[1 + i], 1e-4 * count);
        }
    }
}
