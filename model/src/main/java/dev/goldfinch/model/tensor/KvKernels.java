package dev.goldfinch.model.tensor;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The attention kernels of {@link Kernels} over compact live keys and values (bf16, int8 with scales), each widening
 * its values to float32 inside the vector loop and each beside its scalar twin (same operations, same bits;
 * tested). bf16 is the top half of an f32 (shorts widened to ints, shifted up 16 bits); int8 bytes convert exactly.
 */
public final class KvKernels {
    private KvKernels() {}

    private static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;

    /** One vector of floats from {@code a[i..]}'s bf16 bits. */
    private static FloatVector bf16(short[] a, int i) {
        return ((IntVector)
                        ShortVector.fromArray(Matrix.HALVES, a, i).convertShape(VectorOperators.S2I, Matrix.INTS, 0))
                .lanewise(VectorOperators.LSHL, 16)
                .reinterpretAsFloats();
    }

    /** One vector of floats from {@code a[i..]}'s bytes. */
    private static FloatVector int8(byte[] a, int i) {
        return (FloatVector) ByteVector.fromArray(Q8Matrix.BYTES, a, i).convertShape(VectorOperators.B2F, SPECIES, 0);
    }

    /** {@link Kernels#dot} of floats with bf16 values: vector lanes folded in a fixed order, then the tail. */
    public static float dotBf16(float[] a, int ao, short[] b, int bo, int n) {
        int bound = SPECIES.loopBound(n);
        FloatVector acc = FloatVector.zero(SPECIES);
        for (int i = 0; i < bound; i += SPECIES.length()) {
            acc = FloatVector.fromArray(SPECIES, a, ao + i).fma(bf16(b, bo + i), acc);
        }
        float sum = Kernels.sumLanes(acc);
        for (int i = bound; i < n; i++) {
            sum += a[ao + i] * Floats.bf16ToFloat(b[bo + i]);
        }
        return sum;
    }

    /** The scalar twin of {@link #dotBf16}. */
    public static float dotBf16Scalar(float[] a, int ao, short[] b, int bo, int n) {
        int lanes = SPECIES.length();
        int bound = SPECIES.loopBound(n);
        float[] acc = new float[lanes];
        for (int i = 0; i < bound; i += lanes) {
            for (int l = 0; l < lanes; l++) {
                acc[l] = Math.fma(a[ao + i + l], Floats.bf16ToFloat(b[bo + i + l]), acc[l]);
            }
        }
        float sum = Kernels.sumLanesScalar(acc);
        for (int i = bound; i < n; i++) {
            sum += a[ao + i] * Floats.bf16ToFloat(b[bo + i]);
        }
        return sum;
    }

    /** {@link Kernels#dot} of floats with int8 values (unscaled: the caller multiplies by their scale): vector lanes folded in a fixed order, then the tail. */
    public static float dotInt8(float[] a, int ao, byte[] b, int bo, int n) {
        int bound = SPECIES.loopBound(n);
        FloatVector acc = FloatVector.zero(SPECIES);
        for (int i = 0; i < bound; i += SPECIES.length()) {
            acc = FloatVector.fromArray(SPECIES, a, ao + i).fma(int8(b, bo + i), acc);
        }
        float sum = Kernels.sumLanes(acc);
        for (int i = bound; i < n; i++) {
            sum += a[ao + i] * (float) b[bo + i];
        }
        return sum;
    }

    /** The scalar twin of {@link #dotInt8}. */
    public static float dotInt8Scalar(float[] a, int ao, byte[] b, int bo, int n) {
        int lanes = SPECIES.length();
        int bound = SPECIES.loopBound(n);
        float[] acc = new float[lanes];
        for (int i = 0; i < bound; i += lanes) {
            for (int l = 0; l < lanes; l++) {
                acc[l] = Math.fma(a[ao + i + l], (float) b[bo + i + l], acc[l]);
            }
        }
        float sum = Kernels.sumLanesScalar(acc);
        for (int i = bound; i < n; i++) {
            sum += a[ao + i] * (float) b[bo + i];
        }
        return sum;
    }

