package dev.goldfinch.model.tensor;

/**
 * The engine's numeric building blocks over row-major float arrays ({@code [n, width]}), each vector kernel
 * beside its scalar twin (same operations, same bits; tested). Matrix products split their output rows across
 * the engine's threads ({@link Parallel}); the register tiles of each weight format live with the format
 * ({@link PlainMatrix} for f32 and bf16, {@link Q8Matrix}).
 */
public final class Kernels {
    private Kernels() {}

    /** {@code y[t] = W x[t]} for {@code n} inputs of width {@code W.cols()}; {@code y} has {@code n * W.rows()} values. */
    public static void matmul(Matrix w, float[] x, int n, float[] y) {
        Parallel.product(w, x, n, y);
    }

    /** As {@link Parallel#forEach}; kept here for callers outside the engine. */
    public static void parallel(int count, java.util.function.IntConsumer item) {
        Parallel.forEach(count, item);
    }

    private static final jdk.incubator.vector.VectorSpecies<Float> SPECIES =
            jdk.incubator.vector.FloatVector.SPECIES_PREFERRED;

    /** {@code sum_i a[ao+i] * b[bo+i]}: vector lanes, summed in a fixed order, then the tail. */
    public static float dot(float[] a, int ao, float[] b, int bo, int n) {
        int bound = SPECIES.loopBound(n);
        var acc = jdk.incubator.vector.FloatVector.zero(SPECIES);
        for (int i = 0; i < bound; i += SPECIES.length()) {
            acc = jdk.incubator.vector.FloatVector.fromArray(SPECIES, a, ao + i)
                    .fma(jdk.incubator.vector.FloatVector.fromArray(SPECIES, b, bo + i), acc);
        }
        float sum = sumLanes(acc);
        for (int i = bound; i < n; i++) {
            sum += a[ao + i] * b[bo + i];
        }
        return sum;
    }

    /** The scalar twin of {@link #dot}: one chain per lane, lanes folded as {@link #sumLanes} does, then the tail. */
    public static float dotScalar(float[] a, int ao, float[] b, int bo, int n) {
        int lanes = SPECIES.length();
        int bound = SPECIES.loopBound(n);
        float[] acc = new float[lanes];
        for (int i = 0; i < bound; i += lanes) {
            for (int l = 0; l < lanes; l++) {
                acc[l] = Math.fma(a[ao + i + l], b[bo + i + l], acc[l]);
            }
        }
        float sum = sumLanesScalar(acc);
        for (int i = bound; i < n; i++) {
            sum += a[ao + i] * b[bo + i];
        }
        return sum;
    }

    /**
     * Lanes summed in a fixed order: {@code reduceLanes} may associate differently once the JIT
     * intrinsifies it, and the same request must give the same bits on every replica and every run.
     */
    static float sumLanes(jdk.incubator.vector.FloatVector v) {
        // A fixed tree of lane-wise adds (each exact per lane, so interpreted and compiled code agree):
        // fold the upper half onto the lower until one lane is left.
        for (var fold : FOLDS) {
            v = v.add(v.rearrange(fold));
        }
        return v.lane(0);
    }

    /** The scalar twin of {@link #sumLanes}: the same tree of adds over {@code lanes} (one value per lane; overwritten). */
    static float sumLanesScalar(float[] lanes) {
        int n = lanes.length;
        float[] folded = new float[n];
        for (int w = n / 2; w >= 1; w /= 2) {
            for (int i = 0; i < n; i++) {
                folded[i] = lanes[i] + lanes[(i + w) % n];
            }
            System.arraycopy(folded, 0, lanes, 0, n);
        }
        return lanes[0];
    }

    /** Shuffles bringing lane {@code i + w} to lane {@code i}, for w = L/2, L/4, …, 1. */
    private static final jdk.incubator.vector.VectorShuffle<Float>[] FOLDS = folds();

    @SuppressWarnings("unchecked") // an array of a generic type: created with a wildcard, then cast
    private static jdk.incubator.vector.VectorShuffle<Float>[] folds() {
        int lanes = SPECIES.length();
        var folds = (jdk.incubator.vector.VectorShuffle<Float>[])
                new jdk.incubator.vector.VectorShuffle<?>[Integer.numberOfTrailingZeros(lanes)];
        for (int s = 0, w = lanes / 2; w >= 1; s++, w /= 2) {
            int width = w;
            folds[s] = jdk.incubator.vector.VectorShuffle.fromOp(SPECIES, i -> (i + width) % lanes);
        }
        return folds;
    }

