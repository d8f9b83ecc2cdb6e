package dev.goldfinch.model;

import static dev.goldfinch.model.Ops.lerp;
import static dev.goldfinch.model.Ops.matmul;

import dev.goldfinch.model.ModelWeights.ChannelMixWeights;
import dev.goldfinch.model.tensor.Kernels;
import dev.goldfinch.model.tensor.Parallel;

/** The channel mix of every layer (spec §2, RWKV-6 {@code x060}). Arrays are {@code [T, width]} over the pass's rows. */
final class ChannelMix {
    private ChannelMix() {}

    static float[] apply(ChannelMixWeights f, Batch b, int l, float[] x, int c, ForwardScratch scratch) {
        int rows = b.rows();
        float[] dx = b.tokenShift(x, c, l, false, scratch); // [T, C]  dx = sx_ffn - x_t ; sx_ffn <- x_t
        float[] xk = lerp(x, dx, f.maaK(), null, c, scratch); // [T, C]  xk = x_t + dx*maa_k
        float[] k = matmul(f.key(), xk, rows, scratch); // [T, F]  W_k xk
        for (int i = 0; i < k.length; i++) { // [T, F]  relu(.)^2
            float v = Math.max(k[i], 0f);
            k[i] = v * v;
        }
        float[] out = matmul(f.value(), k, rows, scratch); // [T, C]  W_v relu(W_k xk)^2
        if (f.receptance() == null) { // RWKV-7: no receptance gate
            return out;
        }
        float[] xr = lerp(x, dx, f.maaR(), null, c, scratch); // [T, C]  xr = x_t + dx*maa_r
        float[] r = matmul(f.receptance(), xr, rows, scratch); // [T, C]  W_r xr
        Parallel.forEach(
                rows, t -> Kernels.mulSigmoid(out, r, t * c, (t + 1) * c)); // [T, C]  out = sigmoid(W_r xr) * out
        return out;
    }
}
