package dev.goldfinch.model;

import static dev.goldfinch.model.Ops.lerp;
import static dev.goldfinch.model.Ops.matmul;

import dev.goldfinch.model.ModelWeights.FinchWeights;
import dev.goldfinch.model.tensor.Kernels;
import dev.goldfinch.model.tensor.Parallel;
import dev.goldfinch.model.tensor.Wkv;

/**
 * Plain Finch's time mix (RWKV-6 {@code x060}; spec §1 "Differences from plain Finch"): ddlerp token shift, WKV-6
 * with the bonus {@code u}, per-head GroupNorm and a SiLU gate. Also the steps Finch-C2 shares with it (ddlerp, the
 * decay, the WKV recurrence). Arrays are {@code [T, width]} over the pass's rows; {@code T} rows, {@code C = A}.
 */
final class FinchTimeMix {
    private FinchTimeMix() {}

    static float[] apply(FinchWeights a, Batch b, int l, float[] x, ModelConfig cfg, ForwardScratch scratch) {
        int rows = b.rows();
        int c = cfg.nEmbd();
        float[] dx = b.tokenShift(x, c, l, true, scratch); // [T, C]  dx = sx - x_t ; sx <- x_t
        float[][] mixed = ddlerp(a, x, dx, rows, c, scratch); // 5 x [T, C]  x_t + dx*(maa_* + m*): w, k, v, r, g
        float[] r = matmul(a.receptance(), mixed[ModelWeights.X060_R], rows, scratch); // [T, A]  r = W_r xr
        float[] k = matmul(a.key(), mixed[ModelWeights.X060_K], rows, scratch); // [T, A]  k = W_k xk
        float[] v = matmul(a.value(), mixed[ModelWeights.X060_V], rows, scratch); // [T, A]  v = W_v xv
        float[] dec = decay(a, mixed[ModelWeights.X060_W], rows, c, scratch); // [T, A]  dec = exp(-exp(w))
        float[] y = wkv(b, l, r, k, v, dec, a.bonus(), cfg, scratch); // [T, A]  WKV-6 with the bonus u
        float[] g = matmul(a.gate(), mixed[ModelWeights.X060_G], rows, scratch); // [T, A]  W_g xg
        groupNorm(y, rows, a.lnXWeight(), a.lnXBias(), cfg); // [T, A]  GroupNorm(H groups; ln_x)
        Parallel.forEach(rows, t -> Kernels.mulSilu(y, g, t * c, (t + 1) * c)); // [T, A]  y * silu(g)
        return matmul(a.output(), y, rows, scratch); // [T, C]  out = W_o y
    }

    /** The per-head GroupNorm {@code ln_x} of every row, in place, with the family's eps. */
    static void groupNorm(float[] y, int rows, float[] weight, float[] bias, ModelConfig cfg) {
        int c = cfg.nEmbd();
        int hs = cfg.headSize();
        float eps = cfg.architecture().groupNormEps();
        for (int t = 0; t < rows; t++) {
            for (int h = 0; h < cfg.nHead(); h++) {
                Kernels.layerNormSlice(y, t * c + h * hs, hs, weight, bias, h * hs, eps, y);
            }
        }
    }

    /**
     * Spec §1 ddlerp: {@code xxx = x + dx*maa_x; m = tanh(xxx @ maa_w1); x_i = x + dx*(maa_i + m_i @ maa_w2[i])} for
     * the five targets in the checkpoint's LoRA order ({@link TensorNames#FINCH_LORA_ORDER} or Finch-C2's).
     */
    static float[][] ddlerp(FinchWeights a, float[] x, float[] dx, int rows, int c, ForwardScratch scratch) {
        int rank = a.maaW2()[0].cols();
        float[] xxx = lerp(x, dx, a.maaX(), null, c, scratch); // [T, C]  xxx = x_t + dx*maa_x
        float[] m = matmul(a.maaW1(), xxx, rows, scratch); // [T, 5R] xxx @ maa_w1
        Kernels.tanh(m, m.length); // [T, 5R] m = tanh(.)
        float[][] mixed = new float[5][];
        for (int i = 0; i < 5; i++) {
            float[] mi = Ops.columns(m, rows, 5 * rank, i * rank, rank, scratch); // [T, R]  m[i]
            float[] lora = matmul(a.maaW2()[i], mi, rows, scratch); // [T, C]  m[i] @ maa_w2[i]
            mixed[i] = lerp(x, dx, a.maa()[i], lora, c, scratch); // [T, C]  x_t + dx*(maa_i + m_i)
        }
        return mixed;
    }

    /** Spec §1: {@code w = time_decay + tanh(xw @ decay_w1) @ decay_w2; dec = exp(-exp(w))}, per channel. */
    static float[] decay(FinchWeights a, float[] xw, int rows, int c, ForwardScratch scratch) {
        float[] dec =
                Ops.tanhLora(a.decayW1(), a.decayW2(), xw, rows, scratch); // [T, A]  tanh(xw @ decay_w1) @ decay_w2
        // Rows across the engine's threads (two exps per channel: a tenth of a prefill chunk on one thread).
        Parallel.forEach(
                rows, t -> Kernels.decayRow(a.timeDecay(), dec, t * c, c)); // [T, A]  exp(-exp(time_decay + .))
        return dec;
    }

    /**
     * Spec §1 WKV-6, per sequence and head, token by token: {@code y[h,i] = sum_j r[h,j] (S[h,j,i] + u[h,j] k[h,j]
     * v[h,i])}, then {@code S[h,j,i] = dec[h,j] S[h,j,i] + k[h,j] v[h,i]}, on each sequence's state in place
     * ({@code bonus} null: u = 0).
     */
    static float[] wkv(
            Batch b,
            int l,
            float[] r,
            float[] k,
            float[] v,
            float[] dec,
            float[] bonus,
            ModelConfig cfg,
            ForwardScratch scratch) {
        int c = cfg.nEmbd();
        int heads = cfg.nHead();
        int hs = cfg.headSize();
        float[] y = scratch.take(b.rows() * c);
        // Every (sequence, head) pair is independent: they are shared out across the engine's threads.
        Parallel.forEach(b.segments() * heads, unit -> {
            int s = unit / heads;
            int h = unit % heads;
            float[] state = b.states[s].wkv(l);
            for (int t = b.start[s]; t < b.start[s + 1]; t++) {
                Wkv.head(state, h * hs * hs, r, k, v, dec, bonus, h * hs, y, t * c + h * hs, hs);
            }
        });
        return y;
    }
}