    /**
     * {@link Kernels#blockScores} over a block of bf16 keys stored transposed, widened on the fly: one
     * vector of scores, four chains ({@code d mod 4}) added as {@code (c0 + c1) + (c2 + c3)}. Returns the largest.
     */
    public static float blockScoresBf16(
            float[] q, int qo, short[] kt, int at, int n, float scale, float[] out, int oo) {
        int lanes = SPECIES.length();
        FloatVector a0 = FloatVector.zero(SPECIES);
        FloatVector a1 = a0;
        FloatVector a2 = a0;
        FloatVector a3 = a0;
        int d = 0;
        for (; d + 4 <= n; d += 4) {
            int k = at + d * lanes;
            a0 = bf16(kt, k).fma(FloatVector.broadcast(SPECIES, q[qo + d]), a0);
            a1 = bf16(kt, k + lanes).fma(FloatVector.broadcast(SPECIES, q[qo + d + 1]), a1);
            a2 = bf16(kt, k + 2 * lanes).fma(FloatVector.broadcast(SPECIES, q[qo + d + 2]), a2);
            a3 = bf16(kt, k + 3 * lanes).fma(FloatVector.broadcast(SPECIES, q[qo + d + 3]), a3);
        }
        for (; d < n; d++) {
            a0 = bf16(kt, at + d * lanes).fma(FloatVector.broadcast(SPECIES, q[qo + d]), a0);
        }
        FloatVector scores = a0.add(a1).add(a2.add(a3)).mul(scale);
        scores.intoArray(out, oo);
        return scores.reduceLanes(VectorOperators.MAX);
    }

