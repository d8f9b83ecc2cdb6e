package dev.goldfinch.model;

import static dev.goldfinch.model.Ops.matmul;

import dev.goldfinch.model.ModelWeights.FinchWeights;
import dev.goldfinch.model.tensor.Kernels;

/**
 * Finch-C2's time mix (spec §1, {@code x060c2}), the lower layers of GoldFinch: Finch's ddlerp and decay, the key
 * scaled by {@code 1 - dec}, WKV-6 with {@code u = 0} plus a second value {@code v2}, one LayerNorm over all heads.
 * Arrays are {@code [T, width]} over the pass's rows; {@code C = A}.
 */
final class FinchC2TimeMix {
    private FinchC2TimeMix() {}

    static float[] apply(FinchWeights a, Batch b, int l, float[] x, ModelConfig cfg, ForwardScratch scratch) {
        int rows = b.rows();
        int c = cfg.nEmbd();
        float[] dx = b.tokenShift(x, c, l, true, scratch); // [T, C]  dx = sx - x_t ; sx <- x_t
        float[][] mixed = FinchTimeMix.ddlerp(a, x, dx, rows, c, scratch); // 5 x [T, C]  xr, xk, xv, xw, xv2
        float[] r = matmul(a.receptance(), mixed[ModelWeights.C2_R], rows, scratch); // [T, A]  r = W_r xr
        float[] k = matmul(a.key(), mixed[ModelWeights.C2_K], rows, scratch); // [T, A]  k = W_k xk
        float[] v = matmul(a.value(), mixed[ModelWeights.C2_V], rows, scratch); // [T, A]  v = W_v xv
        float[] dec = FinchTimeMix.decay(a, mixed[ModelWeights.C2_W], rows, c, scratch); // [T, A]  dec = exp(-exp(w))
        for (int i = 0; i < k.length; i++) { // [T, A]  k = k * (1 - dec)
            k[i] *= 1f - dec[i];
        }
        float[] y = FinchTimeMix.wkv(b, l, r, k, v, dec, null, cfg, scratch); // [T, A]  WKV-6 with u = 0
        float[] xv2 = mixed[ModelWeights.C2_V2];
        float[] v2 = matmul(a.value(), xv2, rows, scratch); // [T, A]  W_v xv2 (the same W_v)
        float[] lora = Ops.tanhLora(
                a.value2W1(), a.value2W2(), xv2, rows, scratch); // [T, A]  tanh(xv2 @ value2_w1) @ value2_w2
        for (int i = 0; i < y.length; i++) { // [T, A]  y = y + v2
            y[i] += v2[i] + lora[i];
        }
        Kernels.layerNorm(
                y, rows, a.lnXWeight(), a.lnXBias(), ModelConfig.LAYER_NORM_EPS, y); // [T, A]  LayerNorm_A(y; ln_x)
        return matmul(a.output(), y, rows, scratch); // [T, C]  out = W_o y
    }
}
