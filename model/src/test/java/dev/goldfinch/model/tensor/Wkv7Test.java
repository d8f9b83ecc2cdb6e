package dev.goldfinch.model.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The vectorised RWKV-7 head against its scalar twin (same bits) and against the recurrence in doubles. */
class Wkv7Test {
    @ParameterizedTest
    @ValueSource(ints = {64, 8, 20, 33})
    void vectorisedHeadMatchesItsScalarTwinBitForBitOverManyTokens(int hs) {
        Random random = new Random(hs * 13L);
        int tokens = 6;
        float[] r = MatrixKernelTest.gaussian(random, tokens * hs);
        float[] k = MatrixKernelTest.gaussian(random, tokens * hs);
        float[] v = MatrixKernelTest.gaussian(random, tokens * hs);
        float[] w = new float[tokens * hs];
        float[] kk = new float[tokens * hs];
        float[] b = new float[tokens * hs];
        for (int t = 0; t < tokens; t++) {
            double norm = 0;
            for (int j = 0; j < hs; j++) {
                kk[t * hs + j] = (float) random.nextGaussian();
                norm += kk[t * hs + j] * kk[t * hs + j];
            }
            for (int j = 0; j < hs; j++) {
                int i = t * hs + j;
                w[i] = (float) Math.exp(-0.6 / (1 + Math.exp(-random.nextGaussian())));
                kk[i] /= (float) Math.sqrt(norm); // a unit vector, as the model makes it
                b[i] = kk[i] * (float) random.nextDouble(); // kk * a, a in (0, 1)
            }
        }
        float[] vectorState = MatrixKernelTest.gaussian(random, hs * hs);
        float[] scalarState = vectorState.clone();
        double[] exact = new double[hs * hs]; // [key j][value i]
        for (int i = 0; i < exact.length; i++) {
            exact[i] = vectorState[i];
        }
        float[] yVector = new float[tokens * hs];
        float[] yScalar = new float[tokens * hs];
        for (int t = 0; t < tokens; t++) {
            int at = t * hs;
            Wkv7.head(vectorState, 0, r, w, k, v, kk, b, yVector, at, hs);
            Wkv7.headScalar(scalarState, 0, r, w, k, v, kk, b, yScalar, at, hs);
            // S = S diag(w) - (S kk) (kk a)^T + v k^T, in the demo's [value][key] terms; then y = S r.
            for (int i = 0; i < hs; i++) {
                double sa = 0;
                for (int j = 0; j < hs; j++) {
                    sa -= exact[j * hs + i] * kk[at + j];
                }
                double y = 0;
                for (int j = 0; j < hs; j++) {
                    exact[j * hs + i] = exact[j * hs + i] * w[at + j] + sa * b[at + j] + (double) v[at + i] * k[at + j];
                    y += exact[j * hs + i] * r[at + j];
                }
                assertTrue(Math.abs(y - yVector[at + i]) < 1e-3 * (1 + Math.abs(y)), "token " + t + " channel " + i);
            }
        }
        assertArrayEquals(yScalar, yVector);
        assertArrayEquals(scalarState, vectorState);
    }
}
