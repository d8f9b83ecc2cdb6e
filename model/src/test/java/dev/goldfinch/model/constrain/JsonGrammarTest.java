package dev.goldfinch.model.constrain;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.networknt.schema.Schema;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SpecificationVersion;
import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.tokenizer.WorldTokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;

class JsonGrammarTest {
    static final WorldTokenizer WORLD = WorldTokenizer.world();
    static final int MODEL_VOCAB = 65536; // the model's rows: a few past the vocabulary, never allowed
    static final ObjectMapper JSON = new ObjectMapper();
    static final boolean[] IN_VOCABULARY = new boolean[MODEL_VOCAB];

    static {
        for (int i = 0; i < MODEL_VOCAB; i++) {
            IN_VOCABULARY[i] = i == 0 || (i < WORLD.vocabSize() && WORLD.isToken(i));
        }
    }

    static final SchemaRegistry SCHEMAS = SchemaRegistry.withDefaultDialect(SpecificationVersion.DRAFT_2020_12);

    /** Bounded schemas covering every supported keyword. */
    static final List<String> BOUNDED = List.of("""
            {"type":"object","properties":{
              "name":{"type":"string","minLength":1,"maxLength":12},
              "age":{"type":"integer","minimum":0,"maximum":150},
              "score":{"type":"number","minimum":-5,"maximum":5},
              "admin":{"type":"boolean"},
              "nick":{"anyOf":[{"type":"string","maxLength":6},{"type":"null"}]},
              "tags":{"type":"array","items":{"enum":["a","bé","c\\"q"]},"minItems":1,"maxItems":3}},
             "required":["name","age","admin","tags"],"additionalProperties":false}""", """
            {"$defs":{"point":{"type":"object","properties":{"x":{"type":"integer","exclusiveMinimum":-10,"exclusiveMaximum":10},
                                                            "y":{"type":"integer","minimum":-3,"maximum":1234}},
                                "required":["x","y"],"additionalProperties":false}},
             "type":"object","properties":{"from":{"$ref":"#/$defs/point"},"to":{"$ref":"#/$defs/point"},
                                           "label":{"const":"edge"}},
             "required":["from","to","label"],"additionalProperties":false}""", """
            {"type":"array","items":{"type":["string","integer","null"],"maxLength":4,"minimum":7,"maximum":12},"maxItems":4}""", """
            {"type":"object","properties":{"a":{"type":"string","maxLength":3},"b":{"type":"boolean"},"c":{"type":"null"}},
             "additionalProperties":false}""", """
            {"anyOf":[{"type":"integer","minimum":-1000000,"maximum":-999},{"enum":[true,null,1.5,{"k":[1]}]}]}""");

    @Test
    void everySeededOutputParsesAndValidates() {
        for (String schemaText : BOUNDED) {
            JsonGrammar g = JsonGrammar.compile(schemaText, WORLD, "response_format");
            assertTrue(g.maxTokens() > 0, "bounded schema has a bound: " + schemaText);
            Schema validator = SCHEMAS.getSchema(schemaText);
            assertFalse(
                    validator
                            .validate(JSON.readTree("{\"name\":\"\",\"x\":[[]]}"))
                            .isEmpty(),
                    "the validator bites");
            for (long seed = 0; seed < 200; seed++) {
                String out = generate(g, seed, (int) g.maxTokens());
                JsonNode parsed = JSON.readTree(out);
                assertEquals(List.of(), validator.validate(parsed), () -> schemaText + " seed output " + out);
                assertTrue(g.matches(out));
            }
        }
    }

