package dev.goldfinch.cli;

import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.GoldFinchModel;
import dev.goldfinch.model.sampling.Sampler;
import dev.goldfinch.model.sampling.SamplingParams;
import dev.goldfinch.model.sampling.StopSequenceMatcher;
import dev.goldfinch.model.state.SequenceState;
import dev.goldfinch.model.tokenizer.StreamingDecoder;
import dev.goldfinch.model.tokenizer.WorldTokenizer;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** Prefill the prompt in one pass, then sample and stream tokens to stdout as they are produced. */
@Command(
        mixinStandardHelpOptions = true,
        name = "generate",
        description = "Generate text from a prompt, streaming it to stdout.",
        footer = {
            "",
            "Example:",
            "  goldfinch generate --shape L12-D768 --prompt \"The goldfinch\" --max-tokens 32 --temperature 0.8 --sample-seed 7"
        })
final class GenerateCommand implements Callable<Integer> {
    @Mixin
    ModelOptions model;

    @Option(
            names = "--vocab",
            paramLabel = "FILE",
            description =
                    "A World-format vocabulary file instead of the bundled RWKV World vocabulary (default: the file beside --model if there is one, else bytes for a model of 256 tokens, else the bundled one).")
    Path vocab;

    @Option(names = "--prompt", required = true, paramLabel = "TEXT", description = "The prompt.")
    String prompt;

    @Option(
            names = "--max-tokens",
            defaultValue = "64",
            description = "Tokens to generate at most (default: ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--temperature", defaultValue = "1.0", description = "0 = greedy (default: ${DEFAULT-VALUE}).")
    double temperature;

    @Option(
            names = "--top-p",
            defaultValue = "1.0",
            description = "Nucleus sampling mass, (0, 1] (default: ${DEFAULT-VALUE}).")
    double topP;

    @Option(names = "--top-k", defaultValue = "0", description = "Keep the k most likely tokens; 0 = off.")
    int topK;

    @Option(
            names = "--min-p",
            defaultValue = "0",
            description = "Drop tokens below min-p × the top probability; 0 = off.")
    double minP;

    @Option(names = "--presence-penalty", defaultValue = "0")
    double presencePenalty;

    @Option(names = "--frequency-penalty", defaultValue = "0")
    double frequencyPenalty;

    @Option(names = "--repetition-penalty", defaultValue = "1.0")
    double repetitionPenalty;

    @Option(
            names = "--penalty-decay",
            defaultValue = "1.0",
            description = "RWKV's decay of penalty counts per token; 1 = none, as the server's default"
                    + " (default: ${DEFAULT-VALUE}; ChatRWKV uses 0.996).")
    double penaltyDecay;

    @Option(names = "--stop", description = "A stop sequence (repeatable); not printed.")
    List<String> stop = new ArrayList<>();

    @Option(
            names = "--sample-seed",
            description = "Sampling seed, for a reproducible run (--seed seeds the weights of --shape).")
    Long seed;

    @Option(names = "--stats", description = "Print timing to stderr at the end.")
    boolean stats;

    @Override
    public Integer call() {
        SamplingParams params = new SamplingParams(
                temperature,
                topK,
                topP,
                minP,
                presencePenalty,
                frequencyPenalty,
                repetitionPenalty,
                penaltyDecay,
                seed,
                maxTokens,
                stop,
                0,
                java.util.Map.of());
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        try (GoldFinchModel m = model.load()) {
            // A byte-level model (vocabulary 256) reads bytes unless a vocabulary is given or lies beside it.
            WorldTokenizer tok = WorldTokenizer.forModel(
                    vocab, model.source.model, m.config().vocabSize());
            int[] ids = tok.encode(prompt);
            if (ids.length == 0) {
                throw new GoldFinchException.InvalidInput("the prompt is empty");
            }
            tok.checkFits(m.config().vocabSize());
            SequenceState state = m.newState();
            Sampler sampler = new Sampler(params, m.config().vocabSize());
            sampler.observePrompt(ids);
            StreamingDecoder decoder = new StreamingDecoder(tok);
            StopSequenceMatcher stops = new StopSequenceMatcher(params.stop());
            long t0 = System.nanoTime();
            float[] logits = m.prefill(state, ids);
            long t1 = System.nanoTime();
            int generated = 0;
            String reason = "length";
            while (generated < params.maxTokens()) {
                int next = sampler.sample(logits);
                generated++;
                if (next == WorldTokenizer.END_OF_TEXT) {
                    reason = "end of text";
                    break;
                }
                sampler.accept(next);
                StopSequenceMatcher.Result r = stops.push(decoder.push(next));
                out.print(r.emit());
                if (r.stopped()) {
                    reason = "stop sequence";
                    break;
                }
                if (generated < params.maxTokens()) {
                    logits = m.step(state, next);
                }
            }
            out.print(stops.push(decoder.flush()).emit() + stops.finish());
            out.println();
            long t2 = System.nanoTime();
            if (stats) {
                System.err.printf(
                        "prompt %d tokens in %.1f ms (%.1f tok/s); generated %d tokens in %.1f ms (%.1f tok/s); finished: %s%n",
                        ids.length,
                        (t1 - t0) / 1e6,
                        ids.length / ((t1 - t0) / 1e9),
                        generated,
                        (t2 - t1) / 1e6,
                        generated / ((t2 - t1) / 1e9),
                        reason);
            }
        }
        return 0;
    }
}
