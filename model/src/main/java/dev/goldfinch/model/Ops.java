package dev.goldfinch.model;

import dev.goldfinch.model.tensor.Kernels;
import dev.goldfinch.model.tensor.Matrix;

/**
 * The row operations the block classes share, each writing a new array taken from the pass's {@link ForwardScratch}
 * (or into its first argument). Arrays are {@code [rows, width]} row-major.
 */
final class Ops {
    private Ops() {}

    /** {@code W x} for every row: {@code [rows, W.rows()]}. */
    static float[] matmul(Matrix m, float[] x, int rows, ForwardScratch scratch) {
        float[] y = scratch.take(rows * m.rows());
        Kernels.matmul(m, x, rows, y);
        return y;
    }

    /** Columns {@code [c0, c0 + cols)} of every row of a {@code [rows, width]} array. */
    static float[] columns(float[] x, int rows, int width, int c0, int cols, ForwardScratch scratch) {
        float[] out = scratch.take(rows * cols);
        Kernels.columns(x, rows, width, c0, cols, out);
        return out;
    }

    /** {@code x + dx * (mix + lora)} per row ({@code lora} may be null): RWKV's token-shift interpolation. */
    static float[] lerp(float[] x, float[] dx, float[] mix, float[] lora, int c, ForwardScratch scratch) {
        float[] out = scratch.take(x.length);
        Kernels.lerp(x, dx, mix, lora, c, out);
        return out;
    }

    /** {@code tanh(x @ w1) @ w2} (a LoRA with tanh, as the reference writes it; here {@code W2 tanh(W1 x)}). */
    static float[] tanhLora(Matrix w1, Matrix w2, float[] x, int rows, ForwardScratch scratch) {
        float[] hidden = matmul(w1, x, rows, scratch);
        Kernels.tanh(hidden, hidden.length);
        return matmul(w2, hidden, rows, scratch);
    }

    static void addInto(float[] acc, float[] v) {
        for (int i = 0; i < acc.length; i++) {
            acc[i] += v[i];
        }
    }
}
