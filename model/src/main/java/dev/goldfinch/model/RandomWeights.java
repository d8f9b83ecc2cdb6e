package dev.goldfinch.model;

import dev.goldfinch.model.tensor.DType;
import dev.goldfinch.model.tensor.Floats;
import dev.goldfinch.model.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Random weights of a given shape, built in memory (off-heap, so a 1.45B-parameter model needs no
 * heap), deterministic for a seed. The scales follow the golden models' re-randomisation rule
 * (golden/goldfinch/README.md) so activations stay in a realistic range: norms 1 ± 0.2, embeddings
 * unit variance, projections 1/sqrt(fan_in), decays on RWKV's −6…−1 ramp. Uniform noise of matching
 * variance stands in for Gaussian noise: it is several times cheaper and nothing here depends on the tails.
 */
public final class RandomWeights {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final double SQRT3 = Math.sqrt(3);

    private RandomWeights() {}

    /** A model with random weights of {@code config}'s shape, stored as {@code dtype} (F32 or BF16). */
    public static GoldFinchModel model(ModelConfig config, long seed, DType dtype) {
        return model(config, seed, dtype, WeightFormat.AS_STORED);
    }

    /** As {@link #model(ModelConfig, long, DType)}, then held in memory as {@code format}. */
    public static GoldFinchModel model(ModelConfig config, long seed, DType dtype, WeightFormat format) {
        // The weights copy what they keep (packed for the kernels), so the generated tensors go right after.
        try (Arena arena = Arena.ofShared()) {
            Map<String, Tensor> tensors = generate(config, seed, dtype, arena);
            return new GoldFinchModel(new ModelWeights(config, tensors, format));
        }
    }

    public static Map<String, Tensor> generate(ModelConfig config, long seed, DType dtype, Arena arena) {
        if (dtype != DType.F32 && dtype != DType.BF16) {
            throw new GoldFinchException.InvalidInput("random weights are F32 or BF16, not " + dtype);
        }
        Map<String, long[]> shapes = config.expectedTensors();
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (var e : shapes.entrySet()) {
            long n = Tensor.numel(e.getValue());
            out.put(e.getKey(), new Tensor(e.getKey(), dtype, e.getValue(), arena.allocate(n * dtype.bytes(), 64)));
        }
        List<String> names = List.copyOf(shapes.keySet());
        names.parallelStream().forEach(name -> fill(out.get(name), seed, dtype));
        return out;
    }

    private static void fill(Tensor t, long seed, DType dtype) {
        String name = t.name();
        long[] shape = t.shape();
        long n = t.numel();
        SplittableRandom rnd = new SplittableRandom(seed * 0x9E3779B97F4A7C15L ^ name.hashCode());
        MemorySegment seg = t.data();
        int last = (int) shape[shape.length - 1];
        String leaf = name.substring(name.lastIndexOf('.') + 1);
        boolean gooseBias = leaf.matches("[wav]0|r_k"); // RWKV-7's LoRA biases and bonus scale
        boolean norm = name.matches(".*\\.(ln\\d|ln_\\w+|ln0|ln_out)\\.(weight|bias)|ln_out\\.(weight|bias)");
        for (long i = 0; i < n; i++) {
            double r = (rnd.nextDouble() * 2 - 1) * SQRT3; // unit variance
            double v;
            if (norm) {
                v = leaf.equals("weight") ? 1 + 0.2 * r : 0.1 * r;
            } else if (name.equals(TensorNames.EMB)) {
                v = r;
            } else if (leaf.equals(TensorNames.DECAY)) {
                v = -6 + 5.0 * (i % last) / Math.max(1, last - 1) + 0.3 * r;
            } else if ((leaf.startsWith("time_maa_") || leaf.startsWith("time_mix_") || leaf.startsWith("x_"))
                    && shape.length == 3
                    && shape[0] == 1) {
                v = (double) (i % last) / last + 0.1 * r; // static mixes in [0, 1)
            } else if (leaf.equals(TensorNames.K_K) || leaf.equals(TensorNames.K_A)) {
                v = 0.85 + 0.1 * r; // RWKV-7's key scales, near their trained values
            } else if (leaf.startsWith("time_") || gooseBias) {
                v = 0.1 * r; // LoRA factors and the bonus
            } else {
                v = r / Math.sqrt(shape[shape.length - 1]); // projections: 1/sqrt(fan_in)
            }
            if (dtype == DType.F32) {
                seg.setAtIndex(F32, i, (float) v);
            } else {
                seg.setAtIndex(I16, i, Floats.floatToBf16((float) v));
            }
        }
    }
}
