package dev.goldfinch.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.JsonValue;
import com.openai.core.http.StreamResponse;
import com.openai.errors.BadRequestException;
import com.openai.errors.NotFoundException;
import com.openai.errors.OpenAIServiceException;
import com.openai.models.FunctionDefinition;
import com.openai.models.FunctionParameters;
import com.openai.models.ResponseFormatJsonSchema;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.chat.completions.ChatCompletionFunctionTool;
import com.openai.models.chat.completions.ChatCompletionMessageToolCall;
import com.openai.models.chat.completions.ChatCompletionStreamOptions;
import com.openai.models.chat.completions.ChatCompletionTokenLogprob;
import com.openai.models.chat.completions.ChatCompletionToolChoiceOption;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionChoice;
import com.openai.models.completions.CompletionCreateParams;
import com.openai.models.completions.CompletionUsage;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import tools.jackson.databind.JsonNode;

/** The official openai-java SDK, response validation on, against a mesh this test starts. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class OpenAiJavaClientTest {
    static final Map<String, Object> PERSON = Map.of(
            "type",
            "object",
            "properties",
            Map.of(
                    "name", Map.of("type", "string", "maxLength", 10),
                    "age", Map.of("type", "integer", "minimum", 0, "maximum", 120)),
            "required",
            List.of("name", "age"),
            "additionalProperties",
            false);

    MeshLauncher mesh;
    OpenAIClient client;

    @BeforeAll
    void start() {
        mesh = MeshLauncher.start(MeshEndToEndTest.smallMesh(1, Map.of("logging.level.root", "WARN")));
        client = OpenAIOkHttpClient.builder()
                .baseUrl("http://127.0.0.1:" + mesh.httpPort("gateway") + "/v1")
                .apiKey("not-needed")
                .responseValidation(true)
                .build();
    }

    @AfterAll
    void stop() {
        if (client != null) {
            client.close();
        }
        if (mesh != null) {
            mesh.close();
        }
    }

    static ChatCompletionCreateParams.Builder ask(String question) {
        return ChatCompletionCreateParams.builder()
                .model("goldfinch")
                .addUserMessage(question)
                .seed(5)
                .maxCompletionTokens(120);
    }

    static ResponseFormatJsonSchema personFormat() {
        ResponseFormatJsonSchema.JsonSchema.Schema.Builder schema =
                ResponseFormatJsonSchema.JsonSchema.Schema.builder();
        PERSON.forEach((k, v) -> schema.putAdditionalProperty(k, JsonValue.from(v)));
        return ResponseFormatJsonSchema.builder()
                .jsonSchema(ResponseFormatJsonSchema.JsonSchema.builder()
                        .name("person")
                        .schema(schema.build())
                        .strict(true)
                        .build())
                .build();
    }

    static void assertPerson(String json) {
        JsonNode p = MeshClient.JSON.readTree(json);
        assertTrue(
                p.get("name").isString()
                        && p.get("name")
                                        .asString()
                                        .codePointCount(
                                                0, p.get("name").asString().length())
                                <= 10,
                json);
        assertTrue(
                p.get("age").isInt()
                        && p.get("age").asInt() >= 0
                        && p.get("age").asInt() <= 120,
                json);
        assertEquals(2, p.size(), json);
    }

    @Test
    void jsonSchemaResponsesStreamedAndNot() {
        ChatCompletion done = client.chat()
                .completions()
                .create(ask("Who is Ada?").responseFormat(personFormat()).build());
        assertEquals(
                ChatCompletion.Choice.FinishReason.STOP,
                done.choices().getFirst().finishReason());
        assertPerson(done.choices().getFirst().message().content().orElseThrow());

        StringBuilder text = new StringBuilder();
        try (StreamResponse<ChatCompletionChunk> s = client.chat()
                .completions()
                .createStreaming(
                        ask("Who is Ada?").responseFormat(personFormat()).build())) {
            s.stream()
                    .forEach(c -> c.choices().forEach(ch -> ch.delta().content().ifPresent(text::append)));
        }
        assertEquals(
                done.choices().getFirst().message().content().orElseThrow(), text.toString(), "same seed, same answer");
    }

    @Test
    void toolCallsStreamedAndNot() {
        FunctionParameters.Builder params = FunctionParameters.builder();
        PERSON.forEach((k, v) -> params.putAdditionalProperty(k, JsonValue.from(v)));
        ChatCompletionFunctionTool tool = ChatCompletionFunctionTool.builder()
                .function(FunctionDefinition.builder()
                        .name("save_person")
                        .description("Stores a person")
                        .parameters(params.build())
                        .build())
                .build();
        ChatCompletionCreateParams request = ask("Save Ada, 36.")
                .addTool(tool)
                .toolChoice(ChatCompletionToolChoiceOption.Auto.REQUIRED)
                .parallelToolCalls(false)
                .build();
        ChatCompletion done = client.chat().completions().create(request);
        ChatCompletion.Choice choice = done.choices().getFirst();
        assertEquals(ChatCompletion.Choice.FinishReason.TOOL_CALLS, choice.finishReason());
        List<ChatCompletionMessageToolCall> calls = choice.message().toolCalls().orElseThrow();
        assertEquals(1, calls.size());
        assertEquals("save_person", calls.getFirst().asFunction().function().name());
        assertPerson(calls.getFirst().asFunction().function().arguments());
        assertTrue(calls.getFirst().asFunction().id().startsWith("call_"));

        List<ChatCompletionChunk.Choice.Delta.ToolCall> streamed = new ArrayList<>();
        List<ChatCompletionChunk.Choice.FinishReason> finishes = new ArrayList<>();
        try (StreamResponse<ChatCompletionChunk> s = client.chat().completions().createStreaming(request)) {
            s.stream()
                    .forEach(c -> c.choices().forEach(ch -> {
                        ch.delta().toolCalls().ifPresent(streamed::addAll);
                        ch.finishReason().ifPresent(finishes::add);
                    }));
        }
        assertEquals(List.of(ChatCompletionChunk.Choice.FinishReason.TOOL_CALLS), finishes);
        assertEquals(1, streamed.size());
        assertEquals(
                "save_person",
                streamed.getFirst().function().orElseThrow().name().orElseThrow());
        assertPerson(streamed.getFirst().function().orElseThrow().arguments().orElseThrow());
    }

    /** A short chat request: a few tokens keep the class quick. */
    static ChatCompletionCreateParams.Builder brief(String question) {
        return ChatCompletionCreateParams.builder()
                .model("goldfinch")
                .addUserMessage(question)
                .seed(11)
                .maxCompletionTokens(6);
    }

    static CompletionCreateParams.Builder complete(String prompt) {
        return CompletionCreateParams.builder()
                .model("goldfinch")
                .prompt(prompt)
                .seed(11)
                .maxTokens(6);
    }

    /**
     * A streamed completion, each chunk validated whole but for one field: OpenAI streams legacy completions with
     * {@code finish_reason: null} until the last chunk, while the schema the SDK is generated from requires it
     * (openai/openai-openapi#100), so the SDK's own per-chunk validation fails on OpenAI's stream too. Sending a
     * reason early would tell clients the choice had ended; the null is checked here to be the only exception.
     */
    java.util.stream.Stream<Completion> streamCompletion(CompletionCreateParams params, List<AutoCloseable> open) {
        StreamResponse<Completion> s = client.completions()
                .withOptions(o -> o.responseValidation(false))
                .createStreaming(params);
        open.add(s);
        return s.stream()
                .peek(c -> c.toBuilder()
                        .choices(c.choices().stream()
                                .map(ch -> ch._finishReason().isNull()
                                        ? ch.toBuilder()
                                                .finishReason(CompletionChoice.FinishReason.STOP)
                                                .build()
                                        : ch)
                                .toList())
                        .build()
                        .validate());
    }

    static void closeAll(List<AutoCloseable> open) throws Exception {
        for (AutoCloseable c : open) {
            c.close();
        }
    }

    void assertFingerprint(java.util.Optional<String> fingerprint) {
        assertTrue(fingerprint.isPresent() && !fingerprint.orElseThrow().isBlank(), "system_fingerprint");
    }

    @Test
    void plainChatStreamedAndNot() {
        ChatCompletion done = client.chat().completions().create(brief("Hello").build());
        assertFingerprint(done.systemFingerprint());
        ChatCompletion.Choice choice = done.choices().getFirst();
        assertEquals(0, choice.index());
        String text = choice.message().content().orElseThrow();
        assertTrue(choice.logprobs().isEmpty(), "no logprobs unless asked");
        CompletionUsage usage = done.usage().orElseThrow();
        assertTrue(usage.promptTokens() > 0 && usage.completionTokens() > 0 && usage.completionTokens() <= 6);
        assertEquals(usage.promptTokens() + usage.completionTokens(), usage.totalTokens());

        StringBuilder streamed = new StringBuilder();
        List<ChatCompletionChunk.Choice.FinishReason> finishes = new ArrayList<>();
        List<CompletionUsage> usages = new ArrayList<>();
        try (StreamResponse<ChatCompletionChunk> s = client.chat()
                .completions()
                .createStreaming(brief("Hello")
                        .streamOptions(ChatCompletionStreamOptions.builder()
                                .includeUsage(true)
                                .build())
                        .build())) {
            s.stream().forEach(c -> {
                assertFingerprint(c.systemFingerprint());
                c.usage().ifPresent(usages::add);
                c.choices().forEach(ch -> {
                    ch.delta().content().ifPresent(streamed::append);
                    ch.finishReason().ifPresent(finishes::add);
                });
            });
        }
        assertEquals(text, streamed.toString(), "same seed, same answer");
        assertEquals(1, finishes.size());
        assertEquals(1, usages.size(), "usage once, in the last chunk");
        assertEquals(usage.promptTokens(), usages.getFirst().promptTokens());
        assertEquals(usage.completionTokens(), usages.getFirst().completionTokens());
        assertEquals(usage.totalTokens(), usages.getFirst().totalTokens());
    }

    /** Chat's logprobs: each position's token, its bytes and its alternatives, best first. */
    static void assertChatLogprobs(List<ChatCompletionTokenLogprob> content, String text, int top) {
        assertFalse(content.isEmpty());
        java.io.ByteArrayOutputStream all = new java.io.ByteArrayOutputStream();
        for (ChatCompletionTokenLogprob p : content) {
            List<Long> bytes = p.bytes().orElseThrow();
            byte[] raw = new byte[bytes.size()];
            for (int i = 0; i < raw.length; i++) {
                assertTrue(bytes.get(i) >= 0 && bytes.get(i) <= 255, p.toString());
                raw[i] = (byte) (long) bytes.get(i);
            }
            all.writeBytes(raw);
            assertEquals(new String(raw, StandardCharsets.UTF_8), p.token(), "token is its bytes as text");
            assertTrue(p.logprob() <= 0 && Double.isFinite(p.logprob()), p.toString());
            List<ChatCompletionTokenLogprob.TopLogprob> alts = p.topLogprobs();
            assertEquals(top, alts.size(), p.toString());
            for (int i = 1; i < alts.size(); i++) {
                assertTrue(alts.get(i - 1).logprob() >= alts.get(i).logprob(), "sorted: " + alts);
            }
            assertTrue(p.logprob() <= alts.getFirst().logprob() + 1e-4, "no token beats the best: " + p);
            for (ChatCompletionTokenLogprob.TopLogprob a : alts) {
                assertTrue(a.bytes().isPresent() && a.logprob() <= 0, a.toString());
            }
        }
        assertEquals(text, all.toString(StandardCharsets.UTF_8), "the tokens' bytes are the text");
    }

    @Test
    void chatLogprobsStreamedAndNot() {
        ChatCompletionCreateParams request =
                brief("Count to three").logprobs(true).topLogprobs(3).build();
        ChatCompletion done = client.chat().completions().create(request);
        ChatCompletion.Choice choice = done.choices().getFirst();
        String text = choice.message().content().orElseThrow();
        List<ChatCompletionTokenLogprob> content =
                choice.logprobs().orElseThrow().content().orElseThrow();
        assertChatLogprobs(content, text, 3);
        assertEquals(done.usage().orElseThrow().completionTokens(), content.size(), "one position per token");

        List<ChatCompletionTokenLogprob> streamed = new ArrayList<>();
        StringBuilder streamedText = new StringBuilder();
        try (StreamResponse<ChatCompletionChunk> s = client.chat().completions().createStreaming(request)) {
            s.stream()
                    .forEach(c -> c.choices().forEach(ch -> {
                        ch.delta().content().ifPresent(streamedText::append);
                        ch.logprobs().flatMap(l -> l.content()).ifPresent(streamed::addAll);
                    }));
        }
        assertEquals(text, streamedText.toString());
        assertChatLogprobs(streamed, text, 3);
        assertEquals(
                content.stream().map(ChatCompletionTokenLogprob::token).toList(),
                streamed.stream().map(ChatCompletionTokenLogprob::token).toList());
        for (int i = 0; i < content.size(); i++) {
            assertEquals(content.get(i).logprob(), streamed.get(i).logprob(), 1e-3);
        }
    }

    @Test
    void plainCompletionsStreamedAndNot() throws Exception {
        Completion done =
                client.completions().create(complete("Once upon a time").build());
        assertFingerprint(done.systemFingerprint());
        CompletionChoice choice = done.choices().getFirst();
        assertEquals(0, choice.index());
        assertTrue(choice.logprobs().isEmpty(), "no logprobs unless asked");
        CompletionUsage usage = done.usage().orElseThrow();
        assertTrue(usage.completionTokens() > 0 && usage.completionTokens() <= 6);

        StringBuilder streamed = new StringBuilder();
        List<CompletionChoice.FinishReason> finishes = new ArrayList<>();
        List<AutoCloseable> open = new ArrayList<>();
        streamCompletion(complete("Once upon a time").build(), open).forEach(c -> {
            assertFingerprint(c.systemFingerprint());
            c.choices().forEach(ch -> {
                streamed.append(ch.text());
                ch._finishReason().asKnown().ifPresent(finishes::add);
            });
        });
        closeAll(open);
        assertEquals(choice.text(), streamed.toString(), "same seed, same answer");
        assertEquals(List.of(choice.finishReason()), finishes);
    }

    /** Completions' logprobs: parallel lists, each position's top alternatives a dict, offsets into the text. */
    static void assertCompletionLogprobs(CompletionChoice.Logprobs lp, String text, int scoredFrom, int top) {
        List<String> tokens = lp.tokens().orElseThrow();
        List<Double> logprobs = lp.tokenLogprobs().orElseThrow();
        List<CompletionChoice.Logprobs.TopLogprob> tops = lp.topLogprobs().orElseThrow();
        List<Long> offsets = lp.textOffset().orElseThrow();
        assertFalse(tokens.isEmpty());
        assertEquals(tokens.size(), logprobs.size());
        assertEquals(tokens.size(), tops.size());
        assertEquals(tokens.size(), offsets.size());
        assertEquals(text, String.join("", tokens), "the tokens are the text");
        long at = 0;
        for (int i = 0; i < tokens.size(); i++) {
            assertEquals(at, offsets.get(i), "text_offset " + i);
            at += tokens.get(i).length();
            if (i < scoredFrom) {
                continue;
            }
            double chosen = logprobs.get(i);
            assertTrue(chosen <= 0 && Double.isFinite(chosen), "token_logprobs " + i);
            Map<String, JsonValue> alts = tops.get(i)._additionalProperties();
            assertTrue(!alts.isEmpty() && alts.size() <= top, "top_logprobs " + i + ": " + alts);
            double best = alts.values().stream()
                    .mapToDouble(v -> ((Number) v.asNumber().orElseThrow()).doubleValue())
                    .max()
                    .orElseThrow();
            assertTrue(chosen <= best + 1e-4, "no token beats the best at " + i);
        }
    }

    @Test
    void completionLogprobsStreamedAndNot() throws Exception {
        CompletionCreateParams request = complete("The sky is").logprobs(2).build();
        Completion done = client.completions().create(request);
        CompletionChoice choice = done.choices().getFirst();
        CompletionChoice.Logprobs lp = choice.logprobs().orElseThrow();
        assertCompletionLogprobs(lp, choice.text(), 0, 2);
        assertEquals(
                done.usage().orElseThrow().completionTokens(),
                lp.tokens().orElseThrow().size());

        List<String> tokens = new ArrayList<>();
        List<Double> logprobs = new ArrayList<>();
        List<Long> offsets = new ArrayList<>();
        List<AutoCloseable> open = new ArrayList<>();
        streamCompletion(request, open)
                .forEach(c -> c.choices()
                        .forEach(ch -> ch.logprobs().ifPresent(l -> {
                            tokens.addAll(l.tokens().orElseThrow());
                            logprobs.addAll(l.tokenLogprobs().orElseThrow());
                            offsets.addAll(l.textOffset().orElseThrow());
                        })));
        closeAll(open);
        assertEquals(lp.tokens().orElseThrow(), tokens);
        assertEquals(lp.textOffset().orElseThrow(), offsets, "offsets run on across chunks");
        for (int i = 0; i < tokens.size(); i++) {
            assertEquals(lp.tokenLogprobs().orElseThrow().get(i), logprobs.get(i), 1e-3);
        }
    }

    @Test
    void echoScoresThePromptStreamedAndNot() throws Exception {
        String prompt = "Paris is the capital of France";
        CompletionCreateParams request =
                complete(prompt).echo(true).maxTokens(0).logprobs(2).build();
        Completion done = client.completions().create(request);
        CompletionChoice choice = done.choices().getFirst();
        assertEquals(prompt, choice.text());
        CompletionChoice.Logprobs lp = choice.logprobs().orElseThrow();
        assertNull(lp.tokenLogprobs().orElseThrow().getFirst(), "the first token has nothing before it");
        assertCompletionLogprobs(lp, prompt, 1, 2);
        CompletionUsage usage = done.usage().orElseThrow();
        assertEquals(0, usage.completionTokens());
        assertEquals(usage.promptTokens(), lp.tokens().orElseThrow().size(), "every prompt token scored");

        StringBuilder streamed = new StringBuilder();
        List<Double> logprobs = new ArrayList<>();
        List<AutoCloseable> open = new ArrayList<>();
        streamCompletion(request, open)
                .forEach(c -> c.choices().forEach(ch -> {
                    streamed.append(ch.text());
                    ch.logprobs()
                            .ifPresent(l -> logprobs.addAll(l.tokenLogprobs().orElseThrow()));
                }));
        closeAll(open);
        assertEquals(prompt, streamed.toString());
        assertEquals(lp.tokenLogprobs().orElseThrow().size(), logprobs.size());
        assertNull(logprobs.getFirst());
        for (int i = 1; i < logprobs.size(); i++) {
            assertEquals(lp.tokenLogprobs().orElseThrow().get(i), logprobs.get(i), 1e-3);
        }
    }

    @Test
    void twoChoicesFromOnePromptStreamedAndNot() {
        long promptTokens = client.chat()
                .completions()
                .create(brief("Name a colour").build())
                .usage()
                .orElseThrow()
                .promptTokens();
        ChatCompletionCreateParams chat =
                brief("Name a colour").n(2).logprobs(true).build();
        ChatCompletion done = client.chat().completions().create(chat);
        assertEquals(2, done.choices().size());
        Map<Long, String> texts = new TreeMap<>();
        long generated = 0;
        for (ChatCompletion.Choice c : done.choices()) {
            texts.put(c.index(), c.message().content().orElseThrow());
            generated += c.logprobs().orElseThrow().content().orElseThrow().size();
        }
        assertEquals(List.of(0L, 1L), List.copyOf(texts.keySet()));
        assertNotEquals(texts.get(0L), texts.get(1L), "each choice its own seed stream");
        CompletionUsage usage = done.usage().orElseThrow();
        assertEquals(promptTokens, usage.promptTokens(), "the prompt counted once");
        assertEquals(generated, usage.completionTokens());

        Map<Long, StringBuilder> streamed = new TreeMap<>();
        Map<Long, Integer> finishes = new TreeMap<>();
        try (StreamResponse<ChatCompletionChunk> s = client.chat().completions().createStreaming(chat)) {
            s.stream()
                    .forEach(c -> c.choices().forEach(ch -> {
                        streamed.computeIfAbsent(ch.index(), i -> new StringBuilder());
                        ch.delta().content().ifPresent(streamed.get(ch.index())::append);
                        ch.finishReason().ifPresent(f -> finishes.merge(ch.index(), 1, Integer::sum));
                    }));
        }
        assertEquals(texts.get(0L), streamed.get(0L).toString());
        assertEquals(texts.get(1L), streamed.get(1L).toString());
        assertEquals(Map.of(0L, 1, 1L, 1), finishes);

        Completion legacy = client.completions()
                .create(complete("Red, green,").n(2).logprobs(0).build());
        assertEquals(2, legacy.choices().size());
        assertEquals(
                List.of(0L, 1L),
                legacy.choices().stream().map(CompletionChoice::index).sorted().toList());
        long legacyGenerated = legacy.choices().stream()
                .mapToLong(
                        c -> c.logprobs().orElseThrow().tokens().orElseThrow().size())
                .sum();
        CompletionUsage legacyUsage = legacy.usage().orElseThrow();
        assertEquals(legacyGenerated, legacyUsage.completionTokens());
        assertEquals(
                client.completions()
                        .create(complete("Red, green,").build())
                        .usage()
                        .orElseThrow()
                        .promptTokens(),
                legacyUsage.promptTokens(),
                "the prompt counted once");
    }

    @Test
    void unknownModelIsNotFound() {
        NotFoundException chat = assertThrows(
                NotFoundException.class,
                () -> client.chat()
                        .completions()
                        .create(brief("Hello").model("no-such-model").build()));
        assertError(chat, 404, "model", "model_not_found");
        NotFoundException streamed = assertThrows(NotFoundException.class, () -> {
            try (StreamResponse<ChatCompletionChunk> s = client.chat()
                    .completions()
                    .createStreaming(brief("Hello").model("no-such-model").build())) {
                s.stream().forEach(c -> {});
            }
        });
        assertError(streamed, 404, "model", "model_not_found");
    }

    @Test
    void suffixIsBadRequest() {
        BadRequestException e = assertThrows(
                BadRequestException.class,
                () -> client.completions()
                        .create(complete("def f(").suffix("return x").build()));
        assertError(e, 400, "suffix", null);
        assertTrue(e.getMessage().contains("suffix"), e.getMessage());
    }

    static void assertError(OpenAIServiceException e, int status, String param, String code) {
        assertEquals(status, e.statusCode());
        assertEquals(java.util.Optional.of(param), e.param(), e.getMessage());
        if (code != null) {
            assertEquals(java.util.Optional.of(code), e.code(), e.getMessage());
        }
        assertTrue(e.type().isPresent(), "type");
    }
}
