package dev.goldfinch.model.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** The float32 exp and the kernels built on it: vector and scalar forms give the same bits, near Math.exp. */
class ExpKernelsTest {
    private static final jdk.incubator.vector.VectorSpecies<Float> S =
            jdk.incubator.vector.FloatVector.SPECIES_PREFERRED;

    private static float[] inputs() {
        Random random = new Random(3);
        float[] x = new float[S.length() * 4000];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) ((random.nextDouble() * 2 - 1) * (i % 3 == 0 ? 90 : 12));
        }
        float[] special = {
            0f,
            -0f,
            1f,
            -1f,
            Float.NaN,
            Float.POSITIVE_INFINITY,
            Float.NEGATIVE_INFINITY,
            88f,
            88.5f,
            -87.33654f,
            -100f,
            1e-8f
        };
        System.arraycopy(special, 0, x, 0, special.length);
        return x;
    }

    @Test
    void vectorAndScalarExpAgreeBitForBitAndStayWithinTwoUlpOfMathExp() {
        float[] x = inputs();
        float[] vector = x.clone();
        Kernels.expInPlace(vector, 0, vector.length - 3); // the last three through the scalar tail
        for (int i = vector.length - 3; i < vector.length; i++) {
            vector[i] = Kernels.exp(vector[i]);
        }
        for (int i = 0; i < x.length; i++) {
            float scalar = Kernels.exp(x[i]);
            assertEquals(Float.floatToIntBits(scalar), Float.floatToIntBits(vector[i]), "exp(" + x[i] + ")");
            if (x[i] >= -87.3f && x[i] <= 88f) {
                float exact = (float) Math.exp(x[i]);
                assertTrue(
                        Math.abs(scalar - exact) <= 2 * Math.ulp(exact),
                        "exp(" + x[i] + ") = " + scalar + ", Math.exp " + exact);
            }
        }
        assertTrue(Float.isNaN(Kernels.exp(Float.NaN)));
        assertEquals(1f, Kernels.exp(0f));
        assertEquals(
                (float) Math.exp(88),
                Kernels.exp(Float.POSITIVE_INFINITY),
                Math.ulp((float) Math.exp(88)) * 2,
                "saturates at e^88");
        assertTrue(
                Kernels.exp(Float.NEGATIVE_INFINITY) > 0 && Kernels.exp(Float.NEGATIVE_INFINITY) < 1.2e-38f * 1.01f,
                "flushes to e^-87.33");
    }

    @Test
    void decaySigmoidAndSiluMatchTheirScalarLoops() {
        Random random = new Random(5);
        int rows = 3;
        int c = S.length() * 5 + 3; // a vector part and a tail in every row
        float[] base = MatrixKernelTest.gaussian(random, c);
        float[] d = MatrixKernelTest.gaussian(random, rows * c);
        float[] expected = d.clone();
        for (int t = 0; t < rows; t++) {
            for (int i = 0; i < c; i++) {
                expected[t * c + i] = Kernels.exp(-Kernels.exp(base[i] + expected[t * c + i]));
            }
        }
        for (int t = 0; t < rows; t++) {
            Kernels.decayRow(base, d, t * c, c);
        }
        assertArrayEquals(expected, d);

        float[] out = MatrixKernelTest.gaussian(random, c);
        float[] r = MatrixKernelTest.gaussian(random, c);
        float[] sig = out.clone();
        float[] silu = out.clone();
        for (int i = 0; i < c; i++) {
            float sigmoid = 1f / (Kernels.exp(-r[i]) + 1f);
            sig[i] *= sigmoid;
            silu[i] = silu[i] * r[i] * sigmoid;
            assertEquals((float) (1 / (1 + Math.exp(-r[i]))), sigmoid, 1e-6f);
        }
        float[] gotSig = out.clone();
        Kernels.mulSigmoid(gotSig, r.clone(), 0, c);
        assertArrayEquals(sig, gotSig);
        float[] gotSilu = out.clone();
        Kernels.mulSilu(gotSilu, r.clone(), 0, c);
        assertArrayEquals(silu, gotSilu);
    }
}
