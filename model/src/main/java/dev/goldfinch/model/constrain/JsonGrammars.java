package dev.goldfinch.model.constrain;

import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.tokenizer.WorldTokenizer;
import java.util.LinkedHashMap;
import java.util.Map;

/** Compiled grammars by schema text for one vocabulary, least recently used dropped first. Thread-safe. */
public final class JsonGrammars {
    private final WorldTokenizer tokenizer;
    private final int capacity;
    private final Map<JsonGrammar.Spec, JsonGrammar> byText = new LinkedHashMap<>(16, 0.75f, true);

    public JsonGrammars(WorldTokenizer tokenizer, int capacity) {
        this.tokenizer = tokenizer;
        this.capacity = capacity;
    }

    /**
     * The grammar of a request's schema, checked against its {@code maxTokens}: every output must be able to
     * complete within it. Errors name {@code schemaField} or {@code maxTokensField}.
     */
    public JsonGrammar forRequest(String schemaJson, int maxTokens, String schemaField, String maxTokensField) {
        return forRequest(new JsonGrammar.Spec(schemaJson, "", false), maxTokens, schemaField, maxTokensField);
    }

    /** As {@link #forRequest(String, int, String, String)} for a spec with a prefix or an optional constraint. */
    public JsonGrammar forRequest(JsonGrammar.Spec spec, int maxTokens, String schemaField, String maxTokensField) {
        JsonGrammar g = get(spec, schemaField);
        if (maxTokens < g.minTokens()) {
            throw new GoldFinchException.InvalidInput(
                    maxTokensField,
                    maxTokensField + " is " + maxTokens + " but the shortest output the JSON schema allows takes "
                            + g.minTokens() + " tokens");
        }
        return g;
    }

    /** The grammar of {@code schemaJson}, compiled on first use; errors name {@code field}. */
    public JsonGrammar get(String schemaJson, String field) {
        return get(new JsonGrammar.Spec(schemaJson, "", false), field);
    }

    /** The grammar of {@code spec}, compiled on first use; errors name {@code field}. */
    public JsonGrammar get(JsonGrammar.Spec spec, String field) {
        synchronized (byText) {
            JsonGrammar g = byText.get(spec);
            if (g != null) {
                return g;
            }
        }
        JsonGrammar g = JsonGrammar.compile(spec, tokenizer, field);
        synchronized (byText) {
            byText.put(spec, g);
            while (byText.size() > capacity) {
                byText.remove(byText.keySet().iterator().next());
            }
        }
        return g;
    }
}
