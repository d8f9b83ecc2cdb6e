package dev.goldfinch.gateway;

import dev.goldfinch.error.FailureKind;
import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.constrain.JsonGrammars;
import dev.goldfinch.model.sampling.SamplingParams;
import dev.goldfinch.proto.v1.FinishReason;
import dev.goldfinch.proto.v1.ModelInfo;
import dev.goldfinch.proto.v1.TokenLogprob;
import dev.goldfinch.proto.v1.Usage;
import dev.goldfinch.service.ErrorTable;
import dev.goldfinch.service.GrpcErrors;
import dev.goldfinch.service.SamplingMapper;
import io.grpc.StatusRuntimeException;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import org.springframework.http.MediaType;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestAttribute;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RestController;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The OpenAI-compatible HTTP API: {@code /v1/completions}, {@code /v1/chat/completions} (streaming as
 * server-sent events in OpenAI's chunk format, ending with {@code data: [DONE]}) and {@code /v1/models}.
 * Extensions, as in vLLM: {@code cache_salt}, {@code top_k}, {@code min_p}, {@code repetition_penalty},
 * {@code return_token_ids}; and {@code skip_prefix_cache} (recompute the whole prompt). Errors use OpenAI's error object with the HTTP status of the failure.
 */
@RestController
public class OpenAiController {
    private final PromptBuilder prompts;
    private final ModelCatalog models;
    private final GenerationPipeline pipeline;
    private final JsonMapper json;
    private final JsonGrammars grammars;

    public OpenAiController(
            PromptBuilder prompts,
            ModelCatalog models,
            GenerationPipeline pipeline,
            JsonMapper json,
            JsonGrammars grammars) {
        this.prompts = prompts;
        this.models = models;
        this.pipeline = pipeline;
        this.json = json;
        this.grammars = grammars;
    }

    @PostMapping(value = "/v1/completions", consumes = MediaType.ALL_VALUE)
    public ResponseEntity<?> completions(
            @RequestBody byte[] body,
            @RequestAttribute(ApiKeys.HTTP_TENANT) String tenant,
            HttpServletResponse response)
            throws IOException {
        return handle(body, false, tenant, response);
    }

    @PostMapping(value = "/v1/chat/completions", consumes = MediaType.ALL_VALUE)
    public ResponseEntity<?> chatCompletions(
            @RequestBody byte[] body,
            @RequestAttribute(ApiKeys.HTTP_TENANT) String tenant,
            HttpServletResponse response)
            throws IOException {
        return handle(body, true, tenant, response);
    }

    /** One event of a generation, passed from the pipeline to the writing thread. */
    private sealed interface Event permits Text, Done, Failed {}

    private record Text(String text, int[] ids, List<TokenLogprob> chosen, List<TokenLogprob> top) implements Event {}

    private record Done(FinishReason reason, Usage usage) implements Event {}

    private record Failed(StatusRuntimeException error) implements Event {}

    /**
     * Streams are written straight to the response from this (virtual) request thread, which blocks on the
     * generation's events; nothing here runs on an event loop.
     */
    private ResponseEntity<?> handle(byte[] body, boolean chat, String tenant, HttpServletResponse response)
            throws IOException {
        Request r;
        BlockingQueue<Event> events = new LinkedBlockingQueue<>();
        GenerationPipeline.Handle handle;
        try {
            r = parse(body, chat);
            // Auth ran in ApiKeyHttpFilter; the slot is taken before the prompt is tokenized.
            try (GenerationPipeline.Admission admitted = pipeline.admit(tenant);
                    var requestId = pipeline.identify(RequestIds.ofHttpRequest(r.id()))) {
                int[] tokens = pipeline.tokenize(r.prompt());
                models.checkPrompt(tokens, r.promptField());
                GenerationPipeline.Job job =
                        new GenerationPipeline.Job(tokens, r.params(), r.wire(), tenant, r.salt(), chat);
                handle = pipeline.start(admitted, job, new GenerationPipeline.Listener() {
                    @Override
                    public void onText(String text, int[] ids, List<TokenLogprob> chosen, List<TokenLogprob> top) {
                        events.add(new Text(text, ids, chosen, top));
                    }

                    @Override
                    public void onFinish(FinishReason reason, Usage usage) {
                        events.add(new Done(reason, usage));
                    }

                    @Override
                    public void onError(StatusRuntimeException error) {
                        events.add(new Failed(error));
                    }
                });
            }
        } catch (RuntimeException e) {
            return error(GrpcErrors.toStatus(e));
        }
        Event first;
        try {
            first = events.take(); // errors before the first token still get their own HTTP status
        } catch (InterruptedException e) {
            handle.cancel();
            Thread.currentThread().interrupt();
            return error(ErrorTable.status(FailureKind.CANCELLED, "interrupted", null));
        }
        if (first instanceof Failed(StatusRuntimeException error)) {
            return error(error);
        }
        if (!r.stream) {
            return collect(r, first, events, handle);
        }
        response.setStatus(200);
        response.setContentType(MediaType.TEXT_EVENT_STREAM_VALUE);
        response.setCharacterEncoding("UTF-8");
        response.setHeader("Cache-Control", "no-cache");
        OutputStream out = response.getOutputStream();
        {
            try {
                Event e = first;
                // With tools, text that may open a call is held back until it does (then the call is sent whole,
                // as delta.tool_calls) or cannot (then it is sent as content).
                List<Text> held = new ArrayList<>();
                StringBuilder heldText = new StringBuilder();
                boolean deciding = r.toolCalls();
                if (chat) {
                    Map<String, Object> role = new LinkedHashMap<>();
                    role.put("role", "assistant");
                    role.put("content", "");
                    send(out, chunk(r, role, null, null, null));
                }
                while (true) {
                    if (deciding && e instanceof Text t) {
                        held.add(t);
                        heldText.append(t.text());
                        String sofar = heldText.toString();
                        if (sofar.startsWith(PromptBuilder.TOOL_CALL_PREFIX)
                                || PromptBuilder.TOOL_CALL_PREFIX.startsWith(sofar)) {
                            e = events.take();
                            continue;
                        }
                        deciding = false;
                        for (Text h : held) {
                            send(out, chunk(r, delta(r, h.text()), null, h, null));
                        }
                        held.clear();
                        e = events.take();
                        continue;
                    }
                    List<Map<String, Object>> calls = e instanceof Done && deciding
                            ? StructuredOutputs.toolCalls(heldText.toString(), json)
                            : null;
                    if (e instanceof Done && deciding && calls == null) {
                        for (Text h : held) { // ended before it could open a call
                            send(out, chunk(r, delta(r, h.text()), null, h, null));
                        }
                    }
                    switch (e) {
                        case Text t -> send(out, chunk(r, delta(r, t.text()), null, t, null));
                        case Done d -> {
                            if (calls != null) {
                                List<Map<String, Object>> indexed = new ArrayList<>();
                                for (int i = 0; i < calls.size(); i++) {
                                    Map<String, Object> c = new LinkedHashMap<>();
                                    c.put("index", i);
                                    c.putAll(calls.get(i));
                                    indexed.add(c);
                                }
                                send(out, chunk(r, Map.of("tool_calls", indexed), null, null, null));
                            }
                            send(
                                    out,
                                    chunk(
                                            r,
                                            chat ? Map.of() : "",
                                            calls != null ? "tool_calls" : finishReason(d.reason()),
                                            null,
                                            null));
                            if (r.includeUsage) {
                                Map<String, Object> last = chunk(r, null, null, null, d.usage());
                                send(out, last);
                            }
                            out.write("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
                            out.flush();
                            return null;
                        }
                        case Failed f -> {
                            Map<String, Object> err = ErrorTable.openAiError(f.error());
                            send(out, err);
                            out.write("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
                            out.flush();
                            return null;
                        }
                    }
                    e = events.take();
                }
            } catch (IOException | InterruptedException ex) {
                handle.cancel(); // the client went away
                if (ex instanceof InterruptedException) {
                    Thread.currentThread().interrupt();
                }
            }
        }
        return null; // written
    }

    private Object delta(Request r, String text) {
        return r.chat ? Map.of("content", text) : text;
    }

    private void send(OutputStream out, Map<String, Object> chunk) throws IOException {
        out.write(("data: " + json.writeValueAsString(chunk) + "\n\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    private Map<String, Object> chunk(Request r, Object delta, String finish, Text tokens, Usage usage) {
        Map<String, Object> c = new LinkedHashMap<>();
        c.put("id", r.id);
        c.put("object", r.chat ? "chat.completion.chunk" : "text_completion");
        c.put("created", r.created);
        c.put("model", r.model);
        c.put("system_fingerprint", models.systemFingerprint());
        if (usage != null) {
            c.put("choices", List.of());
            c.put("usage", usage(usage));
            return c;
        }
        Map<String, Object> choice = new LinkedHashMap<>();
        choice.put("index", 0);
        choice.put(r.chat ? "delta" : "text", delta);
        choice.put(
                "logprobs",
                tokens != null && r.params().logprobs() > 0 ? logprobs(r, tokens.chosen(), tokens.top()) : null);
        choice.put("finish_reason", finish);
        if (r.returnTokenIds && tokens != null) {
            choice.put("token_ids", tokens.ids());
        }
        c.put("choices", List.of(choice));
        return c;
    }

    private Object logprobs(Request r, List<TokenLogprob> chosen, List<TokenLogprob> top) {
        List<Map<String, Object>> content = new ArrayList<>();
        for (TokenLogprob t : chosen) {
            Map<String, Object> entry = new LinkedHashMap<>();
            entry.put("token", tokenText(t.getToken()));
            entry.put("logprob", t.getLogprob());
            List<Map<String, Object>> alts = new ArrayList<>();
            for (TokenLogprob a : top) {
                alts.add(Map.of("token", tokenText(a.getToken()), "logprob", a.getLogprob()));
            }
            entry.put("top_logprobs", alts);
            content.add(entry);
        }
        return Map.of("content", content);
    }

    private String tokenText(int id) {
        return new String(prompts.tokenizer().tokenBytes(id), StandardCharsets.UTF_8);
    }

    private static Map<String, Object> usage(Usage u) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("prompt_tokens", u.getPromptTokens());
        m.put("completion_tokens", u.getCompletionTokens());
        m.put("total_tokens", u.getPromptTokens() + u.getCompletionTokens());
        m.put("prompt_tokens_details", Map.of("cached_tokens", u.getCachedTokens()));
        return m;
    }

    private static String finishReason(FinishReason r) {
        return r == FinishReason.FINISH_REASON_LENGTH ? "length" : "stop";
    }

    private ResponseEntity<?> collect(
            Request r, Event first, BlockingQueue<Event> events, GenerationPipeline.Handle handle) {
        StringBuilder text = new StringBuilder();
        List<Integer> ids = new ArrayList<>();
        List<TokenLogprob> chosen = new ArrayList<>();
        List<TokenLogprob> top = new ArrayList<>();
        Event e = first;
        try {
            while (true) {
                switch (e) {
                    case Text t -> {
                        text.append(t.text());
                        for (int id : t.ids()) {
                            ids.add(id);
                        }
                        chosen.addAll(t.chosen());
                        top.addAll(t.top());
                    }
                    case Failed f -> {
                        return error(f.error());
                    }
                    case Done d -> {
                        Map<String, Object> choice = new LinkedHashMap<>();
                        choice.put("index", 0);
                        List<Map<String, Object>> calls =
                                r.toolCalls() ? StructuredOutputs.toolCalls(text.toString(), json) : null;
                        if (r.chat) {
                            Map<String, Object> message = new LinkedHashMap<>();
                            message.put("role", "assistant");
                            message.put("content", calls != null ? null : text.toString());
                            message.put("refusal", null); // OpenAI's shape: always present, never set here
                            if (calls != null) {
                                message.put("tool_calls", calls);
                            }
                            choice.put("message", message);
                        } else {
                            choice.put("text", text.toString());
                        }
                        choice.put("logprobs", r.params().logprobs() > 0 ? logprobs(r, chosen, top) : null);
                        choice.put("finish_reason", calls != null ? "tool_calls" : finishReason(d.reason()));
                        if (r.returnTokenIds) {
                            choice.put("token_ids", ids);
                        }
                        Map<String, Object> body = new LinkedHashMap<>();
                        body.put("id", r.id);
                        body.put("object", r.chat ? "chat.completion" : "text_completion");
                        body.put("created", r.created);
                        body.put("model", r.model);
                        body.put("system_fingerprint", models.systemFingerprint());
                        body.put("choices", List.of(choice));
                        body.put("usage", usage(d.usage()));
                        return ResponseEntity.ok(body);
                    }
                }
                e = events.take();
            }
        } catch (InterruptedException ex) {
            handle.cancel();
            Thread.currentThread().interrupt();
            return error(ErrorTable.status(FailureKind.CANCELLED, "interrupted", null));
        }
    }

    /** The HTTP status and OpenAI error object of the one error table. */
    static ResponseEntity<Map<String, Object>> error(StatusRuntimeException e) {
        return HttpErrors.response(e);
    }

    /**
     * A parsed and validated HTTP request, its prompt not yet tokenized: {@code prompt} does that, once the
     * request holds a slot.
     */
    record Request(
            String id,
            long created,
            String model,
            boolean chat,
            boolean stream,
            boolean includeUsage,
            boolean returnTokenIds,
            boolean toolCalls,
            SamplingParams params,
            dev.goldfinch.proto.v1.SamplingParams wire,
            String salt,
            String promptField,
            java.util.function.Supplier<int[]> prompt) {}

    Request parse(byte[] body, boolean chat) {
        PromptBuilder.utf8(body, null);
        JsonNode root;
        try {
            root = json.readTree(body);
        } catch (JacksonException e) {
            throw new GoldFinchException.InvalidInput(
                    null, "request body is not valid JSON: " + e.getOriginalMessage());
        }
        if (root == null || !root.isObject()) {
            throw new GoldFinchException.InvalidInput(null, "request body must be a JSON object");
        }
        ModelInfo model = models.resolve(text(root, "model", true));
        long n = integer(root, "n", 1); // compared as sent: a cast would let 2^32 + 1 pass as 1
        if (n != 1) {
            throw new GoldFinchException.InvalidInput("n", "n must be 1 (one choice per request), got " + n);
        }
        UnsupportedFields.check(root, chat);
        StructuredOutputs.Plan plan = StructuredOutputs.plan(root, chat, json);
        java.util.function.Supplier<int[]> prompt;
        String promptField = chat ? "messages" : "prompt";
        if (chat) {
            JsonNode messages = root.get("messages");
            if (messages == null || !messages.isArray()) {
                throw new GoldFinchException.InvalidInput("messages", "messages is required and must be an array");
            }
            List<PromptBuilder.Message> list = new ArrayList<>();
            long bytes = 0;
            if (!plan.functions().isEmpty()) {
                list.add(new PromptBuilder.Message("system", PromptBuilder.toolsPrompt(plan.functions())));
                bytes += PromptBuilder.utf8Length(list.getLast().content());
            }
            for (int i = 0; i < messages.size(); i++) {
                JsonNode m = messages.get(i);
                String at = "messages[" + i + "]";
                JsonNode callId = m.get("tool_call_id");
                if (callId != null && !callId.isNull() && !callId.isString()) {
                    throw new GoldFinchException.InvalidInput(
                            at + ".tool_call_id", at + ".tool_call_id must be a string");
                }
                list.add(new PromptBuilder.Message(
                        m.path("role").asString(""),
                        content(m.get("content"), i),
                        callId == null || callId.isNull() ? null : callId.asString(),
                        StructuredOutputs.assistantCalls(m.get("tool_calls"), at, json)));
                bytes += PromptBuilder.utf8Length(list.getLast().content());
                if (list.getLast().toolCalls() != null) {
                    bytes += PromptBuilder.utf8Length(list.getLast().toolCalls());
                }
            }
            prompts.checkBytes(bytes, model.getMaxPromptTokens(), "messages");
            prompt = () -> prompts.chat(list);
        } else {
            JsonNode given = root.get("prompt");
            if (given == null || given.isNull()) {
                throw new GoldFinchException.InvalidInput("prompt", "prompt is required");
            }
            if (given.isArray() && given.size() == 1 && given.get(0).isString()) {
                given = given.get(0);
            }
            if (given.isString()) {
                String text = given.asString();
                prompts.checkBytes(PromptBuilder.utf8Length(text), model.getMaxPromptTokens(), "prompt");
                prompt = () -> prompts.completion(text);
            } else if (given.isArray() && !given.isEmpty() && given.get(0).isNumber()) {
                int[] tokens = new int[given.size()];
                models.checkPrompt(tokens, "prompt"); // the count, before reading ids
                for (int i = 0; i < tokens.length; i++) {
                    JsonNode t = given.get(i);
                    if (!t.canConvertToInt() || t.asInt() < 0 || t.asInt() >= model.getVocabSize()) {
                        throw new GoldFinchException.InvalidInput(
                                "prompt[" + i + "]",
                                "prompt[" + i + "] is not a token id in [0, " + model.getVocabSize() + ")");
                    }
                    tokens[i] = t.asInt();
                }
                prompt = () -> tokens;
            } else {
                throw new GoldFinchException.InvalidInput(
                        "prompt", "prompt must be a non-empty string or an array of token ids");
            }
        }
        dev.goldfinch.proto.v1.SamplingParams.Builder s = dev.goldfinch.proto.v1.SamplingParams.newBuilder();
        if (root.has("temperature") && !root.get("temperature").isNull()) {
            s.setTemperature(number(root, "temperature"));
        }
        if (root.has("top_p") && !root.get("top_p").isNull()) {
            s.setTopP(number(root, "top_p"));
        }
        if (root.has("min_p") && !root.get("min_p").isNull()) {
            s.setMinP(number(root, "min_p"));
        }
        if (root.has("presence_penalty") && !root.get("presence_penalty").isNull()) {
            s.setPresencePenalty(number(root, "presence_penalty"));
        }
        if (root.has("frequency_penalty") && !root.get("frequency_penalty").isNull()) {
            s.setFrequencyPenalty(number(root, "frequency_penalty"));
        }
        if (root.has("repetition_penalty") && !root.get("repetition_penalty").isNull()) {
            s.setRepetitionPenalty(number(root, "repetition_penalty"));
        }
        if (root.has("penalty_decay") && !root.get("penalty_decay").isNull()) {
            s.setPenaltyDecay(number(root, "penalty_decay"));
        }
        if (root.has("top_k") && !root.get("top_k").isNull()) {
            long k = integer(root, "top_k", 0);
            if (k < -1) {
                throw new GoldFinchException.InvalidInput("top_k", "top_k must be >= 0 (or -1 for off), got " + k);
            }
            s.setTopK(Math.clamp(k, 0, Integer.MAX_VALUE));
        }
        if (root.has("seed") && !root.get("seed").isNull()) {
            s.setSeed(integer(root, "seed", 0));
        }
        String maxField = chat && root.has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
        if (root.has(maxField) && !root.get(maxField).isNull()) {
            s.setMaxTokens(bounded(root, maxField, 1, model.getMaxTokensCap()));
        } else if (chat) {
            // As OpenAI's: the remaining context. A recurrent state never fills, so that is the server's cap.
            s.setMaxTokens(model.getMaxTokensCap());
        }
        if (plan.spec() != null) {
            s.setJsonSchema(plan.spec().schemaJson());
            if (!plan.spec().prefix().isEmpty()) {
                s.setJsonPrefix(plan.spec().prefix());
            }
            if (plan.spec().optional()) {
                s.setJsonOptional(true);
            }
        }
        JsonNode stop = root.get("stop");
        if (stop != null && !stop.isNull()) {
            if (stop.isString()) {
                s.addStop(stop.asString());
            } else if (stop.isArray()) {
                for (JsonNode x : stop) {
                    if (!x.isString()) {
                        throw new GoldFinchException.InvalidInput(
                                "stop", "stop must be a string or an array of strings");
                    }
                    s.addStop(x.asString());
                }
            } else {
                throw new GoldFinchException.InvalidInput("stop", "stop must be a string or an array of strings");
            }
        } else if (chat) {
            s.addStop(PromptBuilder.CHAT_STOP);
        }
        JsonNode logprobs = root.get("logprobs");
        if (logprobs != null && !logprobs.isNull()) {
            if (chat) {
                if (!logprobs.isBoolean()) {
                    throw new GoldFinchException.InvalidInput(
                            "logprobs", "logprobs must be a boolean for chat completions");
                }
                if (logprobs.asBoolean()) {
                    int top = root.has("top_logprobs")
                                    && !root.get("top_logprobs").isNull()
                            ? bounded(root, "top_logprobs", 0, SamplingParams.MAX_LOGPROBS)
                            : 0;
                    s.setLogprobs(Math.max(1, top)); // the chosen token's own logprob needs one
                }
            } else {
                s.setLogprobs(bounded(root, "logprobs", 0, SamplingParams.MAX_LOGPROBS));
            }
        }
        dev.goldfinch.proto.v1.SamplingParams wire = s.build();
        SamplingParams params = SamplingMapper.fromProto(wire, model.getMaxTokensCap());
        if (plan.spec() != null) {
            grammars.forRequest(plan.spec(), params.maxTokens(), StructuredOutputs.specField(plan), maxField);
        }
        boolean stream = bool(root, "stream");
        JsonNode options = root.get("stream_options");
        boolean includeUsage = options != null && options.path("include_usage").asBoolean(false);
        String salt = text(root, "cache_salt", true);
        String effectiveSalt =
                GenerationPipeline.effectiveSalt(salt == null ? "" : salt, bool(root, "skip_prefix_cache"));
        String id =
                (chat ? "chatcmpl-" : "cmpl-") + UUID.randomUUID().toString().replace("-", "");
        return new Request(
                id,
                System.currentTimeMillis() / 1000,
                model.getId(),
                chat,
                stream,
                includeUsage,
                bool(root, "return_token_ids"),
                plan.toolCalls(),
                params,
                wire,
                effectiveSalt,
                promptField,
                prompt);
    }

    static String content(JsonNode c, int i) {
        if (c == null || c.isNull()) {
            return "";
        }
        if (c.isString()) {
            return c.asString();
        }
        if (c.isArray()) {
            StringBuilder b = new StringBuilder();
            for (JsonNode part : c) {
                if (!"text".equals(part.path("type").asString(""))) {
                    throw new GoldFinchException.InvalidInput(
                            "messages[" + i + "].content",
                            "messages[" + i + "].content: only text parts are supported");
                }
                b.append(part.path("text").asString(""));
            }
            return b.toString();
        }
        throw new GoldFinchException.InvalidInput(
                "messages[" + i + "].content",
                "messages[" + i + "].content must be a string or an array of text parts");
    }

    private static String text(JsonNode root, String field, boolean optional) {
        JsonNode v = root.get(field);
        if (v == null || v.isNull()) {
            if (optional) {
                return null;
            }
            throw new GoldFinchException.InvalidInput(field, field + " is required");
        }
        if (!v.isString()) {
            throw new GoldFinchException.InvalidInput(field, field + " must be a string");
        }
        return v.asString();
    }

    private static double number(JsonNode root, String field) {
        JsonNode v = root.get(field);
        if (!v.isNumber()) {
            throw new GoldFinchException.InvalidInput(field, field + " must be a number");
        }
        return v.asDouble();
    }

    private static long integer(JsonNode root, String field, long otherwise) {
        JsonNode v = root.get(field);
        if (v == null || v.isNull()) {
            return otherwise;
        }
        if (!v.isIntegralNumber() || !v.canConvertToLong()) {
            throw new GoldFinchException.InvalidInput(field, field + " must be an integer");
        }
        return v.asLong();
    }

    /** An integer field within {@code [min, max]}, compared as sent (a cast would let 2^32 + 1 pass as 1). */
    private static int bounded(JsonNode root, String field, int min, int max) {
        long v = integer(root, field, min);
        if (v < min) {
            throw new GoldFinchException.InvalidInput(field, field + " must be >= " + min + ", got " + v);
        }
        if (v > max) {
            throw new GoldFinchException.InvalidInput(field, field + " must be <= " + max + ", got " + v);
        }
        return (int) v;
    }

    private static boolean bool(JsonNode root, String field) {
        JsonNode v = root.get(field);
        if (v == null || v.isNull()) {
            return false;
        }
        if (!v.isBoolean()) {
            throw new GoldFinchException.InvalidInput(field, field + " must be a boolean");
        }
        return v.asBoolean();
    }
}
