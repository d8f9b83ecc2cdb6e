package dev.goldfinch.model.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The RWKV-7 recurrence of one head for one token, state {@code S[j][i]} (key j, value i) as in {@link Wkv}. Each
 * step decays the state per key, corrects it by a rank-1 term read from the state itself, and adds {@code k v}:
 * {@code sa_i = sum_j S_ji (-kk_j)}, then {@code S_ji = S_ji w_j + sa_i b_j + k_j v_i} with {@code b = kk * a}, and
 * {@code y_i = sum_j S_ji r_j} over the updated state. Vectorised over the value channels i; {@link #headScalar} is its
 * twin, with the same operations in the same order (so the same bits).
 */
public final class Wkv7 {
    private static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;

    private Wkv7() {}

    /**
     * One token through one head. {@code at} indexes the head's channels in {@code r, w, k, v, kk, b, y} (each the
     * pass's {@code [T, A]} array); {@code sb} its {@code hs × hs} state in {@code state}. {@code y} is overwritten.
     */
    public static void head(
            float[] state,
            int sb,
            float[] r,
            float[] w,
            float[] k,
            float[] v,
            float[] kk,
            float[] b,
            float[] y,
            int at,
            int hs) {
        int bound = SPECIES.loopBound(hs);
        // Value channels outermost: each chunk of i needs only its own column of the state, twice.
        for (int q = 0; q < bound; q += SPECIES.length()) {
            FloatVector sa = FloatVector.zero(SPECIES);
            for (int j = 0; j < hs; j++) {
                sa = FloatVector.fromArray(SPECIES, state, sb + j * hs + q)
                        .fma(FloatVector.broadcast(SPECIES, -kk[at + j]), sa);
            }
            FloatVector vq = FloatVector.fromArray(SPECIES, v, at + q);
            FloatVector yq = FloatVector.zero(SPECIES);
            for (int j = 0; j < hs; j++) {
                int sj = sb + j * hs + q;
                FloatVector s = FloatVector.fromArray(SPECIES, state, sj)
                        .fma(
                                FloatVector.broadcast(SPECIES, w[at + j]),
                                sa.fma(FloatVector.broadcast(SPECIES, b[at + j]), vq.mul(k[at + j])));
                s.intoArray(state, sj);
                yq = s.fma(FloatVector.broadcast(SPECIES, r[at + j]), yq);
            }
            yq.intoArray(y, at + q);
        }
        if (bound < hs) {
            channels(state, sb, r, w, k, v, kk, b, y, at, hs, bound);
        }
    }

    /** The scalar twin of {@link #head}. */
    public static void headScalar(
            float[] state,
            int sb,
            float[] r,
            float[] w,
            float[] k,
            float[] v,
            float[] kk,
            float[] b,
            float[] y,
            int at,
            int hs) {
        channels(state, sb, r, w, k, v, kk, b, y, at, hs, 0);
    }

    private static void channels(
            float[] state,
            int sb,
            float[] r,
            float[] w,
            float[] k,
            float[] v,
            float[] kk,
            float[] b,
            float[] y,
            int at,
            int hs,
            int from) {
        for (int i = from; i < hs; i++) {
            float sa = 0f;
            for (int j = 0; j < hs; j++) {
                sa = Math.fma(state[sb + j * hs + i], -kk[at + j], sa);
            }
            float vi = v[at + i];
            float yi = 0f;
            for (int j = 0; j < hs; j++) {
                int sji = sb + j * hs + i;
                float s = Math.fma(state[sji], w[at + j], Math.fma(sa, b[at + j], vi * k[at + j]));
                state[sji] = s;
                yi = Math.fma(s, r[at + j], yi);
            }
            y[at + i] = yi;
        }
    }
}
