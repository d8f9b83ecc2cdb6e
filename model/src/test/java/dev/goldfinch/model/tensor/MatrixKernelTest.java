package dev.goldfinch.model.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The tiled kernels against their scalar twins: bit-identical to one dot per output, close to a double reference. */
class MatrixKernelTest {
    @ParameterizedTest
    @CsvSource({
        "1,16,1",
        "4,16,4",
        "7,33,5",
        "13,100,9",
        "64,768,1",
        "64,768,16",
        "9,5,3",
        "130,257,7",
        "100,64,8",
        "17,32,1"
    })
    void tiledKernelsMatchTheScalarOrderBitForBitForF32AndBf16(int rows, int cols, int n) {
        Random random = new Random(rows * 31L + cols * 7L + n);
        float[] w = gaussian(random, rows * cols);
        float[] x = gaussian(random, n * cols);
        check(Matrix.ofFloats(rows, cols, w), w, x, rows, cols, n, 1e-4);
        // bf16 weights: the vector widening must read the same values the scalar twin does.
        java.lang.foreign.MemorySegment bf = java.lang.foreign.Arena.ofAuto().allocate(w.length * 2L);
        for (int i = 0; i < w.length; i++) {
            short h = Floats.floatToBf16(w[i]);
            bf.set(
                    java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN),
                    i * 2L,
                    h);
            w[i] = Floats.bf16ToFloat(h);
        }
        Matrix b = Matrix.of(new Tensor("w", DType.BF16, new long[] {rows, cols}, bf));
        check(b, w, x, rows, cols, n, 1e-4);
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < cols; j++) {
                assertEquals(w[r * cols + j], b.get(r, j), "bf16 weight " + r + "," + j + " as packed");
            }
        }
    }

    @ParameterizedTest
    @CsvSource({
        "1,32,1",
        "5,64,4",
        "13,96,9",
        "64,768,1",
        "64,768,16",
        "100,64,8",
        "200,96,2",
        "70,160,3",
        "33,64,5",
        "300,64,1",
        "137,96,1",
        "67,160,6",
        "129,2688,7"
    })
    void q8MatchesItsScalarTwinAndStaysNearTheWeights(int rows, int cols, int n) {
        Random random = new Random(rows + cols + n);
        float[] w = gaussian(random, rows * cols);
        float[] x = gaussian(random, n * cols);
        Matrix q = Matrix.quantizeQ8(Matrix.ofFloats(rows, cols, w));
        assertTrue(q instanceof Q8Matrix);
        int panels = (rows + Matrix.PANEL - 1) / Matrix.PANEL;
        assertEquals((long) panels * Matrix.PANEL * (cols / 32) * 36L, q.byteSize());
        float[] dequantized = new float[rows * cols];
        for (int r = 0; r < rows; r++) {
            q.copyRow(r, dequantized, r * cols);
            for (int j = 0; j < cols; j++) {
                float amax = 0;
                for (int i = j / 32 * 32; i < j / 32 * 32 + 32; i++) {
                    amax = Math.max(amax, Math.abs(w[r * cols + i]));
                }
                assertTrue(
                        Math.abs(dequantized[r * cols + j] - w[r * cols + j]) <= amax / 127 * 0.51 + 1e-3 * amax,
                        "weight " + r + "," + j);
            }
        }
        check(q, dequantized, x, rows, cols, n, 1e-4);
        // Batched decode and chunked prefill rely on it: each input of a batch gets the bits it gets alone.
        float[] batch = new float[n * rows];
        q.matmulRows(x, n, batch, 0, rows);
        for (int t = 0; t < n; t++) {
            float[] alone = new float[rows];
            q.matmulRows(java.util.Arrays.copyOfRange(x, t * cols, (t + 1) * cols), 1, alone, 0, rows);
            assertArrayEquals(alone, java.util.Arrays.copyOfRange(batch, t * rows, (t + 1) * rows), "input " + t);
        }
    }

    static float[] gaussian(Random random, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) random.nextGaussian();
        }
        return a;
    }

    private static void check(Matrix m, float[] w, float[] x, int rows, int cols, int n, double tolerance) {
        float[] tiled = new float[n * rows];
        float[] reference = new float[n * rows];
        m.matmulRows(x, n, tiled, 0, rows);
        m.matmulRowsScalarOrder(x, n, reference, 0, rows);
        assertArrayEquals(reference, tiled);
        // A sub-range of rows (how the pool splits the work) writes only its rows, with the same bits.
        float[] part = new float[n * rows];
        int r0 = rows / 3 / Matrix.PANEL * Matrix.PANEL;
        m.matmulRows(x, n, part, r0, rows);
        for (int t = 0; t < n; t++) {
            for (int r = 0; r < rows; r++) {
                float expected = r >= r0 ? reference[t * rows + r] : 0f;
                assertTrue(Float.compare(expected, part[t * rows + r]) == 0, "row " + r + " input " + t);
            }
        }
        for (int t = 0; t < n; t++) {
            for (int r = 0; r < rows; r++) {
                double exact = 0;
                for (int j = 0; j < cols; j++) {
                    exact += (double) w[r * cols + j] * x[t * cols + j];
                }
                assertTrue(
                        Math.abs(exact - tiled[t * rows + r]) <= tolerance * Math.sqrt(cols) * 4,
                        "vs double at " + r + "," + t);
            }
        }
    }
}
