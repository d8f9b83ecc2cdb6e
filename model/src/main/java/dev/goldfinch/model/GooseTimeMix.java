package dev.goldfinch.model;

import static dev.goldfinch.model.Ops.lerp;
import static dev.goldfinch.model.Ops.matmul;

import dev.goldfinch.model.ModelWeights.GooseWeights;
import dev.goldfinch.model.tensor.Kernels;
import dev.goldfinch.model.tensor.Parallel;
import dev.goldfinch.model.tensor.Wkv7;

/**
 * Goose's time mix (RWKV-7, {@code x070}, after BlinkDL's {@code rwkv_v7_demo.py}): static token-shift mixes, a
 * decay from a LoRA, the in-context learning rate {@code a}, the value mixed with layer 0's value, the rank-1
 * corrected recurrence ({@link Wkv7}), per-head GroupNorm plus the {@code r_k} bonus, and a sigmoid-LoRA gate.
 * Arrays are {@code [T, width]} over the pass's rows; {@code C = A}.
 */
final class GooseTimeMix {
    /** {@code e^-0.5}: the decay is {@code exp(-e^-0.5 * sigmoid(w))}, in (e^-0.607, 1). */
    private static final float DECAY_SCALE = (float) Math.exp(-0.5);

    private GooseTimeMix() {}

    /**
     * {@code vFirst} ({@code [T, A]}) is layer 0's value of every row: layer 0 writes it, the others mix it in.
     */
    static float[] apply(
            GooseWeights a, Batch b, int l, float[] x, ModelConfig cfg, ForwardScratch scratch, float[] vFirst) {
        int rows = b.rows();
        int c = cfg.nEmbd();
        int hs = cfg.headSize();
        int heads = cfg.nHead();
        int n = rows * c;
        float[][] mix = a.mix();
        float[] dx = b.tokenShift(x, c, l, true, scratch); // [T, C]  dx = sx - x_t ; sx <- x_t
        float[] r = matmul(a.receptance(), lerp(x, dx, mix[ModelWeights.GOOSE_R], null, c, scratch), rows, scratch);
        float[] k = matmul(a.key(), lerp(x, dx, mix[ModelWeights.GOOSE_K], null, c, scratch), rows, scratch);
        float[] xv = lerp(x, dx, mix[ModelWeights.GOOSE_V], null, c, scratch);
        float[] v = matmul(a.value(), xv, rows, scratch); // [T, A]  r, k, v = W_* x_*
        float[] w =
                Ops.tanhLora(a.w1(), a.w2(), lerp(x, dx, mix[ModelWeights.GOOSE_W], null, c, scratch), rows, scratch);
        addRows(w, a.w0(), c); // [T, A]  w0 + tanh(xw @ w1) @ w2
        Kernels.sigmoidInPlace(w, 0, n);
        for (int i = 0; i < n; i++) {
            w[i] *= -DECAY_SCALE;
        }
        Kernels.expInPlace(w, 0, n); // [T, A]  w = exp(-e^-0.5 sigmoid(.))
        float[] rate = matmul(
                a.a2(),
                matmul(a.a1(), lerp(x, dx, mix[ModelWeights.GOOSE_A], null, c, scratch), rows, scratch),
                rows,
                scratch);
        addRows(rate, a.a0(), c);
        Kernels.sigmoidInPlace(rate, 0, n); // [T, A]  a = sigmoid(a0 + xa @ a1 @ a2)
        float[] gateIn = matmul(a.g1(), lerp(x, dx, mix[ModelWeights.GOOSE_G], null, c, scratch), rows, scratch);
        Kernels.sigmoidInPlace(gateIn, 0, gateIn.length);
        float[] g = matmul(a.g2(), gateIn, rows, scratch); // [T, A]  g = sigmoid(xg @ g1) @ g2
        float[] kk = scratch.take(n); // [T, A]  kk = L2-normalised (k * k_k) per head
        float[] bb = scratch.take(n); // [T, A]  kk * a
        for (int t = 0; t < rows; t++) {
            for (int h = 0; h < heads; h++) {
                int o = t * c + h * hs;
                float sum = 0f;
                for (int i = 0; i < hs; i++) {
                    float e = k[o + i] * a.kK()[h * hs + i];
                    kk[o + i] = e;
                    sum += e * e;
                }
                float inv = 1f / Math.max((float) Math.sqrt(sum), 1e-12f);
                for (int i = 0; i < hs; i++) {
                    kk[o + i] *= inv;
                    bb[o + i] = kk[o + i] * rate[o + i];
                }
            }
        }
        for (int i = 0; i < n; i++) { // [T, A]  k = k * (1 + (a - 1) * k_a)
            k[i] *= 1f + (rate[i] - 1f) * a.kA()[i % c];
        }
        if (a.v0() == null) { // layer 0: its value is the residual
            System.arraycopy(v, 0, vFirst, 0, n);
        } else { // v = v + (v_first - v) * sigmoid(v0 + xv @ v1 @ v2)
            float[] mixV = matmul(a.v2(), matmul(a.v1(), xv, rows, scratch), rows, scratch);
            addRows(mixV, a.v0(), c);
            Kernels.sigmoidInPlace(mixV, 0, n);
            for (int i = 0; i < n; i++) {
                v[i] += (vFirst[i] - v[i]) * mixV[i];
            }
        }
        float[] y = scratch.take(n);
        Parallel.forEach(
                b.segments() * heads,
                unit -> { // every (sequence, head) is independent
                    int s = unit / heads;
                    int h = unit % heads;
                    float[] state = b.states[s].wkv(l);
                    for (int t = b.start[s]; t < b.start[s + 1]; t++) {
                        Wkv7.head(state, h * hs * hs, r, w, k, v, kk, bb, y, t * c + h * hs, hs);
                    }
                });
        FinchTimeMix.groupNorm(y, rows, a.lnXWeight(), a.lnXBias(), cfg); // [T, A]  GroupNorm(H groups; ln_x)
        for (int t = 0; t < rows; t++) { // [T, A]  y += (sum_j r k r_k) v, per head
            for (int h = 0; h < heads; h++) {
                int o = t * c + h * hs;
                float bonus = 0f;
                for (int j = 0; j < hs; j++) {
                    bonus += r[o + j] * k[o + j] * a.rK()[h * hs + j];
                }
                for (int i = 0; i < hs; i++) {
                    y[o + i] += bonus * v[o + i];
                }
            }
        }
        for (int i = 0; i < n; i++) { // [T, A]  y * g
            y[i] *= g[i];
        }
        return matmul(a.output(), y, rows, scratch); // [T, C]  out = W_o y
    }

    /** {@code x[t] += bias} for every row. */
    private static void addRows(float[] x, float[] bias, int c) {
        for (int i = 0; i < x.length; i++) {
            x[i] += bias[i % c];
        }
    }
}
