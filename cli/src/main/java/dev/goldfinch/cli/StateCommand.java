package dev.goldfinch.cli;

import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.GoldFinchModel;
import dev.goldfinch.model.state.InitialStates;
import dev.goldfinch.model.state.SequenceState;
import dev.goldfinch.model.tokenizer.WorldTokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        name = "state",
        mixinStandardHelpOptions = true,
        description = "Initial states: sequence states a request can start from (serve --initial-state NAME=FILE).",
        footer = {
            "",
            "Example:",
            "  goldfinch state save --model model.safetensors --prompt \"You are a pirate.\" --out pirate.gfst"
        },
        subcommands = {StateCommand.Save.class})
final class StateCommand {

    @Command(
            name = "save",
            mixinStandardHelpOptions = true,
            description = "Prefill a prompt and write the state after it, for serve --initial-state NAME=FILE (or"
                    + " goldfinch.prefill.initial-states.NAME=FILE). A request starting from it answers as if its"
                    + " prompt followed this one. For a GoldFinch model the file holds the prompt's tokens and"
                    + " compressed keys (the GOLD layers attend over them); for a recurrent model (Finch, RWKV-5,"
                    + " RWKV-7) only the fixed-size recurrent state.",
            footer = {
                "",
                "Example:",
                "  goldfinch state save --model ../shared/golden/rwkv-family-tiny/tiny-rwkv-7v0-834K.safetensors \\",
                "      --prompt \"Once upon a time\" --out story.gfst",
                "  goldfinch serve --model ../shared/golden/rwkv-family-tiny/tiny-rwkv-7v0-834K.safetensors \\",
                "      --initial-state story=story.gfst"
            })
    static final class Save implements Callable<Integer> {
        @Mixin
        ModelOptions model;

        @Option(
                names = "--vocab",
                paramLabel = "FILE",
                description = "A World-format vocabulary file (default: as serve and generate choose it).")
        Path vocab;

        @Option(names = "--prompt", required = true, paramLabel = "TEXT", description = "The prompt to prefill.")
        String prompt;

        @Option(names = "--out", required = true, paramLabel = "FILE", description = "Where to write the state.")
        Path out;

        @Override
        public Integer call() throws IOException {
            try (GoldFinchModel m = model.load()) {
                WorldTokenizer tok = WorldTokenizer.forModel(
                        vocab, model.source.model, m.config().vocabSize());
                int[] ids = tok.encode(prompt);
                if (ids.length == 0) {
                    throw new GoldFinchException.InvalidInput("the prompt is empty");
                }
                tok.checkFits(m.config().vocabSize());
                SequenceState state = m.newState();
                m.prefill(state, ids);
                byte[] blob = InitialStates.encodeForSaving(state);
                Files.write(out, blob);
                System.out.printf(
                        "wrote %s: %d bytes, %d prompt tokens, %s%n",
                        out,
                        blob.length,
                        ids.length,
                        m.config().compressedDim() > 0
                                ? "tokens and compressed keys included"
                                : "recurrent state only (position 0)");
            }
            return 0;
        }
    }
}
