package dev.goldfinch.gateway;

import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.constrain.JsonGrammar;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * OpenAI's {@code response_format}, {@code tools}, {@code tool_choice} and {@code parallel_tool_calls} as a
 * {@link JsonGrammar.Spec} for constrained decoding, and the generated tool calls back as OpenAI's
 * {@code tool_calls}. A tool call is generated as {@link PromptBuilder#TOOL_CALL_PREFIX} and a JSON array of
 * {@code {"name", "arguments"}}: forced for {@code required} or a named function, the model's choice for
 * {@code auto} (constrained once it opens the call).
 */
final class StructuredOutputs {
    private static final Pattern FUNCTION_NAME = Pattern.compile("[A-Za-z0-9_-]{1,64}");
    private static final SecureRandom IDS = new SecureRandom();
    private static final String ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

    /**
     * What a request asks for: {@code spec} null = free text; {@code toolCalls}: outputs opening a call are
     * returned as tool calls; {@code functions}: the tool list for the prompt (compact JSON), empty without tools.
     */
    record Plan(JsonGrammar.Spec spec, boolean toolCalls, List<String> functions) {
        static final Plan FREE_TEXT = new Plan(null, false, List.of());
    }

    private StructuredOutputs() {}

    static Plan plan(JsonNode root, boolean chat, JsonMapper json) {
        JsonGrammar.Spec format = responseFormat(root.get("response_format"), json);
        JsonNode tools = root.get("tools");
        if (tools == null || tools.isNull() || (tools.isArray() && tools.isEmpty())) {
            JsonNode choice = root.get("tool_choice");
            if (choice != null
                    && !choice.isNull()
                    && !(choice.isString() && choice.asString().equals("none"))) {
                throw new GoldFinchException.InvalidInput("tool_choice", "tool_choice needs tools");
            }
            return format == null ? Plan.FREE_TEXT : new Plan(format, false, List.of());
        }
        if (!chat) {
            throw new GoldFinchException.InvalidInput("tools", "tools are for chat completions only");
        }
        if (!tools.isArray()) {
            throw new GoldFinchException.InvalidInput("tools", "tools must be an array of function definitions");
        }
        List<String> functions = new ArrayList<>();
        Map<String, JsonNode> parameters = new LinkedHashMap<>();
        for (int i = 0; i < tools.size(); i++) {
            String at = "tools[" + i + "]";
            JsonNode tool = tools.get(i);
            if (!tool.isObject() || !"function".equals(tool.path("type").asString(""))) {
                throw new GoldFinchException.InvalidInput(at + ".type", at + ".type must be \"function\"");
            }
            JsonNode function = tool.get("function");
            if (function == null || !function.isObject()) {
                throw new GoldFinchException.InvalidInput(at + ".function", at + ".function must be an object");
            }
            String name = function.path("name").asString("");
            if (!FUNCTION_NAME.matcher(name).matches()) {
                throw new GoldFinchException.InvalidInput(
                        at + ".function.name", at + ".function.name must be 1-64 of a-z, A-Z, 0-9, _ and -");
            }
            if (parameters.containsKey(name)) {
                throw new GoldFinchException.InvalidInput(at + ".function.name", "two tools are named '" + name + "'");
            }
            JsonNode params = function.get("parameters");
            if (params == null || params.isNull()) {
                params = json.readTree("{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false}");
            } else if (!params.isObject()) {
                throw new GoldFinchException.InvalidInput(
                        at + ".function.parameters", at + ".function.parameters must be a JSON Schema object");
            }
            parameters.put(name, params);
            ObjectNode listed = json.createObjectNode();
            listed.put("name", name);
            if (function.hasNonNull("description")) {
                listed.set("description", function.get("description"));
            }
            listed.set("parameters", params);
            functions.add(json.writeValueAsString(listed));
        }
        JsonNode choice = root.get("tool_choice");
        String mode;
        String named = null;
        if (choice == null || choice.isNull()) {
            mode = "auto";
        } else if (choice.isString()) {
            mode = choice.asString();
            if (!Set.of("none", "auto", "required").contains(mode)) {
                throw new GoldFinchException.InvalidInput(
                        "tool_choice", "tool_choice must be none, auto, required or {\"type\":\"function\",...}");
            }
        } else if (choice.isObject() && "function".equals(choice.path("type").asString(""))) {
            mode = "named";
            named = choice.path("function").path("name").asString("");
            if (!parameters.containsKey(named)) {
                throw new GoldFinchException.InvalidInput(
                        "tool_choice", "tool_choice names '" + named + "', which is not among the tools");
            }
        } else {
            throw new GoldFinchException.InvalidInput(
                    "tool_choice", "tool_choice must be none, auto, required or {\"type\":\"function\",...}");
        }
        if (mode.equals("none")) {
            return new Plan(format, false, functions);
        }
        // A forced call (required or named) writes no content, so response_format, which shapes content, has
        // nothing to apply to this turn (agents send it on every turn); with auto the answer may be either.
        if (format != null && mode.equals("auto")) {
            throw new GoldFinchException.InvalidInput(
                    "response_format",
                    "response_format together with tools is supported with tool_choice none, required or a"
                            + " named function, not auto");
        }
        JsonNode parallel = root.get("parallel_tool_calls");
        if (parallel != null && !parallel.isNull() && !parallel.isBoolean()) {
            throw new GoldFinchException.InvalidInput("parallel_tool_calls", "parallel_tool_calls must be a boolean");
        }
        boolean many = parallel == null || parallel.isNull() || parallel.asBoolean();
        String schema = callsSchema(parameters, named, many, json);
        return new Plan(
                new JsonGrammar.Spec(schema, PromptBuilder.TOOL_CALL_PREFIX, mode.equals("auto")), true, functions);
    }

    /** The JSON Schema of the generated array of calls; each tool's {@code $defs} move to the root, where its refs point. */
    private static String callsSchema(Map<String, JsonNode> parameters, String only, boolean many, JsonMapper json) {
        ObjectNode root = json.createObjectNode();
        ObjectNode defs = json.createObjectNode();
        ArrayNode options = json.createArrayNode();
        int i = 0;
        for (Map.Entry<String, JsonNode> e : parameters.entrySet()) {
            if (only != null && !only.equals(e.getKey())) {
                i++;
                continue;
            }
            ObjectNode params = ((ObjectNode) e.getValue()).deepCopy();
            for (String key : List.of("$defs", "definitions")) {
                JsonNode d = params.remove(key);
                if (d != null && d.isObject()) {
                    for (Map.Entry<String, JsonNode> def : d.properties()) {
                        JsonNode before = defs.get(def.getKey());
                        if (before != null && !before.equals(def.getValue())) {
                            throw new GoldFinchException.InvalidInput(
                                    "tools[" + i + "].function.parameters",
                                    "two tools define '" + def.getKey() + "' differently; rename one");
                        }
                        defs.set(def.getKey(), def.getValue());
                    }
                }
            }
            ObjectNode call = json.createObjectNode();
            call.put("type", "object");
            ObjectNode props = call.putObject("properties");
            props.putObject("name").put("const", e.getKey());
            props.set("arguments", params);
            call.putArray("required").add("name").add("arguments");
            call.put("additionalProperties", false);
            options.add(call);
            i++;
        }
        if (!defs.isEmpty()) {
            root.set("$defs", defs);
        }
        root.put("type", "array");
        root.putObject("items").set("anyOf", options);
        root.put("minItems", 1);
        if (!many) {
            root.put("maxItems", 1);
        }
        // $ref "#/definitions/x" inside a tool now resolves against the root's $defs.
        return json.writeValueAsString(root).replace("\"#/definitions/", "\"#/$defs/");
    }

    private static JsonGrammar.Spec responseFormat(JsonNode rf, JsonMapper json) {
        if (rf == null || rf.isNull()) {
            return null;
        }
        if (!rf.isObject()) {
            throw new GoldFinchException.InvalidInput("response_format", "response_format must be an object");
        }
        String type = rf.path("type").asString("");
        return switch (type) {
            case "text" -> null;
            case "json_object" -> new JsonGrammar.Spec(JsonGrammar.ANY_OBJECT, "", false);
            case "json_schema" -> {
                JsonNode js = rf.get("json_schema");
                if (js == null || !js.isObject()) {
                    throw new GoldFinchException.InvalidInput(
                            "response_format.json_schema", "response_format.json_schema must be an object");
                }
                JsonNode schema = js.get("schema");
                if (schema == null || !(schema.isObject() || schema.isBoolean())) {
                    throw new GoldFinchException.InvalidInput(
                            "response_format.json_schema.schema",
                            "response_format.json_schema.schema must be a JSON Schema object");
                }
                yield new JsonGrammar.Spec(json.writeValueAsString(schema), "", false);
            }
            default ->
                throw new GoldFinchException.InvalidInput(
                        "response_format.type", "response_format.type must be text, json_object or json_schema");
        };
    }

    /** The field a request's spec errors are reported under. */
    static String specField(Plan plan) {
        return plan.toolCalls() ? "tools" : "response_format";
    }

    /** An OpenAI {@code tool_calls} list from generated text, or null when the text is no call. */
    static List<Map<String, Object>> toolCalls(String text, JsonMapper json) {
        if (!text.startsWith(PromptBuilder.TOOL_CALL_PREFIX)) {
            return null;
        }
        JsonNode calls;
        try {
            calls = json.readTree(text.substring(PromptBuilder.TOOL_CALL_PREFIX.length()));
        } catch (JacksonException e) {
            return null; // cut short (a stop sequence): returned as the text it is
        }
        if (calls == null || !calls.isArray()) {
            return null;
        }
        List<Map<String, Object>> out = new ArrayList<>();
        Set<String> ids = new HashSet<>();
        for (JsonNode c : calls) {
            String id;
            do {
                id = callId();
            } while (!ids.add(id));
            Map<String, Object> function = new LinkedHashMap<>();
            function.put("name", c.path("name").asString(""));
            function.put("arguments", json.writeValueAsString(c.path("arguments")));
            Map<String, Object> call = new LinkedHashMap<>();
            call.put("id", id);
            call.put("type", "function");
            call.put("function", function);
            out.add(call);
        }
        return out;
    }

    /** {@code call_} and 24 random letters and digits: unique per call in practice (143 bits). */
    static String callId() {
        StringBuilder b = new StringBuilder("call_");
        for (int i = 0; i < 24; i++) {
            b.append(ID_CHARS.charAt(IDS.nextInt(ID_CHARS.length())));
        }
        return b.toString();
    }

    /**
     * The rendered calls of an assistant message's {@code tool_calls} (a JSON array of {@code {"name",
     * "arguments"}}, arguments parsed from OpenAI's JSON string), or null without calls. {@code at} names the message.
     */
    static String assistantCalls(JsonNode toolCalls, String at, JsonMapper json) {
        if (toolCalls == null || toolCalls.isNull() || (toolCalls.isArray() && toolCalls.isEmpty())) {
            return null;
        }
        if (!toolCalls.isArray()) {
            throw new GoldFinchException.InvalidInput(at + ".tool_calls", at + ".tool_calls must be an array");
        }
        ArrayNode out = json.createArrayNode();
        for (int j = 0; j < toolCalls.size(); j++) {
            String field = at + ".tool_calls[" + j + "].function";
            JsonNode f = toolCalls.get(j).path("function");
            String name = f.path("name").asString("");
            if (name.isEmpty()) {
                throw new GoldFinchException.InvalidInput(field + ".name", field + ".name is required");
            }
            JsonNode args;
            try {
                args = json.readTree(f.path("arguments").asString("{}"));
            } catch (JacksonException e) {
                throw new GoldFinchException.InvalidInput(
                        field + ".arguments", field + ".arguments must be a JSON text: " + e.getOriginalMessage());
            }
            ObjectNode call = out.addObject();
            call.put("name", name);
            call.set("arguments", args);
        }
        return json.writeValueAsString(out);
    }
}
