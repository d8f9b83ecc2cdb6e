package dev.goldfinch.model.constrain;

import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.tokenizer.WorldTokenizer;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;

/**
 * A JSON Schema compiled for one vocabulary: the byte automaton of {@link JsonSchemaCompiler}'s output and, per
 * automaton state, the tokens whose bytes keep it alive (computed on first use by walking the vocabulary in sorted
 * order, so shared prefixes are stepped once, then cached). Thread-safe; share one per schema (see
 * {@link JsonGrammars}). Start a sequence with {@link #start()}.
 */
public final class JsonGrammar {
    /** The schema {@code response_format: {"type": "json_object"}} stands for: any JSON object. */
    public static final String ANY_OBJECT = "{\"type\":\"object\"}";

    static final int MAX_NFA_STATES = 400_000;
    static final int MAX_DFA_STATES = 60_000;
    /** Masks kept per grammar; past it the cache starts over (strings with long bounds have many states). */
    static final int MAX_CACHED_MASKS = 2048;

    private static final ObjectMapper JSON = new ObjectMapper();

    private final ByteDfa dfa;
    private final Vocabulary vocabulary;
    private final Map<Integer, Mask> masks = new ConcurrentHashMap<>();

    private JsonGrammar(ByteDfa dfa, Vocabulary vocabulary) {
        this.dfa = dfa;
        this.vocabulary = vocabulary;
    }

    /**
     * Compiles {@code schemaJson} for {@code tokenizer}'s vocabulary. Bad or unsupported schemas fail with an
     * {@link GoldFinchException.InvalidInput} naming {@code field} and the schema location.
     */
    public static JsonGrammar compile(String schemaJson, WorldTokenizer tokenizer, String field) {
        return compile(new Spec(schemaJson, "", false), tokenizer, field);
    }

    /**
     * What to constrain an output to: {@code prefix} (literal text) then JSON valid against {@code schemaJson};
     * when {@code optional}, an output that does not begin with the prefix is free text instead (a tool call the
     * model may open: once it writes the prefix, the call is constrained). An optional spec needs a prefix.
     */
    public record Spec(String schemaJson, String prefix, boolean optional) {
        public Spec {
            prefix = prefix == null ? "" : prefix;
            if (optional && prefix.isEmpty()) {
                throw new IllegalArgumentException("an optional JSON constraint needs a prefix that opens it");
            }
        }
    }

    /** Compiles a {@link Spec}; errors name {@code field}. */
    public static JsonGrammar compile(Spec spec, WorldTokenizer tokenizer, String field) {
        String schemaJson = spec.schemaJson();
        JsonNode schema;
        try {
            schema = JSON.readTree(schemaJson);
        } catch (JacksonException e) {
            throw new GoldFinchException.InvalidInput(
                    field, "the JSON schema is not valid JSON: " + e.getOriginalMessage());
        }
        if (schema == null || schema.isMissingNode()) {
            throw new GoldFinchException.InvalidInput(field, "the JSON schema is empty");
        }
        ByteNfa nfa = new ByteNfa(MAX_NFA_STATES, field);
        ByteNfa.Fragment f = JsonSchemaCompiler.compile(nfa, field, schema);
        if (!spec.prefix().isEmpty()) {
            f = nfa.seq(nfa.literal(spec.prefix()), f);
        }
        if (spec.optional()) {
            f = nfa.union(java.util.List.of(f, textNotStartingWith(nfa, spec.prefix())));
        }
        return new JsonGrammar(new ByteDfa(nfa, f.start(), f.end(), MAX_DFA_STATES, field), Vocabulary.of(tokenizer));
    }

    /** Any bytes that do not begin with {@code prefix}: its proper prefixes, or a byte off it and then anything. */
    private static ByteNfa.Fragment textNotStartingWith(ByteNfa nfa, String prefix) {
        byte[] p = prefix.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        int end = nfa.state();
        int anything = nfa.state();
        nfa.range(anything, 0, 255, anything);
        nfa.epsilon(anything, end);
        int start = nfa.state();
        int at = start;
        for (int i = 0; i < p.length; i++) {
            int c = p[i] & 0xff;
            nfa.epsilon(at, end);
            if (c > 0) {
                nfa.range(at, 0, c - 1, anything);
            }
            if (c < 255) {
                nfa.range(at, c + 1, 255, anything);
            }
            if (i < p.length - 1) {
                int next = nfa.state();
                nfa.range(at, c, c, next);
                at = next;
            }
        }
        return new ByteNfa.Fragment(start, end);
    }

    /** A new sequence's position: before the first byte. */
    public JsonCursor start() {
        return new JsonCursor(this, dfa.start());
    }

