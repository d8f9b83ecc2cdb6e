package dev.goldfinch.gateway;

import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.proto.v1.ModelInfo;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.springframework.http.MediaType;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RestController;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The model and tokenizer routes beside generation: OpenAI's {@code GET /v1/models} and
 * {@code GET /v1/models/{id}} (one entry per served name), and vLLM's {@code POST /tokenize},
 * {@code POST /detokenize} and {@code GET /version}. Errors are OpenAI's error object, as on every route.
 */
@RestController
public class ModelsController {
    private final ModelCatalog models;
    private final PromptBuilder prompts;
    private final JsonMapper json;
    private final String version;

    public ModelsController(ModelCatalog models, PromptBuilder prompts, JsonMapper json) {
        this.models = models;
        this.prompts = prompts;
        this.json = json;
        this.version = projectVersion();
    }

    @GetMapping("/v1/models")
    public Map<String, Object> listModels() {
        List<Map<String, Object>> data = new ArrayList<>();
        for (String name : models.names()) {
            data.add(model(models.resolve(name)));
        }
        return Map.of("object", "list", "data", data);
    }

    /** A model by one of its names; any other is 404 {@code model_not_found}. */
    @GetMapping("/v1/models/{id}")
    public Map<String, Object> getModel(@PathVariable String id) {
        // An empty id would mean "the default" to resolve; here it names nothing.
        return model(models.resolve(id.isEmpty() ? "\u0000" : id));
    }

    private static Map<String, Object> model(ModelInfo m) {
        Map<String, Object> model = new LinkedHashMap<>();
        model.put("id", m.getId());
        model.put("object", "model");
        model.put("created", 0);
        model.put("owned_by", "goldfinch");
        model.put("max_model_len", m.getMaxPromptTokens());
        return model;
    }

    /**
     * vLLM's {@code /tokenize}: {@code {model?, prompt}} or {@code {model?, messages}} (rendered as the chat
     * endpoint renders them, ending where the assistant's answer starts) to {@code {tokens, count, max_model_len}}.
     */
    @PostMapping(value = "/tokenize", consumes = MediaType.ALL_VALUE)
    public Map<String, Object> tokenize(@RequestBody byte[] body) {
        JsonNode root = OpenAiController.jsonObject(json, body);
        ModelInfo model = models.resolve(string(root, "model"));
        int[] tokens;
        JsonNode messages = root.get("messages");
        if (messages != null && !messages.isNull()) {
            if (!messages.isArray()) {
                throw new GoldFinchException.InvalidInput("messages", "messages must be an array");
            }
            List<PromptBuilder.Message> list = new ArrayList<>();
            long bytes = 0;
            for (int i = 0; i < messages.size(); i++) {
                JsonNode m = messages.get(i);
                list.add(new PromptBuilder.Message(
                        m.path("role").asString(""), OpenAiController.content(m.get("content"), i)));
                bytes += PromptBuilder.utf8Length(list.getLast().content());
            }
            prompts.checkBytes(bytes, model.getMaxPromptTokens(), "messages");
            tokens = prompts.chat(list);
        } else {
            String prompt = string(root, "prompt");
            if (prompt == null) {
                throw new GoldFinchException.InvalidInput("prompt", "prompt (a string) or messages is required");
            }
            prompts.checkBytes(PromptBuilder.utf8Length(prompt), model.getMaxPromptTokens(), "prompt");
            tokens = prompt.isEmpty() ? new int[0] : prompts.tokenizer().encode(prompt);
        }
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("count", tokens.length);
        out.put("max_model_len", model.getMaxPromptTokens());
        out.put("tokens", tokens);
        return out;
    }

    /** vLLM's {@code /detokenize}: {@code {model?, tokens}} to {@code {prompt}}. */
    @PostMapping(value = "/detokenize", consumes = MediaType.ALL_VALUE)
    public Map<String, Object> detokenize(@RequestBody byte[] body) {
        JsonNode root = OpenAiController.jsonObject(json, body);
        ModelInfo model = models.resolve(string(root, "model"));
        JsonNode given = root.get("tokens");
        if (given == null || !given.isArray()) {
            throw new GoldFinchException.InvalidInput("tokens", "tokens is required and must be an array of token ids");
        }
        int vocab = Math.min(model.getVocabSize(), prompts.tokenizer().vocabSize());
        int[] ids = new int[given.size()];
        for (int i = 0; i < ids.length; i++) {
            JsonNode t = given.get(i);
            if (!t.isIntegralNumber() || !t.canConvertToInt() || t.asInt() < 0 || t.asInt() >= vocab) {
                throw new GoldFinchException.InvalidInput(
                        "tokens[" + i + "]", "tokens[" + i + "] is not a token id in [0, " + vocab + ")");
            }
            ids[i] = t.asInt();
        }
        return Map.of("prompt", prompts.tokenizer().decode(ids));
    }

    /** vLLM's {@code /version}: the server's version. */
    @GetMapping("/version")
    public Map<String, Object> version() {
        return Map.of("version", version);
    }

    private static String string(JsonNode root, String field) {
        JsonNode v = root.get(field);
        if (v == null || v.isNull()) {
            return null;
        }
        if (!v.isString()) {
            throw new GoldFinchException.InvalidInput(field, field + " must be a string");
        }
        return v.asString();
    }

    private static String projectVersion() {
        Properties p = new Properties();
        try (InputStream in = ModelsController.class.getResourceAsStream("/goldfinch-gateway-version.properties")) {
            if (in != null) {
                p.load(in);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return p.getProperty("version", "unknown");
    }
}
