package dev.goldfinch.cli;

import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.GoldFinchModel;
import dev.goldfinch.model.io.Npy;
import dev.goldfinch.model.state.SequenceState;
import dev.goldfinch.model.state.StateCodec;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * The engine's contract against reference data: logits of every position as float32 {@code [T, V]}.
 * With {@code --prefill N} the state after N tokens crosses a byte boundary into a fresh object
 * before the rest is fed in chunks, so the cache format is checked along with the math.
 */
@Command(
        mixinStandardHelpOptions = true,
        name = "logits",
        description = "Write the logits of every position of a token sequence to a .npy file.",
        footer = {"", "Example:", "  goldfinch logits --model models/goldfinch --tokens 510,444,12 --out logits.npy"})
final class LogitsCommand implements Callable<Integer> {
    @Mixin
    ModelOptions model;

    @Option(
            names = "--tokens",
            required = true,
            paramLabel = "IDS",
            description = "Token ids, comma-separated (e.g. 1,2,3).")
    String tokens;

    @Option(names = "--out", required = true, paramLabel = "FILE.npy", description = "Output file, float32 [T, vocab].")
    Path out;

    @Option(
            names = "--prefill",
            paramLabel = "N",
            description = "Run the first N tokens in one pass, serialize and restore the state, then feed the rest.")
    Integer prefill;

    @Option(
            names = "--chunk",
            defaultValue = "1",
            paramLabel = "M",
            description = "Chunk size for the tokens after --prefill (default: ${DEFAULT-VALUE}).")
    int chunk;

    @Override
    public Integer call() throws Exception {
        int[] ids = parseIds(tokens);
        if (chunk < 1) {
            throw new GoldFinchException.InvalidInput("--chunk must be at least 1, got " + chunk);
        }
        if (prefill != null && (prefill < 1 || prefill > ids.length)) {
            throw new GoldFinchException.InvalidInput("--prefill must be in 1.." + ids.length + ", got " + prefill);
        }
        try (GoldFinchModel m = model.load()) {
            int v = m.config().vocabSize();
            float[] all = new float[ids.length * v];
            SequenceState state = m.newState();
            int done = prefill == null ? ids.length : prefill;
            float[] first = m.forward(List.of(new GoldFinchModel.Segment(state, Arrays.copyOf(ids, done), 0)))[0];
            System.arraycopy(first, 0, all, 0, first.length);
            if (done < ids.length) {
                byte[] blob = StateCodec.encode(state, StateCodec.FloatType.F32, 0);
                state = StateCodec.decode(blob, m.config(), m.fingerprint());
                while (done < ids.length) {
                    int n = Math.min(chunk, ids.length - done);
                    float[] l = m.forward(List.of(
                            new GoldFinchModel.Segment(state, Arrays.copyOfRange(ids, done, done + n), 0)))[0];
                    System.arraycopy(l, 0, all, done * v, l.length);
                    done += n;
                }
            }
            Npy.writeFloat32(out, new int[] {ids.length, v}, all);
        }
        return 0;
    }

    static int[] parseIds(String text) {
        String[] parts = text.strip().split("[,\\s]+");
        if (text.isBlank()) {
            throw new GoldFinchException.InvalidInput("--tokens is empty");
        }
        int[] ids = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            try {
                ids[i] = Integer.parseInt(parts[i]);
            } catch (NumberFormatException e) {
                throw new GoldFinchException.InvalidInput("token id '" + parts[i] + "' is not a number");
            }
        }
        return ids;
    }
}
