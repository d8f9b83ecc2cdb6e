package dev.goldfinch.cli;

import dev.goldfinch.model.GoldFinchModel;
import dev.goldfinch.model.ModelShapes;
import dev.goldfinch.model.RandomWeights;
import dev.goldfinch.model.WeightFormat;
import dev.goldfinch.model.state.KvFormat;
import dev.goldfinch.model.state.SequenceState;
import dev.goldfinch.model.tensor.DType;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;

/**
 * The engine's own decode speed for a shape, measured in this process the way {@code bench engine} measures it (the
 * same random weights as {@code serve --shape}, the same untimed warm-up, forked states at a restored context, the
 * median of timed runs of steps): what the mesh is held against in {@code bench mesh}.
 */
final class EngineReference {
    /** Decode figures of one batch size at one context. */
    record Decode(int batch, int context, double tokensPerSecond) {
        double stepMs() {
            return 1000.0 * batch / tokensPerSecond;
        }
    }

    private EngineReference() {}

    /**
     * Decode tokens/s of {@code batches} at {@code context}, {@code steps} timed steps per run, median of {@code
     * repeats}, on random weights of {@code shape} built as {@code serve --shape --dtype --quantize --kv-format} does.
     */
    static List<Decode> decode(
            String shape, String dtype, String kvFormat, int context, int[] batches, int steps, int repeats) {
        DType type = "bf16".equalsIgnoreCase(dtype) ? DType.BF16 : DType.F32;
        WeightFormat format = "q8_0".equalsIgnoreCase(dtype) ? WeightFormat.Q8_0 : WeightFormat.AS_STORED;
        List<Decode> out = new ArrayList<>();
        try (GoldFinchModel model = RandomWeights.model(ModelShapes.parse(shape), 42, type, format)) {
            model.kvFormat(KvFormat.parse(kvFormat));
            Random random = new Random(1);
            int vocab = model.config().vocabSize();
            // Untimed warm-up as in bench engine: the JIT compiles a chunk, single and batched steps first.
            SequenceState warm = model.newState();
            model.forward(List.of(
                    new GoldFinchModel.Segment(warm, random.ints(512, 1, vocab).toArray(), 512)));
            step(model, List.of(warm), 64, new float[1][vocab]);
            step(model, List.of(warm.fork(), warm.fork(), warm.fork(), warm.fork()), 16, new float[4][vocab]);
            SequenceState base = model.newState();
            int[] prompt = random.ints(context, 1, vocab).toArray();
            for (int at = 0; at < context; at += 512) {
                model.forward(List.of(new GoldFinchModel.Segment(
                        base,
                        Arrays.copyOfRange(prompt, at, Math.min(context, at + 512)),
                        Math.min(context, at + 512) - at)));
            }
            for (int batch : batches) {
                double tps = BenchCommand.median(repeats, () -> {
                    List<SequenceState> states =
                            IntStream.range(0, batch).mapToObj(i -> base.fork()).toList();
                    states.forEach(s -> s.reserve(context + steps + 1)); // as the decode service does
                    float[][] logits = new float[batch][vocab]; // one per sequence, as the decode service keeps
                    step(model, states, 1, logits); // materialise the restored context's GOLD keys and values
                    long t0 = System.nanoTime();
                    step(model, states, steps, logits);
                    return (double) batch * steps / ((System.nanoTime() - t0) / 1e9);
                });
                out.add(new Decode(batch, context, tps));
            }
        }
        return out;
    }

    /** {@code steps} decode steps of every state at once, each sequence's logits rewritten in place. */
    private static void step(GoldFinchModel model, List<SequenceState> states, int steps, float[][] logits) {
        int[] token = {17};
        List<GoldFinchModel.Segment> segments = new ArrayList<>(states.size());
        for (SequenceState s : states) {
            segments.add(new GoldFinchModel.Segment(s, token, 0));
        }
        for (int i = 0; i < steps; i++) {
            model.forward(segments, logits);
        }
    }
}
