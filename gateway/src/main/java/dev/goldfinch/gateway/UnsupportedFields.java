package dev.goldfinch.gateway;

import dev.goldfinch.model.GoldFinchException;
import tools.jackson.databind.JsonNode;

/**
 * OpenAI request fields this server knows and cannot honour: a 400 naming the field, never a silent answer
 * without it. Fields it does not know are ignored (clients send many); fields it can ignore without changing
 * the answer ({@code user}, {@code store}, {@code metadata}, {@code service_tier}) are accepted.
 */
final class UnsupportedFields {
    private UnsupportedFields() {}

    static void check(JsonNode root, boolean chat) {
        JsonNode modalities = root.get("modalities");
        if (present(modalities)) {
            if (!modalities.isArray()) {
                throw new GoldFinchException.InvalidInput("modalities", "modalities must be an array");
            }
            for (JsonNode m : modalities) {
                if (!"text".equals(m.asString(""))) {
                    throw new GoldFinchException.InvalidInput(
                            "modalities", "only the text modality is served, not " + m);
                }
            }
        }
        refuse(root, "audio", "audio output is not served");
        refuse(root, "prediction", "predicted outputs are not served");
        refuse(root, "web_search_options", "web search is not served");
        refuse(root, "reasoning_effort", "this model does not reason in hidden tokens: reasoning_effort has no effect");
        if (chat) {
            refuse(root, "functions", "the legacy functions field is not served: use tools");
            refuse(root, "function_call", "the legacy function_call field is not served: use tool_choice");
        }
    }

    private static void refuse(JsonNode root, String field, String why) {
        if (present(root.get(field))) {
            throw new GoldFinchException.InvalidInput(field, field + ": " + why);
        }
    }

    private static boolean present(JsonNode v) {
        return v != null && !v.isNull();
    }
}