    @Test
    void unboundedSchemasFinishWithinTheirTokenBudget() {
        JsonGrammar g = JsonGrammar.compile(JsonGrammar.ANY_OBJECT, WORLD, "response_format");
        assertEquals(-1, g.maxTokens());
        assertEquals(3, g.minTokens()); // "{}" then end-of-text, two bytes at worst as two tokens
        Schema validator = SCHEMAS.getSchema(JsonGrammar.ANY_OBJECT);
        for (long seed = 0; seed < 200; seed++) {
            int budget = 3 + (int) (seed % 40);
            String out = generate(g, seed, budget);
            assertTrue(JSON.readTree(out).isObject(), out);
            assertEquals(List.of(), validator.validate(JSON.readTree(out)));
        }
    }

    /** Draws from softmax(fixed random logits) under the mask: a random-weight model's behaviour, cheaply. */
    static String generate(JsonGrammar g, long seed, int maxTokens) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] base = new float[MODEL_VOCAB];
        for (int i = 0; i < base.length; i++) {
            base[i] = (float) (r.nextDouble() * 8);
        }
        base[WorldTokenizer.END_OF_TEXT] = -4; // a model keen to stop early must still finish the value
        float[] logits = new float[MODEL_VOCAB];
        JsonCursor c = g.start();
        List<Integer> tokens = new ArrayList<>();
        for (int step = 0; step < maxTokens; step++) {
            System.arraycopy(base, 0, logits, 0, base.length);
            c.mask(logits, maxTokens - step);
            int best = -1;
            double bestScore = Double.NEGATIVE_INFINITY;
            for (int i = 0; i < logits.length; i++) {
                if (logits[i] != Float.NEGATIVE_INFINITY) {
                    double gumbel = -Math.log(-Math.log(r.nextDouble() + 1e-300));
                    if (logits[i] + gumbel > bestScore) {
                        bestScore = logits[i] + gumbel;
                        best = i;
                    }
                }
            }
            assertTrue(best >= 0, "the mask left no token at step " + step);
            c.accept(best);
            if (best == WorldTokenizer.END_OF_TEXT) {
                return WORLD.decode(tokens.stream().mapToInt(Integer::intValue).toArray());
            }
            tokens.add(best);
        }
        throw new AssertionError("no end-of-text within " + maxTokens + " tokens: "
                + WORLD.decode(tokens.stream().mapToInt(Integer::intValue).toArray()));
    }

    @Test
    void replayingEmittedTokensRestoresTheMask() {
        JsonGrammar g = JsonGrammar.compile(BOUNDED.get(0), WORLD, "response_format");
        int[] emitted = WORLD.encode("{\"name\":\"Ann\", \"age\":4");
        JsonCursor live = g.start();
        for (int t : emitted) {
            live.accept(t);
        }
        JsonCursor resumed = JsonCursor.replay(g, emitted);
        float[] a = new float[MODEL_VOCAB];
        float[] b = new float[MODEL_VOCAB];
        live.mask(a, 100);
        resumed.mask(b, 100);
        assertArrayEquals(a, b);
        assertTrue(a[WORLD.encode("2")[0]] == 0, "a digit may follow");
        assertTrue(a[WORLD.encode("}")[0]] < 0, "'}' is masked: admin and tags are required");
        assertThrows(IllegalStateException.class, () -> JsonCursor.replay(g, WORLD.encode("{\"nope\"")));
    }

    @Test
    void masksKeepOnlyTokensThatCanComplete() {
        JsonGrammar g = JsonGrammar.compile("{\"enum\":[\"yes\",\"no\"]}", WORLD, "response_format");
        float[] logits = new float[MODEL_VOCAB];
        JsonCursor c = g.start();
        c.mask(logits, 10);
        for (int id = 0; id < MODEL_VOCAB; id++) {
            boolean allowed = logits[id] == 0;
            boolean prefix = id != 0
                    && id < WORLD.vocabSize()
                    && WORLD.isToken(id)
                    && ("\"yes\"".startsWith(WORLD.decode(new int[] {id}))
                            || "\"no\"".startsWith(WORLD.decode(new int[] {id})));
            assertEquals(prefix, allowed, "token " + id);
        }
        assertFalse(g.matches("\"maybe\""));
        assertTrue(g.matches("\"no\""));
    }

    @Test
    void theBudgetForcesTheShortestCompletion() {
        JsonGrammar g = JsonGrammar.compile(BOUNDED.get(3), WORLD, "response_format");
        assertEquals(3, g.minTokens()); // "{}" + end
        float[] logits = new float[MODEL_VOCAB];
        g.start().mask(logits, 3);
        int open = WORLD.encode("{")[0];
        int both = WORLD.encode("{}")[0];
        assertEquals(0, logits[open]);
        assertEquals(0, logits[both]);
        assertEquals(Float.NEGATIVE_INFINITY, logits[WORLD.encode("{\"")[0]], "no room for a member");
    }

    @ParameterizedTest
    @ValueSource(
            strings = {
                "{\"type\":\"string\",\"pattern\":\"a+\"}|pattern",
                "{\"oneOf\":[{\"type\":\"string\"}]}|oneOf",
                "{\"type\":\"string\",\"format\":\"email\"}|format",
                "{\"type\":\"integer\",\"format\":\"date\"}|format 'date'",
                "{\"$defs\":{\"n\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/n\"}}},\"$ref\":\"#/$defs/n\"}|recursive",
                "{\"type\":\"number\",\"minimum\":0.5}|0.5",
                "{\"type\":\"number\",\"exclusiveMinimum\":0}|exclusiveMinimum",
                "{\"type\":\"integer\",\"multipleOf\":2}|multipleOf",
                "{\"type\":\"tuple\"}|tuple",
                "{\"type\":\"object\",\"properties\":{\"a\":{}},\"required\":[\"b\"]}|required",
                "{\"$ref\":\"https://example.com/s.json\"}|$ref",
                "{\"type\":\"string\",\"maxLength\":100000}|maxLength",
                "{not json|not valid JSON"
            })
    void unsupportedSchemasAreRefusedByName(String caseText) {
        String[] parts = caseText.split("\\|");
        var e = assertThrows(
                GoldFinchException.InvalidInput.class, () -> JsonGrammar.compile(parts[0], WORLD, "response_format"));
        assertEquals("response_format", e.field());
        assertTrue(e.getMessage().contains(parts[1]), e.getMessage());
    }

    @Test
    void anInt32FormatBoundsTheInteger() {
        JsonGrammar int32 = JsonGrammar.compile("{\"type\":\"integer\",\"format\":\"int32\"}", WORLD, "f");
        assertTrue(int32.matches("2147483647") && int32.matches("-2147483648"));
        assertFalse(int32.matches("2147483648") || int32.matches("-2147483649"));
        JsonGrammar int64 = JsonGrammar.compile("{\"type\":\"integer\",\"format\":\"int64\"}", WORLD, "f");
        assertTrue(int64.matches("2147483648"));
    }

    @Test
    void grammarsAreCachedBySchemaText() {
        JsonGrammars cache = new JsonGrammars(WORLD, 2);
        JsonGrammar a = cache.get(BOUNDED.get(0), "f");
        assertTrue(a == cache.get(BOUNDED.get(0), "f"));
        cache.get(BOUNDED.get(1), "f");
        cache.get(BOUNDED.get(2), "f");
        assertFalse(a == cache.get(BOUNDED.get(0), "f"), "evicted past capacity");
    }

    /** Not an assertion of speed: prints what a masked step costs, for BENCHMARKS.md. */
    @Test
    void measuresMaskCost() {
        JsonGrammar g = JsonGrammar.compile(BOUNDED.get(0), WORLD, "response_format");
        long t0 = System.nanoTime();
        String warm = generate(g, 1, (int) g.maxTokens());
        long cold = System.nanoTime() - t0;
        float[] logits = new float[MODEL_VOCAB];
        int[] tokens = WORLD.encode(warm);
        int steps = 0;
        long t1 = System.nanoTime();
        for (int round = 0; round < 20; round++) {
            JsonCursor c = g.start();
            for (int t : tokens) {
                c.mask(logits, 1000);
                c.accept(t);
                steps++;
            }
        }
        long perStep = (System.nanoTime() - t1) / steps;
        System.out.printf(
                "mask cost: %d automaton states; first sequence %.1f ms (masks computed); cached %.1f us/token%n",
                g.automatonStates(), cold / 1e6, perStep / 1e3);
        assertTrue(Arrays.stream(tokens).allMatch(t -> t > 0));
    }

    @Test
    void anOptionalConstraintIsFreeTextUntilItsPrefixOpensIt() {
        String schema = "{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
                + "\"name\":{\"const\":\"get_weather\"},\"arguments\":{\"type\":\"object\",\"properties\":"
                + "{\"city\":{\"type\":\"string\",\"maxLength\":8}},\"required\":[\"city\"],"
                + "\"additionalProperties\":false}},\"required\":[\"name\",\"arguments\"],"
                + "\"additionalProperties\":false},\"minItems\":1,\"maxItems\":2}";
        String prefix = " <tool_call>";
        JsonGrammar g = JsonGrammar.compile(new JsonGrammar.Spec(schema, prefix, true), WORLD, "tools");
        assertTrue(g.matches(" Hello there"));
        assertTrue(g.matches(""));
        assertTrue(g.matches(" <tool")); // a proper prefix of the opener is still text
        assertTrue(g.matches(prefix + "[{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Oslo\"}}]"));
        assertFalse(g.matches(prefix + "[]"));
        assertFalse(g.matches(prefix + " sunny"));

        float[] logits = new float[MODEL_VOCAB];
        Arrays.fill(logits, 1f);
        JsonCursor free = g.start();
        for (int t : WORLD.encode(" Hi")) {
            free.accept(t);
        }
        free.mask(logits, 2);
        for (float l : logits) {
            assertEquals(1f, l, "free text is not masked, even at the budget's end");
        }
        Schema validator = SCHEMAS.getSchema(schema);
        int opened = 0;
        for (long seed = 0; seed < 200; seed++) {
            SplittableRandom r = new SplittableRandom(seed);
            float[] base = new float[MODEL_VOCAB];
            for (int i = 0; i < base.length; i++) {
                base[i] = (float) (r.nextDouble() * 8);
            }
            int[] opener = WORLD.encode(prefix);
            JsonCursor c = g.start();
            List<Integer> tokens = new ArrayList<>();
            int max = 72; // the shortest call is 48 bytes after the opener: a call needs room to open
            for (int step = 0; step < max; step++) {
                System.arraycopy(base, 0, logits, 0, base.length);
                if (seed % 2 == 0 && step < opener.length) {
                    logits[opener[step]] = 40; // this "model" opens a call
                }
                c.mask(logits, max - step);
                int best = 0;
                double bestScore = Double.NEGATIVE_INFINITY;
                for (int i = 0; i < logits.length; i++) {
                    if (logits[i] != Float.NEGATIVE_INFINITY && IN_VOCABULARY[i]) {
                        double score = logits[i] - Math.log(-Math.log(r.nextDouble() + 1e-300));
                        if (score > bestScore) {
                            bestScore = score;
                            best = i;
                        }
                    }
                }
                c.accept(best);
                if (best == 0) {
                    break;
                }
                tokens.add(best);
            }
            String out =
                    WORLD.decode(tokens.stream().mapToInt(Integer::intValue).toArray());
            if (out.startsWith(prefix)) {
                opened++;
                assertTrue(c.complete(), out);
                JsonNode calls = JSON.readTree(out.substring(prefix.length()));
                assertEquals(List.of(), validator.validate(calls), out);
            } else {
                assertFalse(out.startsWith(prefix));
            }
        }
        assertEquals(100, opened, "every seed that opened a call");
    }
}
