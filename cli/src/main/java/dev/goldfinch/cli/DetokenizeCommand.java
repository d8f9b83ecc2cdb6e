package dev.goldfinch.cli;

import dev.goldfinch.model.tokenizer.WorldTokenizer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(
        mixinStandardHelpOptions = true,
        name = "detokenize",
        description = "Print the text of token ids (raw bytes, exactly as the tokens spell them).",
        footer = {"", "Example:", "  goldfinch detokenize --ids \"33520 4600 332 59219 21509\""})
final class DetokenizeCommand implements Callable<Integer> {
    @Option(
            names = "--vocab",
            paramLabel = "FILE",
            description = "A World-format vocabulary file instead of the bundled RWKV World vocabulary.")
    Path vocab;

    @Option(
            names = "--ids",
            required = true,
            paramLabel = "IDS",
            description = "Token ids separated by spaces or commas, e.g. \"1 2 3\".")
    String ids;

    @Override
    public Integer call() throws IOException {
        WorldTokenizer tok = WorldTokenizer.forModel(vocab, null);
        System.out.write(tok.decodeBytes(LogitsCommand.parseIds(ids)));
        System.out.println();
        System.out.flush();
        return 0;
    }
}
