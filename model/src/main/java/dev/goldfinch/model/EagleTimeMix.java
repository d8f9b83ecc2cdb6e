package dev.goldfinch.model;

import static dev.goldfinch.model.Ops.lerp;
import static dev.goldfinch.model.Ops.matmul;

import dev.goldfinch.model.ModelWeights.EagleWeights;
import dev.goldfinch.model.tensor.Kernels;
import dev.goldfinch.model.tensor.Parallel;

/**
 * Eagle's time mix (RWKV-5.1 and 5.2): a static token shift, the WKV recurrence of RWKV-6 with a decay constant over
 * time (so Finch's kernel, {@link FinchTimeMix#wkv}), per-head GroupNorm and, in 5.2, a SiLU gate. Arrays are
 * {@code [T, width]} over the pass's rows; {@code C = A}.
 */
final class EagleTimeMix {
    private EagleTimeMix() {}

    static float[] apply(EagleWeights a, Batch b, int l, float[] x, ModelConfig cfg, ForwardScratch scratch) {
        int rows = b.rows();
        int c = cfg.nEmbd();
        float[][] mix = a.mix();
        float[] dx = b.tokenShift(x, c, l, true, scratch); // [T, C]  dx = sx - x_t ; sx <- x_t
        float[] xr = lerp(x, dx, mix[ModelWeights.EAGLE_R], null, c, scratch); // [T, C]  x*mix_r + sx*(1-mix_r)
        float[] r = matmul(a.receptance(), xr, rows, scratch); // [T, A]  r = W_r xr
        float[] xk = lerp(x, dx, mix[ModelWeights.EAGLE_K], null, c, scratch);
        float[] k = matmul(a.key(), xk, rows, scratch); // [T, A]  k = W_k xk
        float[] xv = lerp(x, dx, mix[ModelWeights.EAGLE_V], null, c, scratch);
        float[] v = matmul(a.value(), xv, rows, scratch); // [T, A]  v = W_v xv
        float[] dec = scratch.take(rows * c); // [T, A]  the static decay, on every row (the kernel's layout)
        for (int t = 0; t < rows; t++) {
            System.arraycopy(a.decay(), 0, dec, t * c, c);
        }
        float[] y = FinchTimeMix.wkv(b, l, r, k, v, dec, a.bonus(), cfg, scratch); // [T, A]  WKV with the bonus u
        FinchTimeMix.groupNorm(y, rows, a.lnXWeight(), a.lnXBias(), cfg); // [T, A]  GroupNorm(H groups; ln_x)
        if (a.gate() != null) { // RWKV-5.2
            float[] xg = lerp(x, dx, mix[ModelWeights.EAGLE_G], null, c, scratch);
            float[] g = matmul(a.gate(), xg, rows, scratch); // [T, A]  W_g xg
            Parallel.forEach(rows, t -> Kernels.mulSilu(y, g, t * c, (t + 1) * c)); // [T, A]  y * silu(g)
        }
        return matmul(a.output(), y, rows, scratch); // [T, C]  out = W_o y
    }
}
