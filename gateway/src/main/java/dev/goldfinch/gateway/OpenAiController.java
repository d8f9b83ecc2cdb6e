package dev.goldfinch.gateway;

import dev.goldfinch.error.FailureKind;
import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.constrain.JsonGrammars;
import dev.goldfinch.model.sampling.SamplingParams;
import dev.goldfinch.proto.internal.v1.PromptLogprob;
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
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
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
    private final OpenAiLogprobs logprobs;
    private final int maxChoices;

    public OpenAiController(
            PromptBuilder prompts,
            ModelCatalog models,
            GenerationPipeline pipeline,
            JsonMapper json,
            JsonGrammars grammars,
            GatewayProperties properties) {
        this.prompts = prompts;
        this.models = models;
        this.pipeline = pipeline;
        this.json = json;
        this.grammars = grammars;
        this.logprobs = new OpenAiLogprobs(prompts.tokenizer());
        this.maxChoices = properties.maxChoices();
    }

    @PostMapping(value = "/v1/completions", consumes = MediaType.ALL_VALUE)
    public ResponseEntity<?> completions(
            @RequestBody byte[] body,
            @RequestAttribute(ApiKeys.HTTP_TENANT) String tenant,
            @RequestAttribute(name = ApiKeys.HTTP_INITIAL_STATE, required = false) String tenantInitialState,
            HttpServletResponse response)
            throws IOException {
        return handle(body, false, tenant, tenantInitialState, response);
    }

    @PostMapping(value = "/v1/chat/completions", consumes = MediaType.ALL_VALUE)
    public ResponseEntity<?> chatCompletions(
            @RequestBody byte[] body,
            @RequestAttribute(ApiKeys.HTTP_TENANT) String tenant,
            @RequestAttribute(name = ApiKeys.HTTP_INITIAL_STATE, required = false) String tenantInitialState,
            HttpServletResponse response)
            throws IOException {
        return handle(body, true, tenant, tenantInitialState, response);
    }

    /** One event of a generation, passed from the pipeline to the writing thread. */
    private sealed interface Event permits Text, Done, Failed, Prompt {}

    private record Text(int choice, String text, int[] ids, List<TokenLogprob> chosen, List<TokenLogprob> top)
            implements Event {}

    private record Done(int choice, FinishReason reason, Usage usage) implements Event {}

    private record Failed(StatusRuntimeException error) implements Event {}

    /** Events the writing thread has not taken yet, beyond which the decode stream waits (flow control). */
    static final int BUFFERED_EVENTS = 16;

    /**
     * How long a stream waits for its next event before writing an SSE comment: Tomcat learns that a client
     * hung up only when it writes, and the write is what cancels the generation.
     */
    static final Duration HANGUP_PROBE = Duration.ofSeconds(1);

    /**
     * A generation's events on their way from the pipeline to the writing thread: at most about
     * {@link #BUFFERED_EVENTS}, since the pipeline asks decode for more only while there is room.
     */
    private final class Events {
        private final BlockingQueue<Event> queue = new LinkedBlockingQueue<>();
        private boolean closed;
        private GenerationPipeline.Handle handle;

        synchronized void add(Event e) {
            if (!closed) {
                queue.add(e);
                pipeline.buffered(1);
            }
        }

        boolean ready() {
            return queue.size() < BUFFERED_EVENTS;
        }

        synchronized void started(GenerationPipeline.Handle h) {
            handle = h;
        }

        Event take() throws InterruptedException {
            return taken(queue.take());
        }

        /** The next event, or null after {@code wait}. */
        Event poll(Duration wait) throws InterruptedException {
            return taken(queue.poll(wait.toMillis(), TimeUnit.MILLISECONDS));
        }

        private Event taken(Event e) {
            if (e != null) {
                pipeline.buffered(-1);
                GenerationPipeline.Handle h;
                synchronized (this) {
                    h = handle;
                }
                if (h != null) {
                    h.onReady();
                }
            }
            return e;
        }

        /** The response is done: what still arrives is dropped. */
        synchronized void close() {
            closed = true;
            int dropped = 0;
            while (queue.poll() != null) {
                dropped++;
            }
            pipeline.buffered(-dropped);
        }
    }

    /** The next event of a stream, writing an SSE comment every {@link #HANGUP_PROBE} while none comes. */
    private static Event nextOrProbe(Events events, OutputStream out) throws IOException, InterruptedException {
        Event e;
        while ((e = events.poll(HANGUP_PROBE)) == null) {
            out.write(": waiting\n\n".getBytes(StandardCharsets.UTF_8)); // throws once the client has gone
            out.flush();
        }
        return e;
    }

    /** The prompt as the prefill scored it (echo with logprobs). */
    private record Prompt(List<PromptLogprob> scored) implements Event {}

    /** The listener of choice {@code choice}, queueing its events for the writing thread. */
    private static GenerationPipeline.Listener listener(int choice, Events events) {
        return new GenerationPipeline.Listener() {
            @Override
            public void onText(String text, int[] ids, List<TokenLogprob> chosen, List<TokenLogprob> top) {
                events.add(new Text(choice, text, ids, chosen, top));
            }

            @Override
            public void onFinish(FinishReason reason, Usage usage) {
                events.add(new Done(choice, reason, usage));
            }

            @Override
            public void onError(StatusRuntimeException error) {
                events.add(new Failed(error));
            }

            @Override
            public boolean ready() {
                return events.ready();
            }

            @Override
            public void onPromptLogprobs(List<PromptLogprob> scored) {
                if (choice == 0) {
                    events.add(new Prompt(scored));
                }
            }
        };
    }

    /** What the echo of a completion shows: the prompt's text and tokens, and their logprobs once scored. */
    private static final class Echo {
        final String text;
        final int[] tokens;
        List<PromptLogprob> scored = List.of();

        Echo(String text, int[] tokens) {
            this.text = text;
            this.tokens = tokens;
        }
    }

    /**
     * Streams are written straight to the response from this (virtual) request thread, which blocks on the
     * generation's events; nothing here runs on an event loop.
     */
    private ResponseEntity<?> handle(
            byte[] body, boolean chat, String tenant, String tenantInitialState, HttpServletResponse response)
            throws IOException {
        Request r;
        Events events = new Events();
        GenerationPipeline.Handle handle;
        Echo echo = null;
        try {
            r = parse(body, chat);
            // Auth ran in ApiKeyHttpFilter; the slot is taken before the prompt is tokenized.
            try (GenerationPipeline.Admission admitted = pipeline.admit(tenant);
                    var requestId = pipeline.identify(RequestIds.ofHttpRequest(r.id()))) {
                int[] tokens = pipeline.tokenize(r.prompt());
                models.checkPrompt(tokens, r.promptField());
                if (r.choices().echo()) {
                    echo = new Echo(prompts.tokenizer().decode(tokens), tokens);
                }
                GenerationPipeline.Job job = new GenerationPipeline.Job(
                        tokens,
                        r.params(),
                        r.wire(),
                        tenant,
                        r.salt(),
                        chat,
                        GenerationPipeline.Job.initialState(r.initialState(), tenantInitialState));
                handle = pipeline.start(admitted, job, r.choices().fanout(), i -> listener(i, events));
                events.started(handle);
            }
        } catch (RuntimeException e) {
            events.close();
            return error(GrpcErrors.toStatus(e));
        }
        try {
            return respond(r, chat, echo, events, handle, response);
        } finally {
            events.close();
        }
    }

    private ResponseEntity<?> respond(
            Request r,
            boolean chat,
            Echo echo,
            Events events,
            GenerationPipeline.Handle handle,
            HttpServletResponse response)
            throws IOException {
        Event first;
        try {
            // Errors before the first token still get their own HTTP status; a stream waits only so long before
            // it starts, to learn by writing whether its client is still there.
            first = r.stream ? events.poll(HANGUP_PROBE) : events.take();
            if (first instanceof Prompt(List<PromptLogprob> scored)) {
                echo.scored = scored;
                first = r.stream ? events.poll(HANGUP_PROBE) : events.take();
            }
        } catch (InterruptedException e) {
            handle.cancel();
            Thread.currentThread().interrupt();
            return error(ErrorTable.status(FailureKind.CANCELLED, "interrupted", null));
        }
        if (first instanceof Failed(StatusRuntimeException error)) {
            return error(error);
        }
        if (!r.stream) {
            return collect(r, echo, first, events, handle);
        }
        response.setStatus(200);
        response.setContentType(MediaType.TEXT_EVENT_STREAM_VALUE);
        response.setCharacterEncoding("UTF-8");
        response.setHeader("Cache-Control", "no-cache");
        OutputStream out = response.getOutputStream();
        {
            try {
                int choices = r.choices().n();
                // With tools (one choice only), text that may open a call is held back until it does (then the call
                // is sent whole, as delta.tool_calls) or cannot (then it is sent as content).
                List<Text> held = new ArrayList<>();
                StringBuilder heldText = new StringBuilder();
                boolean deciding = r.toolCalls();
                Event e = first;
                if (e == null && echo != null && r.choices().logprobs()) {
                    // The prompt's scores (from the prefill) come before any text: the echo needs them first.
                    e = nextOrProbe(events, out);
                    if (e instanceof Prompt(List<PromptLogprob> scored)) {
                        echo.scored = scored;
                        e = null;
                    }
                }
                int[] textOffset = new int[choices];
                int finished = 0;
                Usage total = null;
                for (int i = 0; i < choices; i++) {
                    if (chat) {
                        Map<String, Object> role = new LinkedHashMap<>();
                        role.put("role", "assistant");
                        role.put("content", "");
                        send(out, chunk(r, i, role, null, null, null));
                    } else if (echo != null) {
                        Map<String, Object> c = chunk(r, i, echo.text, null, null, null);
                        if (r.choices().logprobs()) {
                            choiceOf(c)
                                    .put(
                                            "logprobs",
                                            logprobs.completions(OpenAiLogprobs.prompt(echo.tokens, echo.scored), 0));
                        }
                        send(out, c);
                        textOffset[i] = echo.text.length();
                    }
                }
                if (e == null) {
                    e = nextOrProbe(events, out);
                }
                while (true) {
                    if (deciding && e instanceof Text t) {
                        held.add(t);
                        heldText.append(t.text());
                        String sofar = heldText.toString();
                        if (sofar.startsWith(PromptBuilder.TOOL_CALL_PREFIX)
                                || PromptBuilder.TOOL_CALL_PREFIX.startsWith(sofar)) {
                            e = nextOrProbe(events, out);
                            continue;
                        }
                        deciding = false;
                        for (Text h : held) {
                            send(out, textChunk(r, h, textOffset));
                        }
                        held.clear();
                        e = nextOrProbe(events, out);
                        continue;
                    }
                    List<Map<String, Object>> calls = e instanceof Done && deciding
                            ? StructuredOutputs.toolCalls(heldText.toString(), json)
                            : null;
                    if (e instanceof Done && deciding && calls == null) {
                        for (Text h : held) { // ended before it could open a call
                            send(out, textChunk(r, h, textOffset));
                        }
                    }
                    switch (e) {
                        case Text t -> send(out, textChunk(r, t, textOffset));
                        case Prompt p -> {}
                        case Done d -> {
                            if (calls != null) {
                                List<Map<String, Object>> indexed = new ArrayList<>();
                                for (int i = 0; i < calls.size(); i++) {
                                    Map<String, Object> c = new LinkedHashMap<>();
                                    c.put("index", i);
                                    c.putAll(calls.get(i));
                                    indexed.add(c);
                                }
                                send(out, chunk(r, d.choice(), Map.of("tool_calls", indexed), null, null, null));
                            }
                            send(
                                    out,
                                    chunk(
                                            r,
                                            d.choice(),
                                            chat ? Map.of() : "",
                                            calls != null ? "tool_calls" : finishReason(d.reason()),
                                            null,
                                            null));
                            total = sum(total, d.usage());
                            if (++finished < choices) {
                                break;
                            }
                            if (r.includeUsage) {
                                Map<String, Object> last = chunk(r, 0, null, null, null, total);
                                send(out, last);
                            }
                            out.write("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
                            out.flush();
                            return null;
                        }
                        case Failed f -> {
                            handle.cancel(); // the other choices too
                            Map<String, Object> err = ErrorTable.openAiError(f.error());
                            send(out, err);
                            out.write("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
                            out.flush();
                            return null;
                        }
                    }
                    e = nextOrProbe(events, out);
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

    /** The usage of several choices of one prompt: the prompt (and its cached part) once, completions summed. */
    private static Usage sum(Usage total, Usage one) {
        if (total == null) {
            return one;
        }
        return total.toBuilder()
                .setCompletionTokens(total.getCompletionTokens() + one.getCompletionTokens())
                .build();
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> choiceOf(Map<String, Object> chunk) {
        return ((List<Map<String, Object>>) chunk.get("choices")).getFirst();
    }

    /** A streamed piece of a choice's text, with its tokens' logprobs; moves the choice's text offset on. */
    private Map<String, Object> textChunk(Request r, Text t, int[] textOffset) {
        Map<String, Object> c = chunk(r, t.choice(), delta(r, t.text()), null, t, null);
        if (r.choices().logprobs() && !t.chosen().isEmpty()) {
            List<OpenAiLogprobs.Position> positions = positions(r, t);
            choiceOf(c)
                    .put(
                            "logprobs",
                            r.chat
                                    ? logprobs.chat(positions)
                                    : logprobs.completions(positions, textOffset[t.choice()]));
        }
        textOffset[t.choice()] += t.text().length();
        return c;
    }

    private static List<OpenAiLogprobs.Position> positions(Request r, Text t) {
        List<OpenAiLogprobs.Position> out = new ArrayList<>();
        for (TokenLogprob chosen : t.chosen()) { // one sampled token per event, its alternatives with it
            out.add(OpenAiLogprobs.sampled(chosen, t.top(), r.choices().topLogprobs()));
        }
        return out;
    }

    private Object delta(Request r, String text) {
        return r.chat ? Map.of("content", text) : text;
    }

    private void send(OutputStream out, Map<String, Object> chunk) throws IOException {
        out.write(("data: " + json.writeValueAsString(chunk) + "\n\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    private Map<String, Object> chunk(Request r, int index, Object delta, String finish, Text tokens, Usage usage) {
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
        choice.put("index", index);
        choice.put(r.chat ? "delta" : "text", delta);
        choice.put("logprobs", null);
        choice.put("finish_reason", finish);
        if (r.returnTokenIds && tokens != null) {
            choice.put("token_ids", tokens.ids());
        }
        c.put("choices", List.of(choice));
        return c;
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

    /** One choice of a non-streamed answer, gathered from its events. */
    private static final class Gathered {
        final StringBuilder text = new StringBuilder();
        final List<Integer> ids = new ArrayList<>();
        final List<OpenAiLogprobs.Position> positions = new ArrayList<>();
        /** Sum of the sampled tokens' logprobs: how best_of ranks the choices. */
        double cumulativeLogprob;

        Done done;
    }

    private ResponseEntity<?> collect(
            Request r, Echo echo, Event first, Events events, GenerationPipeline.Handle handle) {
        int sequences = r.choices().sequences();
        Gathered[] gathered = new Gathered[sequences];
        for (int i = 0; i < sequences; i++) {
            gathered[i] = new Gathered();
        }
        int finished = 0;
        Event e = first;
        try {
            while (true) {
                switch (e) {
                    case Text t -> {
                        Gathered g = gathered[t.choice()];
                        g.text.append(t.text());
                        for (int id : t.ids()) {
                            g.ids.add(id);
                        }
                        for (TokenLogprob c : t.chosen()) {
                            g.cumulativeLogprob += c.getLogprob();
                        }
                        g.positions.addAll(positions(r, t));
                    }
                    case Prompt p -> echo.scored = p.scored();
                    case Failed f -> {
                        handle.cancel(); // the other choices too
                        return error(f.error());
                    }
                    case Done d -> {
                        gathered[d.choice()].done = d;
                        if (++finished == sequences) {
                            return ResponseEntity.ok(answer(r, echo, gathered));
                        }
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

    /** The response body: the best {@code n} of the choices gathered (all of them unless best_of > n). */
    private Map<String, Object> answer(Request r, Echo echo, Gathered[] gathered) {
        List<Gathered> ranked = new ArrayList<>(List.of(gathered));
        if (r.choices().bestOf() > r.choices().n()) {
            ranked.sort(java.util.Comparator.comparingDouble((Gathered g) -> g.cumulativeLogprob)
                    .reversed());
        }
        List<Map<String, Object>> choices = new ArrayList<>();
        Usage total = null;
        for (Gathered g : gathered) {
            total = sum(total, g.done.usage()); // best_of's unreturned sequences were generated too
        }
        for (int index = 0; index < r.choices().n(); index++) {
            Gathered g = ranked.get(index);
            Map<String, Object> choice = new LinkedHashMap<>();
            choice.put("index", index);
            List<Map<String, Object>> calls =
                    r.toolCalls() ? StructuredOutputs.toolCalls(g.text.toString(), json) : null;
            Object lp = null;
            if (r.chat) {
                Map<String, Object> message = new LinkedHashMap<>();
                message.put("role", "assistant");
                message.put("content", calls != null ? null : g.text.toString());
                message.put("refusal", null); // OpenAI's shape: always present, never set here
                if (calls != null) {
                    message.put("tool_calls", calls);
                }
                choice.put("message", message);
                if (r.choices().logprobs()) {
                    lp = logprobs.chat(g.positions);
                }
            } else {
                String before = echo == null ? "" : echo.text;
                choice.put("text", before + g.text);
                if (r.choices().logprobs()) {
                    List<OpenAiLogprobs.Position> positions = new ArrayList<>();
                    if (echo != null) {
                        positions.addAll(OpenAiLogprobs.prompt(echo.tokens, echo.scored));
                    }
                    positions.addAll(g.positions);
                    lp = logprobs.completions(positions, 0);
                }
            }
            choice.put("logprobs", lp);
            choice.put("finish_reason", calls != null ? "tool_calls" : finishReason(g.done.reason()));
            if (r.returnTokenIds) {
                choice.put("token_ids", g.ids);
            }
            choices.add(choice);
        }
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("id", r.id);
        body.put("object", r.chat ? "chat.completion" : "text_completion");
        body.put("created", r.created);
        body.put("model", r.model);
        body.put("system_fingerprint", models.systemFingerprint());
        body.put("choices", choices);
        body.put("usage", usage(total));
        return body;
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
            OpenAiChoices choices,
            SamplingParams params,
            dev.goldfinch.proto.v1.SamplingParams wire,
            String salt,
            String promptField,
            java.util.function.Supplier<int[]> prompt,
            String initialState) {}

    /** A request body as a JSON object: valid UTF-8, valid JSON, an object — else a 400 saying which. */
    static JsonNode jsonObject(JsonMapper json, byte[] body) {
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
        return root;
    }

    Request parse(byte[] body, boolean chat) {
        JsonNode root = jsonObject(json, body);
        ModelInfo model = models.resolve(text(root, "model", true));
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
        boolean maxTokensZero = root.has(maxField)
                && root.get(maxField).isIntegralNumber()
                && root.get(maxField).canConvertToLong() // compared as sent: 2^64 is no zero
                && root.get(maxField).asLong() == 0;
        OpenAiChoices choices =
                OpenAiChoices.parse(root, chat, bool(root, "stream"), maxChoices, maxTokensZero ? maxField : null);
        if (choices.sequences() > 1 && plan.toolCalls()) {
            throw new GoldFinchException.InvalidInput("n", "tools are answered with one choice: n must be 1");
        }
        s.putAllLogitBias(OpenAiChoices.logitBias(root, model.getVocabSize()));
        if (maxTokensZero) {
            // Nothing is generated (echo scores the prompt); the wire keeps its default, never used.
        } else if (root.has(maxField) && !root.get(maxField).isNull()) {
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
        }
        if (choices.logprobs()) {
            s.setLogprobs(choices.topLogprobs()); // the chosen token's logprob comes with every token
        }
        dev.goldfinch.proto.v1.SamplingParams wire = chat ? PromptBuilder.withTurnStop(s.build()) : s.build();
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
                choices,
                params,
                wire,
                effectiveSalt,
                promptField,
                prompt,
                text(root, "initial_state", true));
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