    /**
     * Fewest generation steps that can finish a value (its bytes, one token each at worst, then end-of-text):
     * with max_tokens at least this, every constrained output is complete.
     */
    public int minTokens() {
        return dfa.distance(dfa.start()) + 1;
    }

    /** Most steps any output can take (longest value + end-of-text), or -1 when the schema sets no bound. */
    public long maxTokens() {
        return dfa.longest() < 0 ? -1 : dfa.longest() + 1;
    }

    /** Whether {@code text} is exactly one output this grammar allows. */
    public boolean matches(String text) {
        return dfa.matches(text.getBytes(java.nio.charset.StandardCharsets.UTF_8));
    }

    int automatonStates() {
        return dfa.states();
    }

    ByteDfa dfa() {
        return dfa;
    }

    Vocabulary vocabulary() {
        return vocabulary;
    }

    /** Whether every continuation from {@code state} is allowed (free text): nothing to mask. */
    boolean unconstrained(int state) {
        return dfa.universal(state);
    }

    Mask mask(int state) {
        Mask m = masks.get(state);
        if (m == null) {
            m = computeMask(state);
            if (masks.size() >= MAX_CACHED_MASKS) {
                masks.clear();
            }
            masks.put(state, m);
        }
        return m;
    }

    /** Walks the sorted vocabulary from {@code state}: tokens sharing a prefix share its steps, a dead prefix skips them. */
    private Mask computeMask(int state) {
        Vocabulary v = vocabulary;
        int[] at = new int[v.maxLength + 1];
        at[0] = state;
        int good = 0; // at[0..good] are valid for the previous token's prefix
        int deadLength = Integer.MAX_VALUE; // the previous token's prefix of this length is rejected
        int[] allowed = new int[1024];
        int n = 0;
        int maxDistance = 0;
        if (dfa.accepting(state)) {
            allowed[n++] = WorldTokenizer.END_OF_TEXT;
        }
        for (int i = 0; i < v.sorted.length; i++) {
            byte[] t = v.bytes[i];
            int lcp = v.lcp[i];
            if (lcp >= deadLength) {
                continue;
            }
            deadLength = Integer.MAX_VALUE;
            int d = Math.min(lcp, good);
            while (d < t.length) {
                int q = dfa.step(at[d], t[d]);
                if (q == ByteDfa.REJECT) {
                    deadLength = d + 1;
                    break;
                }
                at[++d] = q;
            }
            good = d;
            if (d == t.length) {
                if (n == allowed.length) {
                    allowed = Arrays.copyOf(allowed, n * 2);
                }
                allowed[n++] = v.sorted[i];
                maxDistance = Math.max(maxDistance, dfa.distance(at[d]));
            }
        }
        int[] ids = Arrays.copyOf(allowed, n);
        Arrays.sort(ids);
        return new Mask(ids, maxDistance);
    }

    /**
     * The tokens allowed in one automaton state, ascending, and the most bytes any of them leaves to acceptance
     * (when the step budget covers that, no token needs a closer look).
     */
    record Mask(int[] allowed, int maxDistanceAfter) {}

    /** A vocabulary sorted by bytes, with each token's common prefix length with the one before. */
    static final class Vocabulary {
        private static final Map<WorldTokenizer, Vocabulary> BY_TOKENIZER = new ConcurrentHashMap<>();

        final int[] sorted; // token ids in byte order
        final byte[][] bytes; // by sorted position
        final int[] lcp;
        final int maxLength;
        final byte[][] byId;

        private Vocabulary(WorldTokenizer tokenizer) {
            int size = tokenizer.vocabSize();
            byId = new byte[size][];
            int count = 0;
            for (int id = 1; id < size; id++) {
                if (tokenizer.isToken(id)) {
                    byId[id] = tokenizer.tokenBytes(id);
                    count++;
                }
            }
            Integer[] order = new Integer[count];
            int k = 0;
            for (int id = 1; id < size; id++) {
                if (byId[id] != null) {
                    order[k++] = id;
                }
            }
            Arrays.sort(order, (a, b) -> Arrays.compareUnsigned(byId[a], byId[b]));
            sorted = new int[count];
            bytes = new byte[count][];
            lcp = new int[count];
            int longest = 0;
            for (int i = 0; i < count; i++) {
                sorted[i] = order[i];
                bytes[i] = byId[order[i]];
                longest = Math.max(longest, bytes[i].length);
                if (i > 0) {
                    int m = Arrays.mismatch(bytes[i - 1], bytes[i]);
                    lcp[i] = m < 0 ? bytes[i].length : m;
                }
            }
            maxLength = longest;
        }

        static Vocabulary of(WorldTokenizer tokenizer) {
            return BY_TOKENIZER.computeIfAbsent(tokenizer, Vocabulary::new);
        }
    }
}
