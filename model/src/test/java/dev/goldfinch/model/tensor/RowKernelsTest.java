package dev.goldfinch.model.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The row kernels (layer norm, lerp, dot) against their scalar twins, bit for bit, at widths with and without a
 * scalar tail; rms norm (scalar only) against its definition in doubles.
 */
class RowKernelsTest {
    private static final int ROWS = 3;

    @ParameterizedTest
    @ValueSource(ints = {1, 5, 32, 37, 128, 131})
    void layerNormMatchesItsScalarTwinBitForBit(int width) {
        Random random = new Random(width);
        float[] x =
                scaled(MatrixKernelTest.gaussian(random, ROWS * width), 4f, 1.5f); // an offset mean, as residuals have
        float[] gamma = MatrixKernelTest.gaussian(random, width + 2);
        float[] beta = MatrixKernelTest.gaussian(random, width + 2);
        float[] vector = new float[x.length];
        Kernels.layerNorm(
                x, ROWS, java.util.Arrays.copyOf(gamma, width), java.util.Arrays.copyOf(beta, width), 1e-5f, vector);
        float[] scalar = new float[x.length];
        for (int t = 0; t < ROWS; t++) {
            Kernels.layerNormSliceScalar(x, t * width, width, gamma, beta, 0, 1e-5f, scalar);
        }
        assertBits(scalar, vector);
        // A slice with its own offset into the affine weights (plain Finch's per-head GroupNorm).
        float[] sliceVector = x.clone();
        float[] sliceScalar = x.clone();
        Kernels.layerNormSlice(x, width, width, gamma, beta, 2, 64e-5f, sliceVector);
        Kernels.layerNormSliceScalar(x, width, width, gamma, beta, 2, 64e-5f, sliceScalar);
        assertBits(sliceScalar, sliceVector);
        // And it is a layer norm (row 0 in doubles).
        double mean = 0;
        for (int i = 0; i < width; i++) {
            mean += x[i];
        }
        mean /= width;
        double var = 0;
        for (int i = 0; i < width; i++) {
            var += (x[i] - mean) * (x[i] - mean);
        }
        var /= width;
        for (int i = 0; i < width; i++) {
            double want = (x[i] - mean) / Math.sqrt(var + 1e-5) * gamma[i] + beta[i];
            assertEquals(want, vector[i], 1e-4 * Math.max(1, Math.abs(want)));
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 5, 32, 37, 128, 131})
    void lerpMatchesItsScalarTwinBitForBitWithAndWithoutLora(int width) {
        Random random = new Random(width + 1000);
        float[] x = MatrixKernelTest.gaussian(random, ROWS * width);
        float[] dx = MatrixKernelTest.gaussian(random, ROWS * width);
        float[] mix = MatrixKernelTest.gaussian(random, width);
        float[] lora = MatrixKernelTest.gaussian(random, ROWS * width);
        x[0] = -0f; // -0 + dx * (+0 or -0): the sign of a zero must not depend on the path
        dx[0] = 1f;
        mix[0] = -0f;
        for (float[] l : new float[][] {null, lora}) {
            float[] vector = new float[x.length];
            float[] scalar = new float[x.length];
            Kernels.lerp(x, dx, mix, l, width, vector);
            Kernels.lerpScalar(x, dx, mix, l, width, scalar);
            assertBits(scalar, vector);
            int j = x.length - 1;
            float want = x[j] + dx[j] * (l == null ? mix[j % width] : mix[j % width] + l[j]);
            assertEquals(want, vector[j]);
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 5, 32, 37, 128, 131})
    void dotMatchesItsScalarTwinBitForBit(int n) {
        Random random = new Random(n + 2000);
        float[] a = MatrixKernelTest.gaussian(random, n + 3);
        float[] b = MatrixKernelTest.gaussian(random, n + 5);
        float vector = Kernels.dot(a, 3, b, 5, n);
        float scalar = Kernels.dotScalar(a, 3, b, 5, n);
        assertEquals(Float.floatToRawIntBits(scalar), Float.floatToRawIntBits(vector), "dot of " + n);
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 8, 131})
    void rmsNormIsItsDefinitionWithEpsOutsideTheRoot(int width) {
        Random random = new Random(width + 3000);
        float[] x = MatrixKernelTest.gaussian(random, ROWS * width);
        float[] out = new float[x.length];
        Kernels.rmsNorm(x, ROWS, width, 1e-8f, out);
        for (int t = 0; t < ROWS; t++) {
            double ss = 0;
            for (int i = 0; i < width; i++) {
                ss += (double) x[t * width + i] * x[t * width + i];
            }
            double rms = Math.sqrt(ss / width) + 1e-8;
            for (int i = 0; i < width; i++) {
                assertEquals(
                        x[t * width + i] / rms, out[t * width + i], 1e-6 * Math.max(1, Math.abs(out[t * width + i])));
            }
        }
    }

    private static float[] scaled(float[] v, float by, float plus) {
        for (int i = 0; i < v.length; i++) {
            v[i] = v[i] * by + plus;
        }
        return v;
    }

    private static void assertBits(float[] want, float[] got) {
        int[] w = new int[want.length];
        int[] g = new int[got.length];
        for (int i = 0; i < w.length; i++) {
            w[i] = Float.floatToRawIntBits(want[i]);
            g[i] = Float.floatToRawIntBits(got[i]);
        }
        assertArrayEquals(w, g);
    }
}
