package dev.goldfinch.prefill;

import dev.goldfinch.error.TypedFailure;
import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.GoldFinchModel;
import dev.goldfinch.model.state.InitialStates;
import dev.goldfinch.model.state.SequenceState;
import dev.goldfinch.model.state.StateCodec;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The named initial states this prefill service offers (tuned or saved states, see {@link InitialStates}), loaded
 * once at start-up. A request that names one starts from it: its entries live in a namespace of their own, derived
 * from the request's namespace, the name and the state's content, where the state itself is the first entry (at
 * position 0 for a recurrent model, after its own tokens for GoldFinch). Prefix reuse, decode checkpoints and
 * failover then work on that namespace as on any other.
 */
public final class InitialStateLibrary {
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,63}");

    /** One loaded state; {@code contentId} changes whenever the file's content does, so stale entries never match. */
    public record Named(String name, SequenceState state, String contentId) {
        /** The namespace a request of namespace {@code salt} lives in when it starts from this state. */
        public String namespace(String salt) {
            return salt + "\u0000initial-state:" + name + ":" + contentId;
        }

        /** Positions the state holds before the prompt: its tokens (GoldFinch), 0 for a recurrent model's state. */
        public int length() {
            return state.length();
        }
    }

    private final Map<String, Named> states;

    private InitialStateLibrary(Map<String, Named> states) {
        this.states = states;
    }

    public static InitialStateLibrary empty() {
        return new InitialStateLibrary(Map.of());
    }

    /**
     * {@code files}: name → path; {@code directory} (may be null): every regular file in it, named after the file
     * without its extension. A bad name, an unreadable file or one that does not fit the model stops start-up.
     */
    public static InitialStateLibrary load(Map<String, String> files, String directory, GoldFinchModel model) {
        Map<String, Path> paths = new TreeMap<>();
        if (directory != null && !directory.isBlank()) {
            Path dir = Path.of(directory);
            try (Stream<Path> list = Files.list(dir)) {
                list.filter(Files::isRegularFile).forEach(p -> {
                    String file = p.getFileName().toString();
                    int dot = file.indexOf('.');
                    paths.put(dot > 0 ? file.substring(0, dot) : file, p);
                });
            } catch (IOException e) {
                throw new GoldFinchException.BadModel(
                        "cannot list the initial state directory " + dir + ": " + e.getMessage(), e);
            }
        }
        files.forEach((name, path) -> paths.put(name, Path.of(path)));
        Map<String, Named> loaded = new TreeMap<>();
        paths.forEach((name, path) -> {
            if (!NAME.matcher(name).matches()) {
                throw new GoldFinchException.BadModel("initial state name '" + name
                        + "' must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit");
            }
            SequenceState state = InitialStates.load(path, model.config(), model.fingerprint());
            loaded.put(name, new Named(name, state, contentId(state)));
        });
        return new InitialStateLibrary(Map.copyOf(loaded));
    }

    /** For tests and embedders: states already in memory. */
    public static InitialStateLibrary of(Map<String, SequenceState> states) {
        Map<String, Named> named = new TreeMap<>();
        states.forEach((name, state) -> named.put(name, new Named(name, state, contentId(state))));
        return new InitialStateLibrary(Map.copyOf(named));
    }

    /** The state called {@code name}, or an INVALID_ARGUMENT naming {@code initial_state}. */
    public Named get(String name) {
        Named n = states.get(name);
        if (n == null) {
            throw TypedFailure.invalidArgument(
                    "initial_state",
                    "unknown initial_state '" + name + "'"
                            + (states.isEmpty()
                                    ? "; this server has none configured"
                                    : "; this server has " + new TreeMap<>(states).keySet()));
        }
        return n;
    }

    public java.util.Set<String> names() {
        return states.keySet();
    }

    private static String contentId(SequenceState state) {
        try {
            byte[] digest =
                    MessageDigest.getInstance("SHA-256").digest(StateCodec.encode(state, StateCodec.FloatType.F32, 0));
            return HexFormat.of().formatHex(Arrays.copyOf(digest, 16));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