    /**
     * Attention scores of one query against a block of {@code L = SPECIES.length()} keys stored transposed
     * ({@code kt[at + d * L + i]} is channel d of the block's key i): {@code out[oo + i] = scale * q . k_i}, one
     * vector of scores with no lane sums, channels split over four chains ({@code d mod 4}) added as
     * {@code (c0 + c1) + (c2 + c3)}. Returns the block's largest score.
     */
    public static float blockScores(float[] q, int qo, float[] kt, int at, int n, float scale, float[] out, int oo) {
        int lanes = SPECIES.length();
        var a0 = jdk.incubator.vector.FloatVector.zero(SPECIES);
        var a1 = a0;
        var a2 = a0;
        var a3 = a0;
        int d = 0;
        for (; d + 4 <= n; d += 4) {
            int k = at + d * lanes;
            a0 = jdk.incubator.vector.FloatVector.fromArray(SPECIES, kt, k)
                    .fma(jdk.incubator.vector.FloatVector.broadcast(SPECIES, q[qo + d]), a0);
            a1 = jdk.incubator.vector.FloatVector.fromArray(SPECIES, kt, k + lanes)
                    .fma(jdk.incubator.vector.FloatVector.broadcast(SPECIES, q[qo + d + 1]), a1);
            a2 = jdk.incubator.vector.FloatVector.fromArray(SPECIES, kt, k + 2 * lanes)
                    .fma(jdk.incubator.vector.FloatVector.broadcast(SPECIES, q[qo + d + 2]), a2);
            a3 = jdk.incubator.vector.FloatVector.fromArray(SPECIES, kt, k + 3 * lanes)
                    .fma(jdk.incubator.vector.FloatVector.broadcast(SPECIES, q[qo + d + 3]), a3);
        }
        for (; d < n; d++) {
            a0 = jdk.incubator.vector.FloatVector.fromArray(SPECIES, kt, at + d * lanes)
                    .fma(jdk.incubator.vector.FloatVector.broadcast(SPECIES, q[qo + d]), a0);
        }
        var scores = a0.add(a1).add(a2.add(a3)).mul(scale);
        scores.intoArray(out, oo);
        return scores.reduceLanes(jdk.incubator.vector.VectorOperators.MAX);
    }

