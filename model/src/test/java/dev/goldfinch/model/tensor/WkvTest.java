package dev.goldfinch.model.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The vectorised WKV-6 head against its scalar twin (same bits) and against the recurrence in doubles. */
class WkvTest {
    @ParameterizedTest
    @CsvSource({"64,true", "64,false", "8,true", "20,true", "33,false"})
    void vectorisedHeadMatchesItsScalarTwinBitForBitOverManyTokens(int hs, boolean withBonus) {
        Random random = new Random(hs * 7L + (withBonus ? 1 : 0));
        int tokens = 5;
        float[] r = MatrixKernelTest.gaussian(random, tokens * hs);
        float[] k = MatrixKernelTest.gaussian(random, tokens * hs);
        float[] v = MatrixKernelTest.gaussian(random, tokens * hs);
        float[] decay = new float[tokens * hs];
        for (int i = 0; i < decay.length; i++) {
            decay[i] = (float) Math.exp(-Math.exp(random.nextGaussian()));
        }
        float[] bonus = withBonus ? MatrixKernelTest.gaussian(random, hs) : null;
        float[] vectorState = MatrixKernelTest.gaussian(random, hs * hs);
        float[] scalarState = vectorState.clone();
        double[] exactState = new double[hs * hs];
        for (int i = 0; i < exactState.length; i++) {
            exactState[i] = vectorState[i];
        }
        float[] yVector = new float[tokens * hs];
        float[] yScalar = new float[tokens * hs];
        for (int t = 0; t < tokens; t++) {
            Wkv.head(vectorState, 0, r, k, v, decay, bonus, 0, yVector, t * hs, hs);
            Wkv.headScalar(scalarState, 0, r, k, v, decay, bonus, 0, yScalar, t * hs, hs);
            for (int i = 0; i < hs; i++) {
                double y = 0;
                for (int j = 0; j < hs; j++) {
                    double u = bonus == null ? 0 : bonus[j];
                    int at = t * hs;
                    y += r[at + j] * (exactState[j * hs + i] + u * k[at + j] * v[at + i]);
                }
                assertTrue(
                        Math.abs(y - yVector[t * hs + i]) < 1e-3 * (1 + Math.abs(y)), "token " + t + " channel " + i);
            }
            for (int j = 0; j < hs; j++) {
                for (int i = 0; i < hs; i++) {
                    int at = t * hs;
                    exactState[j * hs + i] = decay[at + j] * exactState[j * hs + i] + (double) k[at + j] * v[at + i];
                }
            }
        }
        assertArrayEquals(yScalar, yVector);
        assertArrayEquals(scalarState, vectorState);
    }
}
