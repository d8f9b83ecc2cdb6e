package dev.goldfinch.cli;

import dev.goldfinch.model.GoldFinchModel;
import dev.goldfinch.model.ModelShapes;
import dev.goldfinch.model.RandomWeights;
import dev.goldfinch.model.WeightFormat;
import dev.goldfinch.model.state.KvFormat;
import dev.goldfinch.model.state.SequenceState;
import dev.goldfinch.model.tensor.DType;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;

/**
 * The engine's own decode speed for a shape, measured in this process the way {@code bench engine} measures it: the
 * same random weights as {@code serve --shape}, the same untimed warm-up, forked states at a restored context, timed
 * runs of steps. What the mesh is held against in {@code bench mesh}, one run at a time so that the two can alternate
 * and see the same load on a shared machine.
 */
final class EngineReference implements AutoCloseable {
    /** Decode steps timed per run, as bench engine's default. */
    static final int STEPS = 16;

    private final GoldFinchModel model;
    private final SequenceState base;
    private final int context;
    private final int vocab;

    /**
     * Builds random weights of {@code shape} as {@code serve --shape --dtype --quantize --kv-format} does, warms the
     * JIT up as bench engine does, and prefills a {@code context}-token prompt the timed runs decode after.
     */
    EngineReference(String shape, String dtype, String kvFormat, int context) {
        DType type = "bf16".equalsIgnoreCase(dtype) ? DType.BF16 : DType.F32;
        WeightFormat format = "q8_0".equalsIgnoreCase(dtype) ? WeightFormat.Q8_0 : WeightFormat.AS_STORED;
        this.model = RandomWeights.model(ModelShapes.parse(shape), 42, type, format);
        this.context = context;
        model.kvFormat(KvFormat.parse(kvFormat));
        Random random = new Random(1);
        this.vocab = model.config().vocabSize();
        SequenceState warm = model.newState();
        model.forward(List.of(
                new GoldFinchModel.Segment(warm, random.ints(512, 1, vocab).toArray(), 512)));
        step(List.of(warm), 64, new float[1][vocab]);
        step(List.of(warm.fork(), warm.fork(), warm.fork(), warm.fork()), 16, new float[4][vocab]);
        this.base = model.newState();
        int[] prompt = random.ints(context, 1, vocab).toArray();
        for (int at = 0; at < context; at += 512) {
            model.forward(List.of(new GoldFinchModel.Segment(
                    base,
                    Arrays.copyOfRange(prompt, at, Math.min(context, at + 512)),
                    Math.min(context, at + 512) - at)));
        }
    }

    int context() {
        return context;
    }

    /** One timed run: {@link #STEPS} steps of {@code batch} sequences forked from the context; tokens/s. */
    double tokensPerSecond(int batch) {
        List<SequenceState> states =
                IntStream.range(0, batch).mapToObj(i -> base.fork()).toList();
        states.forEach(s -> s.reserve(context + STEPS + 1)); // as the decode service does
        float[][] logits = new float[batch][vocab]; // one per sequence, as the decode service keeps
        step(states, 1, logits); // materialise the restored context's GOLD keys and values
        long t0 = System.nanoTime();
        step(states, STEPS, logits);
        return (double) batch * STEPS / ((System.nanoTime() - t0) / 1e9);
    }

    private void step(List<SequenceState> states, int steps, float[][] logits) {
        BenchCommand.Engine.step(model, states, steps, logits);
    }

    @Override
    public void close() {
        model.close();
    }
}