    /** The scalar twin of {@link #blockScoresBf16}. */
    public static float blockScoresBf16Scalar(
            float[] q, int qo, short[] kt, int at, int n, float scale, float[] out, int oo) {
        int lanes = SPECIES.length();
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < lanes; i++) {
            float c0 = 0f;
            float c1 = 0f;
            float c2 = 0f;
            float c3 = 0f;
            int d = 0;
            for (; d + 4 <= n; d += 4) {
                c0 = Math.fma(Floats.bf16ToFloat(kt[at + d * lanes + i]), q[qo + d], c0);
                c1 = Math.fma(Floats.bf16ToFloat(kt[at + (d + 1) * lanes + i]), q[qo + d + 1], c1);
                c2 = Math.fma(Floats.bf16ToFloat(kt[at + (d + 2) * lanes + i]), q[qo + d + 2], c2);
                c3 = Math.fma(Floats.bf16ToFloat(kt[at + (d + 3) * lanes + i]), q[qo + d + 3], c3);
            }
            for (; d < n; d++) {
                c0 = Math.fma(Floats.bf16ToFloat(kt[at + d * lanes + i]), q[qo + d], c0);
            }
            out[oo + i] = ((c0 + c1) + (c2 + c3)) * scale;
            max = Math.max(max, out[oo + i]);
        }
        return max;
    }

    /**
     * {@link Kernels#blockScores} over a block of int8 keys stored transposed, widened on the fly times key i's scale {@code keyScales[so + i]}: one
     * vector of scores, four chains ({@code d mod 4}) added as {@code (c0 + c1) + (c2 + c3)}. Returns the largest.
     */
    public static float blockScoresInt8(
            float[] q, int qo, byte[] kt, int at, float[] keyScales, int so, int n, float scale, float[] out, int oo) {
        int lanes = SPECIES.length();
        FloatVector a0 = FloatVector.zero(SPECIES);
        FloatVector a1 = a0;
        FloatVector a2 = a0;
        FloatVector a3 = a0;
        int d = 0;
        for (; d + 4 <= n; d += 4) {
            int k = at + d * lanes;
            a0 = int8(kt, k).fma(FloatVector.broadcast(SPECIES, q[qo + d]), a0);
            a1 = int8(kt, k + lanes).fma(FloatVector.broadcast(SPECIES, q[qo + d + 1]), a1);
            a2 = int8(kt, k + 2 * lanes).fma(FloatVector.broadcast(SPECIES, q[qo + d + 2]), a2);
            a3 = int8(kt, k + 3 * lanes).fma(FloatVector.broadcast(SPECIES, q[qo + d + 3]), a3);
        }
        for (; d < n; d++) {
            a0 = int8(kt, at + d * lanes).fma(FloatVector.broadcast(SPECIES, q[qo + d]), a0);
        }
        FloatVector scores = a0.add(a1)
                .add(a2.add(a3))
                .mul(FloatVector.fromArray(SPECIES, keyScales, so))
                .mul(scale);
        scores.intoArray(out, oo);
        return scores.reduceLanes(VectorOperators.MAX);
    }

    /** The scalar twin of {@link #blockScoresInt8}. */
    public static float blockScoresInt8Scalar(
            float[] q, int qo, byte[] kt, int at, float[] keyScales, int so, int n, float scale, float[] out, int oo) {
        int lanes = SPECIES.length();
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < lanes; i++) {
            float c0 = 0f;
            float c1 = 0f;
            float c2 = 0f;
            float c3 = 0f;
            int d = 0;
            for (; d + 4 <= n; d += 4) {
                c0 = Math.fma((float) kt[at + d * lanes + i], q[qo + d], c0);
                c1 = Math.fma((float) kt[at + (d + 1) * lanes + i], q[qo + d + 1], c1);
                c2 = Math.fma((float) kt[at + (d + 2) * lanes + i], q[qo + d + 2], c2);
                c3 = Math.fma((float) kt[at + (d + 3) * lanes + i], q[qo + d + 3], c3);
            }
            for (; d < n; d++) {
                c0 = Math.fma((float) kt[at + d * lanes + i], q[qo + d], c0);
            }
            out[oo + i] = ((c0 + c1) + (c2 + c3)) * keyScales[so + i] * scale;
            max = Math.max(max, out[oo + i]);
        }
        return max;
    }

    /**
     * {@code y[yo+i] += sum_p w[wo+p] * rows[p * stride + ro + i]} over bf16 rows, widened on the fly: the
     * loop of {@link Kernels#weightedRowSum} (one fused multiply-add per term, in order of p).
     */
    public static void weightedRowSumBf16(
            float[] w, int wo, int count, short[] rows, int ro, int stride, float[] y, int yo, int n) {
        int lanes = SPECIES.length();
        int bound = SPECIES.loopBound(n);
        int i = 0;
        for (; i + 8 * lanes <= bound; i += 8 * lanes) {
            FloatVector a0 = FloatVector.fromArray(SPECIES, y, yo + i);
            FloatVector a1 = FloatVector.fromArray(SPECIES, y, yo + i + lanes);
            FloatVector a2 = FloatVector.fromArray(SPECIES, y, yo + i + 2 * lanes);
            FloatVector a3 = FloatVector.fromArray(SPECIES, y, yo + i + 3 * lanes);
            FloatVector a4 = FloatVector.fromArray(SPECIES, y, yo + i + 4 * lanes);
            FloatVector a5 = FloatVector.fromArray(SPECIES, y, yo + i + 5 * lanes);
            FloatVector a6 = FloatVector.fromArray(SPECIES, y, yo + i + 6 * lanes);
            FloatVector a7 = FloatVector.fromArray(SPECIES, y, yo + i + 7 * lanes);
            for (int p = 0, at = ro + i; p < count; p++, at += stride) {
                FloatVector wp = FloatVector.broadcast(SPECIES, w[wo + p]);
                a0 = bf16(rows, at + 0).fma(wp, a0);
                a1 = bf16(rows, at + lanes).fma(wp, a1);
                a2 = bf16(rows, at + 2 * lanes).fma(wp, a2);
                a3 = bf16(rows, at + 3 * lanes).fma(wp, a3);
                a4 = bf16(rows, at + 4 * lanes).fma(wp, a4);
                a5 = bf16(rows, at + 5 * lanes).fma(wp, a5);
                a6 = bf16(rows, at + 6 * lanes).fma(wp, a6);
                a7 = bf16(rows, at + 7 * lanes).fma(wp, a7);
            }
            a0.intoArray(y, yo + i);
            a1.intoArray(y, yo + i + lanes);
            a2.intoArray(y, yo + i + 2 * lanes);
            a3.intoArray(y, yo + i + 3 * lanes);
            a4.intoArray(y, yo + i + 4 * lanes);
            a5.intoArray(y, yo + i + 5 * lanes);
            a6.intoArray(y, yo + i + 6 * lanes);
            a7.intoArray(y, yo + i + 7 * lanes);
        }
        for (; i + 4 * lanes <= bound; i += 4 * lanes) {
            FloatVector a0 = FloatVector.fromArray(SPECIES, y, yo + i);
            FloatVector a1 = FloatVector.fromArray(SPECIES, y, yo + i + lanes);
            FloatVector a2 = FloatVector.fromArray(SPECIES, y, yo + i + 2 * lanes);
            FloatVector a3 = FloatVector.fromArray(SPECIES, y, yo + i + 3 * lanes);
            for (int p = 0, at = ro + i; p < count; p++, at += stride) {
                FloatVector wp = FloatVector.broadcast(SPECIES, w[wo + p]);
                a0 = bf16(rows, at + 0).fma(wp, a0);
                a1 = bf16(rows, at + lanes).fma(wp, a1);
                a2 = bf16(rows, at + 2 * lanes).fma(wp, a2);
                a3 = bf16(rows, at + 3 * lanes).fma(wp, a3);
            }
            a0.intoArray(y, yo + i);
            a1.intoArray(y, yo + i + lanes);
            a2.intoArray(y, yo + i + 2 * lanes);
            a3.intoArray(y, yo + i + 3 * lanes);
        }
        for (; i < bound; i += lanes) {
            FloatVector a0 = FloatVector.fromArray(SPECIES, y, yo + i);
            for (int p = 0, at = ro + i; p < count; p++, at += stride) {
                FloatVector wp = FloatVector.broadcast(SPECIES, w[wo + p]);
                a0 = bf16(rows, at + 0).fma(wp, a0);
            }
            a0.intoArray(y, yo + i);
        }
        for (; i < n; i++) {
            float acc = y[yo + i];
            for (int p = 0; p < count; p++) {
                acc = Math.fma(Floats.bf16ToFloat(rows[p * stride + ro + i]), w[wo + p], acc);
            }
            y[yo + i] = acc;
        }
    }

    /** The scalar twin of {@link #weightedRowSumBf16}: the same terms in the same order. */
    public static void weightedRowSumBf16Scalar(
            float[] w, int wo, int count, short[] rows, int ro, int stride, float[] y, int yo, int n) {
        for (int i = 0; i < n; i++) {
            float acc = y[yo + i];
            for (int p = 0; p < count; p++) {
                acc = Math.fma(Floats.bf16ToFloat(rows[p * stride + ro + i]), w[wo + p], acc);
            }
            y[yo + i] = acc;
        }
    }

    /**
     * {@code y[yo+i] += sum_p w[wo+p] * rowScales[so+p] * rows[p * stride + ro + i]} over int8 rows, widened on the fly: the
     * loop of {@link Kernels#weightedRowSum} (one fused multiply-add per term, in order of p), each row scale folded into its weight.
     */
    public static void weightedRowSumInt8(
            float[] w,
            int wo,
            int count,
            byte[] rows,
            int ro,
            int stride,
            float[] rowScales,
            int so,
            float[] y,
            int yo,
            int n) {
        int lanes = SPECIES.length();
        int bound = SPECIES.loopBound(n);
        int i = 0;
        for (; i + 8 * lanes <= bound; i += 8 * lanes) {
            FloatVector a0 = FloatVector.fromArray(SPECIES, y, yo + i);
            FloatVector a1 = FloatVector.fromArray(SPECIES, y, yo + i + lanes);
            FloatVector a2 = FloatVector.fromArray(SPECIES, y, yo + i + 2 * lanes);
            FloatVector a3 = FloatVector.fromArray(SPECIES, y, yo + i + 3 * lanes);
            FloatVector a4 = FloatVector.fromArray(SPECIES, y, yo + i + 4 * lanes);
            FloatVector a5 = FloatVector.fromArray(SPECIES, y, yo + i + 5 * lanes);
            FloatVector a6 = FloatVector.fromArray(SPECIES, y, yo + i + 6 * lanes);
            FloatVector a7 = FloatVector.fromArray(SPECIES, y, yo + i + 7 * lanes);
            for (int p = 0, at = ro + i; p < count; p++, at += stride) {
                FloatVector wp = FloatVector.broadcast(SPECIES, w[wo + p] * rowScales[so + p]);
                a0 = int8(rows, at + 0).fma(wp, a0);
                a1 = int8(rows, at + lanes).fma(wp, a1);
                a2 = int8(rows, at + 2 * lanes).fma(wp, a2);
                a3 = int8(rows, at + 3 * lanes).fma(wp, a3);
                a4 = int8(rows, at + 4 * lanes).fma(wp, a4);
                a5 = int8(rows, at + 5 * lanes).fma(wp, a5);
                a6 = int8(rows, at + 6 * lanes).fma(wp, a6);
                a7 = int8(rows, at + 7 * lanes).fma(wp, a7);
            }
            a0.intoArray(y, yo + i);
            a1.intoArray(y, yo + i + lanes);
            a2.intoArray(y, yo + i + 2 * lanes);
            a3.intoArray(y, yo + i + 3 * lanes);
            a4.intoArray(y, yo + i + 4 * lanes);
            a5.intoArray(y, yo + i + 5 * lanes);
            a6.intoArray(y, yo + i + 6 * lanes);
            a7.intoArray(y, yo + i + 7 * lanes);
        }
        for (; i + 4 * lanes <= bound; i += 4 * lanes) {
            FloatVector a0 = FloatVector.fromArray(SPECIES, y, yo + i);
            FloatVector a1 = FloatVector.fromArray(SPECIES, y, yo + i + lanes);
            FloatVector a2 = FloatVector.fromArray(SPECIES, y, yo + i + 2 * lanes);
            FloatVector a3 = FloatVector.fromArray(SPECIES, y, yo + i + 3 * lanes);
            for (int p = 0, at = ro + i; p < count; p++, at += stride) {
                FloatVector wp = FloatVector.broadcast(SPECIES, w[wo + p] * rowScales[so + p]);
                a0 = int8(rows, at + 0).fma(wp, a0);
                a1 = int8(rows, at + lanes).fma(wp, a1);
                a2 = int8(rows, at + 2 * lanes).fma(wp, a2);
                a3 = int8(rows, at + 3 * lanes).fma(wp, a3);
            }
            a0.intoArray(y, yo + i);
            a1.intoArray(y, yo + i + lanes);
            a2.intoArray(y, yo + i + 2 * lanes);
            a3.intoArray(y, yo + i + 3 * lanes);
        }
        for (; i < bound; i += lanes) {
            FloatVector a0 = FloatVector.fromArray(SPECIES, y, yo + i);
            for (int p = 0, at = ro + i; p < count; p++, at += stride) {
                FloatVector wp = FloatVector.broadcast(SPECIES, w[wo + p] * rowScales[so + p]);
                a0 = int8(rows, at + 0).fma(wp, a0);
            }
            a0.intoArray(y, yo + i);
        }
        for (; i < n; i++) {
            float acc = y[yo + i];
            for (int p = 0; p < count; p++) {
                acc = Math.fma((float) rows[p * stride + ro + i], w[wo + p] * rowScales[so + p], acc);
            }
            y[yo + i] = acc;
        }
    }

    /** The scalar twin of {@link #weightedRowSumInt8}: the same terms in the same order. */
    public static void weightedRowSumInt8Scalar(
            float[] w,
            int wo,
            int count,
            byte[] rows,
            int ro,
            int stride,
            float[] rowScales,
            int so,
            float[] y,
            int yo,
            int n) {
        for (int i = 0; i < n; i++) {
            float acc = y[yo + i];
            for (int p = 0; p < count; p++) {
                acc = Math.fma((float) rows[p * stride + ro + i], w[wo + p] * rowScales[so + p], acc);
            }
            y[yo + i] = acc;
        }
    }
}
