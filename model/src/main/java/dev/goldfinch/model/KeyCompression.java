package dev.goldfinch.model;

import static dev.goldfinch.model.Ops.matmul;

import dev.goldfinch.model.tensor.Kernels;

/**
 * GoldFinch's key cache (spec §0): after the last Finch-C2 block each token's residual is squeezed into a
 * compressed key {@code c_t} (what the cache stores), and "TokenCat" decompresses it with the token's embedding
 * into the key {@code kh_t} every GOLD layer reads.
 */
final class KeyCompression {
    private KeyCompression() {}

    /** {@code c_t = W_a x_t} ({@code w_kv_cache_a}: C -> c, no norm before it). */
    static float[] compress(ModelWeights w, float[] x, int rows, ForwardScratch scratch) {
        return matmul(w.kvCacheA, x, rows, scratch); // [T, c]
    }

    /** {@code kh_t = rmsnorm(W_b [e_t ; c_t])} of TokenCat rows {@code [e ; c]} ({@code w_kv_cache_b}: C + c -> A). */
    static float[] decompress(ModelWeights w, float[] tokenCat, int rows, int c, ForwardScratch scratch) {
        float[] kh = matmul(w.kvCacheB, tokenCat, rows, scratch); // [S, A]  W_b [e ; c]
        Kernels.rmsNorm(kh, rows, c, ModelConfig.RMS_NORM_EPS, kh); // [S, A]  rmsnorm(.)
        return kh;
    }
}