    /** The scalar twin of {@link #blockScores}. */
    public static float blockScoresScalar(
            float[] q, int qo, float[] kt, int at, int n, float scale, float[] out, int oo) {
        int lanes = SPECIES.length();
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < lanes; i++) {
            float c0 = 0f;
            float c1 = 0f;
            float c2 = 0f;
            float c3 = 0f;
            int d = 0;
            for (; d + 4 <= n; d += 4) {
                c0 = Math.fma(kt[at + d * lanes + i], q[qo + d], c0);
                c1 = Math.fma(kt[at + (d + 1) * lanes + i], q[qo + d + 1], c1);
                c2 = Math.fma(kt[at + (d + 2) * lanes + i], q[qo + d + 2], c2);
                c3 = Math.fma(kt[at + (d + 3) * lanes + i], q[qo + d + 3], c3);
            }
            for (; d < n; d++) {
                c0 = Math.fma(kt[at + d * lanes + i], q[qo + d], c0);
            }
            out[oo + i] = ((c0 + c1) + (c2 + c3)) * scale;
            max = Math.max(max, out[oo + i]);
        }
        return max;
    }

    /**
     * {@code y[yo+i] += sum_p w[wo+p] * rows[p * stride + ro + i]} for {@code i < n} and {@code p < count}, each element accumulated in
     * order of p with one fused multiply-add per term (the same bits as the scalar loop); up to four vectors
     * of y stay in registers while the rows pass over them once.
     */
    public static void weightedRowSum(
            float[] w, int wo, int count, float[] rows, int ro, int stride, float[] y, int yo, int n) {
        int lanes = SPECIES.length();
        int bound = SPECIES.loopBound(n);
        int i = 0;
        // A head of eight vectors (64 channels on AVX2) in one pass: a second pass would read every row again.
        for (; i + 8 * lanes <= bound; i += 8 * lanes) {
            var a0 = jdk.incubator.vector.FloatVector.fromArray(SPECIES, y, yo + i);
            var a1 = jdk.incubator.vector.FloatVector.fromArray(SPECIES, y, yo + i + lanes);
            var a2 = jdk.incubator.vector.FloatVector.fromArray(SPECIES, y, yo + i + 2 * lanes);
            var a3 = jdk.incubator.vector.FloatVector.fromArray(SPECIES, y, yo + i + 3 * lanes);
            var a4 = jdk.incubator.vector.FloatVector.fromArray(SPECIES, y, yo + i + 4 * lanes);
            var a5 = jdk.incubator.vector.FloatVector.fromArray(SPECIES, y, yo + i + 5 * lanes);
            var a6 = jdk.incubator.vector.FloatVector.fromArray(SPECIES, y, yo + i + 6 * lanes);
            var a7 = jdk.incubator.vector.FloatVector.fromArray(SPECIES, y, yo + i + 7 * lanes);
            for (int p = 0, at = ro + i; p < count; p++, at += stride) {
                var wp = jdk.incubator.vector.FloatVector.broadcast(SPECIES, w[wo + p]);
                a0 = jdk.incubator.vector.FloatVector.fromArray(SPECIES, rows, at)
                        .fma(wp, a0);
                a1 = jdk.incubator.vector.FloatVector.fromArray(SPECIES, rows, at + lanes)
                        .fma(wp, a1);
                a2 = jdk.incubator.vector.FloatVector.fromArray(SPECIES, rows, at + 2 * lanes)
                        .fma(wp, a2);
                a3 = jdk.incubator.vector.FloatVector.fromArray(SPECIES, rows, at + 3 * lanes)
                        .fma(wp, a3);
                a4 = jdk.incubator.vector.FloatVector.fromArray(SPECIES, rows, at + 4 * lanes)
                        .fma(wp, a4);
                a5 = jdk.incubator.vector.FloatVector.fromArray(SPECIES, rows, at + 5 * lanes)
                        .fma(wp, a5);
                a6 = jdk.incubator.vector.FloatVector.fromArray(SPECIES, rows, at + 6 * lanes)
                        .fma(wp, a6);
                a7 = jdk.incubator.vector.FloatVector.fromArray(SPECIES, rows, at + 7 * lanes)
                        .fma(wp, a7);
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
        // Four vectors of y at a time, rows outermost: one pass over the rows, four independent chains.
        for (; i + 4 * lanes <= bound; i += 4 * lanes) {
            var a0 = jdk.incubator.vector.FloatVector.fromArray(SPECIES, y, yo + i);
            var a1 = jdk.incubator.vector.FloatVector.fromArray(SPECIES, y, yo + i + lanes);
            var a2 = jdk.incubator.vector.FloatVector.fromArray(SPECIES, y, yo + i + 2 * lanes);
            var a3 = jdk.incubator.vector.FloatVector.fromArray(SPECIES, y, yo + i + 3 * lanes);
            for (int p = 0, at = ro + i; p < count; p++, at += stride) {
                var wp = jdk.incubator.vector.FloatVector.broadcast(SPECIES, w[wo + p]);
                a0 = jdk.incubator.vector.FloatVector.fromArray(SPECIES, rows, at)
                        .fma(wp, a0);
                a1 = jdk.incubator.vector.FloatVector.fromArray(SPECIES, rows, at + lanes)
                        .fma(wp, a1);
                a2 = jdk.incubator.vector.FloatVector.fromArray(SPECIES, rows, at + 2 * lanes)
                        .fma(wp, a2);
                a3 = jdk.incubator.vector.FloatVector.fromArray(SPECIES, rows, at + 3 * lanes)
                        .fma(wp, a3);
            }
            a0.intoArray(y, yo + i);
            a1.intoArray(y, yo + i + lanes);
            a2.intoArray(y, yo + i + 2 * lanes);
            a3.intoArray(y, yo + i + 3 * lanes);
        }
        for (; i < bound; i += lanes) {
            var acc = jdk.incubator.vector.FloatVector.fromArray(SPECIES, y, yo + i);
            for (int p = 0, at = ro + i; p < count; p++, at += stride) {
                acc = jdk.incubator.vector.FloatVector.fromArray(SPECIES, rows, at)
                        .fma(jdk.incubator.vector.FloatVector.broadcast(SPECIES, w[wo + p]), acc);
            }
            acc.intoArray(y, yo + i);
        }
        for (; i < n; i++) {
            float acc = y[yo + i];
            for (int p = 0; p < count; p++) {
                acc = Math.fma(rows[p * stride + ro + i], w[wo + p], acc);
            }
            y[yo + i] = acc;
        }
    }

    /** LayerNorm of each of the {@code n} rows of width {@code gamma.length}, into {@code out} (may alias {@code x}). */
    public static void layerNorm(float[] x, int n, float[] gamma, float[] beta, float eps, float[] out) {
        int w = gamma.length;
        for (int t = 0; t < n; t++) {
            layerNormSlice(x, t * w, w, gamma, beta, 0, eps, out);
        }
    }

    /** LayerNorm of {@code x[off..off+len)} with {@code gamma[gOff..gOff+len)}, into {@code out[off..]}. */
    public static void layerNormSlice(
            float[] x, int off, int len, float[] gamma, float[] beta, int gOff, float eps, float[] out) {
        // Sums in vector lanes, lanes then added in a fixed order (as in dot): deterministic, and vectorised.
        int bound = SPECIES.loopBound(len);
        var acc = jdk.incubator.vector.FloatVector.zero(SPECIES);
        for (int i = 0; i < bound; i += SPECIES.length()) {
            acc = acc.add(jdk.incubator.vector.FloatVector.fromArray(SPECIES, x, off + i));
        }
        float mean = sumLanes(acc);
        for (int i = bound; i < len; i++) {
            mean += x[off + i];
        }
        mean /= len;
        var m = jdk.incubator.vector.FloatVector.broadcast(SPECIES, mean);
        acc = jdk.incubator.vector.FloatVector.zero(SPECIES);
        for (int i = 0; i < bound; i += SPECIES.length()) {
            var d = jdk.incubator.vector.FloatVector.fromArray(SPECIES, x, off + i)
                    .sub(m);
            acc = d.fma(d, acc);
        }
        float var = sumLanes(acc);
        for (int i = bound; i < len; i++) {
            float d = x[off + i] - mean;
            var = Math.fma(d, d, var);
        }
        var /= len;
        float inv = (float) (1.0 / Math.sqrt(var + eps));
        var scale = jdk.incubator.vector.FloatVector.broadcast(SPECIES, inv);
        for (int i = 0; i < bound; i += SPECIES.length()) {
            jdk.incubator.vector.FloatVector.fromArray(SPECIES, x, off + i)
                    .sub(m)
                    .mul(scale)
                    .mul(jdk.incubator.vector.FloatVector.fromArray(SPECIES, gamma, gOff + i))
                    .add(jdk.incubator.vector.FloatVector.fromArray(SPECIES, beta, gOff + i))
                    .intoArray(out, off + i);
        }
        for (int i = bound; i < len; i++) {
            out[off + i] = (x[off + i] - mean) * inv * gamma[gOff + i] + beta[gOff + i];
        }
    }

    /** The scalar twin of {@link #layerNormSlice}: per-lane sums folded in the same order, the same operations after. */
    public static void layerNormSliceScalar(
            float[] x, int off, int len, float[] gamma, float[] beta, int gOff, float eps, float[] out) {
        int lanes = SPECIES.length();
        int bound = SPECIES.loopBound(len);
        float[] acc = new float[lanes];
        for (int i = 0; i < bound; i += lanes) {
            for (int l = 0; l < lanes; l++) {
                acc[l] += x[off + i + l];
            }
        }
        float mean = sumLanesScalar(acc);
        for (int i = bound; i < len; i++) {
            mean += x[off + i];
        }
        mean /= len;
        java.util.Arrays.fill(acc, 0f);
        for (int i = 0; i < bound; i += lanes) {
            for (int l = 0; l < lanes; l++) {
                float d = x[off + i + l] - mean;
                acc[l] = Math.fma(d, d, acc[l]);
            }
        }
        float var = sumLanesScalar(acc);
        for (int i = bound; i < len; i++) {
            float d = x[off + i] - mean;
            var = Math.fma(d, d, var);
        }
        var /= len;
        float inv = (float) (1.0 / Math.sqrt(var + eps));
        for (int i = 0; i < len; i++) {
            out[off + i] = (x[off + i] - mean) * inv * gamma[gOff + i] + beta[gOff + i];
        }
    }

    /** {@code out = x + dx * (mix + lora)} per row of width {@code c}; {@code mix} is one row, {@code lora} (may be null) all rows. */
    public static void lerp(float[] x, float[] dx, float[] mix, float[] lora, int c, float[] out) {
        int bound = SPECIES.loopBound(c);
        for (int o = 0; o < x.length; o += c) {
            for (int i = 0; i < bound; i += SPECIES.length()) {
                var m = jdk.incubator.vector.FloatVector.fromArray(SPECIES, mix, i);
                if (lora != null) {
                    m = m.add(jdk.incubator.vector.FloatVector.fromArray(SPECIES, lora, o + i));
                }
                jdk.incubator.vector.FloatVector.fromArray(SPECIES, x, o + i)
                        .add(jdk.incubator.vector.FloatVector.fromArray(SPECIES, dx, o + i)
                                .mul(m))
                        .intoArray(out, o + i);
            }
            for (int i = bound; i < c; i++) {
                float m = lora == null ? mix[i] : mix[i] + lora[o + i]; // not mix + 0: -0 + 0 is +0
                out[o + i] = x[o + i] + dx[o + i] * m;
            }
        }
    }

    /** The scalar twin of {@link #lerp}. */
    public static void lerpScalar(float[] x, float[] dx, float[] mix, float[] lora, int c, float[] out) {
        for (int o = 0; o < x.length; o += c) {
            for (int i = 0; i < c; i++) {
                float m = lora == null ? mix[i] : mix[i] + lora[o + i];
                out[o + i] = x[o + i] + dx[o + i] * m;
            }
        }
    }

    /**
     * {@code x / (sqrt(mean(x^2)) + eps)} per row, weightless (spec §0: eps outside the root). Scalar: its own twin
     * (it runs on a few rows per GOLD K/V rebuild; vectorising it would change its bits for nothing measurable).
     */
    public static void rmsNorm(float[] x, int n, int width, float eps, float[] out) {
        for (int t = 0; t < n; t++) {
            int off = t * width;
            float ss = 0;
            for (int i = 0; i < width; i++) {
                ss += x[off + i] * x[off + i];
            }
            float inv = (float) (1.0 / (Math.sqrt(ss / width) + eps));
            for (int i = 0; i < width; i++) {
                out[off + i] = x[off + i] * inv;
            }
        }
    }

    // e^x in float32 from lane-wise IEEE operations only, so the vector form, its scalar twin, the interpreter and
    // the JIT all give the same bits (the JDK's vector EXP does not): x = n ln2 + r with |r| <= ln2/2, e^r by a
    // degree-7 minimax polynomial (Cephes' expf coefficients), 2^n written into the exponent bits. Inputs are
    // clamped to [-87.33, 88], so results stay normal: e^-87.33 (1.2e-38) stands for anything smaller, e^88
    // (1.7e38) for anything larger; NaN stays NaN. Within 2 ulp of Math.exp in that range (tested).
    private static final float EXP_MIN = -87.33654f;
    private static final float EXP_MAX = 88f;
    private static final float LOG2E = 1.44269504088896341f;
    /** 1.5 × 2^23: adding it rounds to an integer, which lands in the low mantissa bits. */
    private static final float ROUNDER = 12582912f;

    private static final int ROUNDER_BITS = Float.floatToRawIntBits(ROUNDER);
    private static final float LN2_HI = 0.693359375f;
    private static final float LN2_LO = -2.12194440e-4f;
    private static final float P0 = 1.9875691500e-4f;
    private static final float P1 = 1.3981999507e-3f;
    private static final float P2 = 8.3334519073e-3f;
    private static final float P3 = 4.1665795894e-2f;
    private static final float P4 = 1.6666665459e-1f;
    private static final float P5 = 5.0000001201e-1f;

    /**
     * {@code a[i] = e^a[i]} for {@code from <= i < to} (see above). The one vector exp: every kernel below is passes
     * over arrays around it, because a method taking or returning vectors that C2 declines to inline (in a large
     * caller) gets its vectors boxed on the heap.
     */
    public static void expInPlace(float[] a, int from, int to) {
        int bound = from + SPECIES.loopBound(to - from);
        var ln2Hi = jdk.incubator.vector.FloatVector.broadcast(SPECIES, -LN2_HI);
        var ln2Lo = jdk.incubator.vector.FloatVector.broadcast(SPECIES, -LN2_LO);
        var p2 = jdk.incubator.vector.FloatVector.broadcast(SPECIES, P2);
        var p3 = jdk.incubator.vector.FloatVector.broadcast(SPECIES, P3);
        var p4 = jdk.incubator.vector.FloatVector.broadcast(SPECIES, P4);
        var p5 = jdk.incubator.vector.FloatVector.broadcast(SPECIES, P5);
        int i = from;
        for (; i < bound; i += SPECIES.length()) {
            var x = jdk.incubator.vector.FloatVector.fromArray(SPECIES, a, i)
                    .max(EXP_MIN)
                    .min(EXP_MAX);
            var t = x.fma(LOG2E, ROUNDER);
            var n = t.sub(ROUNDER);
            var r = n.fma(ln2Hi, x);
            r = n.fma(ln2Lo, r);
            var p = r.fma(P0, P1);
            p = p.fma(r, p2);
            p = p.fma(r, p3);
            p = p.fma(r, p4);
            p = p.fma(r, p5);
            var y = p.fma(r.mul(r), r).add(1f);
            var scale = t.reinterpretAsInts()
                    .sub(ROUNDER_BITS - 127)
                    .lanewise(jdk.incubator.vector.VectorOperators.LSHL, 23)
                    .reinterpretAsFloats();
            y.mul(scale).intoArray(a, i);
        }
        for (; i < to; i++) {
            a[i] = exp(a[i]);
        }
    }

    /** e^x: the scalar twin of {@link #expInPlace}, the same operations, the same bits. */
    public static float exp(float x) {
        x = Math.min(Math.max(x, EXP_MIN), EXP_MAX);
        float t = Math.fma(x, LOG2E, ROUNDER);
        float n = t - ROUNDER;
        float r = Math.fma(n, -LN2_HI, x);
        r = Math.fma(n, -LN2_LO, r);
        float p = Math.fma(r, P0, P1);
        p = Math.fma(p, r, P2);
        p = Math.fma(p, r, P3);
        p = Math.fma(p, r, P4);
        p = Math.fma(p, r, P5);
        float y = Math.fma(p, r * r, r) + 1f;
        float scale = Float.intBitsToFloat((Float.floatToRawIntBits(t) - (ROUNDER_BITS - 127)) << 23);
        return y * scale;
    }

    /** {@code d[o + i] = e^(-e^(base[i] + d[o + i]))} for {@code i < c}: a row of the Finch decay. */
    public static void decayRow(float[] base, float[] d, int o, int c) {
        for (int i = 0; i < c; i++) {
            d[o + i] += base[i];
        }
        expInPlace(d, o, o + c);
        for (int i = o; i < o + c; i++) {
            d[i] = -d[i];
        }
        expInPlace(d, o, o + c);
    }

    /** {@code out[i] *= 1 / (1 + e^-r[i])} for {@code from <= i < to}; {@code r} is used up (holds e^-r after). */
    public static void mulSigmoid(float[] out, float[] r, int from, int to) {
        for (int i = from; i < to; i++) {
            r[i] = -r[i];
        }
        expInPlace(r, from, to);
        for (int i = from; i < to; i++) {
            out[i] *= 1f / (r[i] + 1f);
        }
    }

    /** {@code a[i] = 1 / (1 + e^-a[i])} for {@code from <= i < to}. */
    public static void sigmoidInPlace(float[] a, int from, int to) {
        for (int i = from; i < to; i++) {
            a[i] = -a[i];
        }
        expInPlace(a, from, to);
        for (int i = from; i < to; i++) {
            a[i] = 1f / (a[i] + 1f);
        }
    }

    /** {@code y[i] = y[i] * g[i] * sigmoid(g[i])} (the SiLU gate) for {@code from <= i < to}; {@code g} is used up. */
    public static void mulSilu(float[] y, float[] g, int from, int to) {
        for (int i = from; i < to; i++) {
            y[i] *= g[i];
        }
        mulSigmoid(y, g, from, to);
    }

    public static void tanh(float[] x, int len) {
        for (int i = 0; i < len; i++) {
            x[i] = (float) Math.tanh(x[i]);
        }
    }

    public static void addInPlace(float[] acc, float[] x, int len) {
        for (int i = 0; i < len; i++) {
            acc[i] += x[i];
        }
    }

    /** Copies {@code cols} columns starting at {@code c0} out of each row of a {@code [n, width]} array into {@code out} ({@code [n, cols]}). */
    public static void columns(float[] x, int n, int width, int c0, int cols, float[] out) {
        for (int t = 0; t < n; t++) {
            System.arraycopy(x, t * width + c0, out, t * cols, cols);
        }
    }

    /** As {@link Parallel#allocatedBytesHereAndInGang}; kept here for callers outside the engine. */
    public static long allocatedBytesHereAndInGang() {
        return Parallel.allocatedBytesHereAndInGang();
    }

    /** Threads of the engine's gang, for reports. */
    public static int parallelism() {
        return Parallel.threads();
    }
}
