package dev.goldfinch.bench;

import dev.goldfinch.model.GoldFinchModel;
import dev.goldfinch.model.ModelShapes;
import dev.goldfinch.model.RandomWeights;
import dev.goldfinch.model.constrain.JsonCursor;
import dev.goldfinch.model.constrain.JsonGrammar;
import dev.goldfinch.model.sampling.Sampler;
import dev.goldfinch.model.sampling.SamplingParams;
import dev.goldfinch.model.state.SequenceState;
import dev.goldfinch.model.tensor.DType;
import dev.goldfinch.model.tokenizer.WorldTokenizer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * What structured outputs add to a decode step. {@code mask}: masking {@code batch} sequences' logits (65,536
 * entries each) at positions along a valid output, masks already cached — the steady state. {@code step}: one
 * decode step of the mesh tests' random-weight model (L4-D128, 65,536 ids) for {@code batch} sequences, forward
 * and sampling, with and without the mask.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class JsonMaskBenchmark {
    static final String SCHEMA = """
            {"type":"object","properties":{"name":{"type":"string","maxLength":12},
             "age":{"type":"integer","minimum":0,"maximum":150},"admin":{"type":"boolean"},
             "tags":{"type":"array","items":{"enum":["a","b","c"]},"maxItems":3}},
             "required":["name","age","admin","tags"],"additionalProperties":false}""";
    static final String OUTPUT = "{\"name\":\"Ada Lovelace\",\"age\":36,\"admin\":true,\"tags\":[\"a\",\"c\"]}";

    @Param({"1", "16"})
    public int batch;

    @Param({"false", "true"})
    public boolean schema;

    JsonGrammar grammar;
    int[] tokens;
    JsonCursor[] cursors;
    int[] at;
    float[][] logits;
    GoldFinchModel model;
    SequenceState[] states;
    Sampler[] samplers;

    @Setup
    public void setUp() {
        WorldTokenizer world = WorldTokenizer.world();
        grammar = JsonGrammar.compile(SCHEMA, world, "bench");
        tokens = world.encode(OUTPUT);
        cursors = new JsonCursor[batch];
        at = new int[batch];
        logits = new float[batch][65536];
        for (int i = 0; i < batch; i++) {
            at[i] = i % tokens.length; // sequences at different places of the output
            cursors[i] = JsonCursor.replay(grammar, java.util.Arrays.copyOf(tokens, at[i]));
        }
        for (int round = 0; round < 2; round++) { // fill the mask cache along the whole output
            JsonCursor c = grammar.start();
            for (int t : tokens) {
                c.mask(logits[0], 1000);
                c.accept(t);
            }
        }
        model = RandomWeights.model(ModelShapes.parse("layers=4,width=128,head=32,vocab=65536"), 7, DType.F32);
        states = new SequenceState[batch];
        samplers = new Sampler[batch];
        for (int i = 0; i < batch; i++) {
            states[i] = model.newState();
            model.prefill(states[i], world.encode("User: describe Ada as JSON\n\nAssistant:"));
            samplers[i] = new Sampler(SamplingParams.defaults().withSeed((long) i), 65536);
        }
    }

    /** Masks each sequence's logits and follows its next token (wrapping round at the end of the output). */
    private void maskAll() {
        for (int i = 0; i < batch; i++) {
            cursors[i].mask(logits[i], 1000);
            cursors[i].accept(tokens[at[i]]);
            if (++at[i] == tokens.length) {
                at[i] = 0;
                cursors[i] = grammar.start();
            }
        }
    }

    @Benchmark
    public float[][] mask() {
        if (schema) {
            maskAll();
        }
        return logits;
    }

    @Benchmark
    public int step() {
        List<GoldFinchModel.Segment> segments = new ArrayList<>(batch);
        for (int i = 0; i < batch; i++) {
            segments.add(new GoldFinchModel.Segment(states[i], new int[] {tokens[at[i]]}, 0));
        }
        model.forward(segments, logits);
        int sum = 0;
        if (schema) {
            maskAll();
        } else {
            for (int i = 0; i < batch; i++) {
                if (++at[i] == tokens.length) {
                    at[i] = 0;
                }
            }
        }
        for (int i = 0; i < batch; i++) {
            sum += samplers[i].sample(logits[i]);
            if (states[i].length() > 1500) {
                states[i] = model.newState();
                model.prefill(states[i], new int[] {1, 2, 3});
            }
        }
        return sum;
    }
}
