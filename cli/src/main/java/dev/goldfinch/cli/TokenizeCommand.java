package dev.goldfinch.cli;

import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.tokenizer.WorldTokenizer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(
        mixinStandardHelpOptions = true,
        name = "tokenize",
        description = "Print the token ids of a text, space-separated on one line.",
        footer = {"", "Example:", "  goldfinch tokenize --text \"Today is a beautiful day.\""})
final class TokenizeCommand implements Callable<Integer> {
    @Option(
            names = "--vocab",
            paramLabel = "FILE",
            description = "A World-format vocabulary file instead of the bundled RWKV World vocabulary.")
    Path vocab;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Input input;

    static final class Input {
        @Option(names = "--text", paramLabel = "TEXT", description = "The text to tokenize.")
        String text;

        @Option(
                names = "--file",
                paramLabel = "PATH",
                description = "A file whose raw bytes are tokenized (invalid UTF-8 too).")
        Path file;
    }

    @Override
    public Integer call() throws IOException {
        WorldTokenizer tok = WorldTokenizer.forModel(vocab, null);
        byte[] bytes;
        if (input.file != null) {
            if (!Files.isRegularFile(input.file)) {
                throw new GoldFinchException.InvalidInput("no such file: " + input.file);
            }
            bytes = Files.readAllBytes(input.file);
        } else {
            bytes = input.text.getBytes(StandardCharsets.UTF_8);
        }
        System.out.println(
                Arrays.stream(tok.encode(bytes)).mapToObj(Integer::toString).collect(Collectors.joining(" ")));
        return 0;
    }
}
