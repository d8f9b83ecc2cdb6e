package dev.goldfinch.model.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The WKV-6 recurrence of one head for one token, with state {@code S[j][i]} (key j, value i):
 * {@code y_i += r_j (S_ji + u_j k_j v_i)}, then {@code S_ji = d_j S_ji + k_j v_i}, for j in order (Finch-C2
 * has u = 0). Vectorised over the value channels i; {@link #headScalar} is its twin, with the same
 * operations in the same order (so the same bits).
 */
public final class Wkv {
    private static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;

    private Wkv() {}

    /**
     * One token through one head. {@code at} indexes the head's channels in {@code r, k, v, decay, y};
     * {@code sb} its {@code hs × hs} state in {@code state}; {@code bonus} (may be null) is read at {@code ub}.
     */
    public static void head(
            float[] state,
            int sb,
            float[] r,
            float[] k,
            float[] v,
            float[] decay,
            float[] bonus,
            int ub,
            float[] y,
            int at,
            int hs) {
        int bound = SPECIES.loopBound(hs);
        // Value channels outermost: a chunk of y and of v stays in registers while every key j passes over it.
        for (int q = 0; q < bound; q += SPECIES.length()) {
            FloatVector vq = FloatVector.fromArray(SPECIES, v, at + q);
            FloatVector yq = FloatVector.fromArray(SPECIES, y, at + q);
            for (int j = 0; j < hs; j++) {
                float kj = k[at + j];
                float ukj = bonus == null ? 0f : bonus[ub + j] * kj;
                int sj = sb + j * hs + q;
                FloatVector sv = FloatVector.fromArray(SPECIES, state, sj);
                yq = sv.add(vq.mul(ukj)).fma(FloatVector.broadcast(SPECIES, r[at + j]), yq);
                sv.fma(FloatVector.broadcast(SPECIES, decay[at + j]), vq.mul(kj))
                        .intoArray(state, sj);
            }
            yq.intoArray(y, at + q);
        }
        if (bound < hs) {
            channels(state, sb, r, k, v, decay, bonus, ub, y, at, hs, bound);
        }
    }

    /** The scalar twin of {@link #head}. */
    public static void headScalar(
            float[] state,
            int sb,
            float[] r,
            float[] k,
            float[] v,
            float[] decay,
            float[] bonus,
            int ub,
            float[] y,
            int at,
            int hs) {
        channels(state, sb, r, k, v, decay, bonus, ub, y, at, hs, 0);
    }

    private static void channels(
            float[] state,
            int sb,
            float[] r,
            float[] k,
            float[] v,
            float[] decay,
            float[] bonus,
            int ub,
            float[] y,
            int at,
            int hs,
            int from) {
        for (int i = from; i < hs; i++) {
            float vi = v[at + i];
            float yi = y[at + i];
            for (int j = 0; j < hs; j++) {
                float kj = k[at + j];
                float ukj = bonus == null ? 0f : bonus[ub + j] * kj;
                int sji = sb + j * hs + i;
                float sv = state[sji];
                yi = Math.fma(sv + ukj * vi, r[at + j], yi);
                state[sji] = Math.fma(sv, decay[at + j], kj * vi);
            }
            y[at + i] = yi;
        }
    }
}
