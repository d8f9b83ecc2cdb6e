package dev.goldfinch.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.proto.internal.v1.DecodeRequest;
import dev.goldfinch.proto.v1.FinishReason;
import dev.goldfinch.proto.v1.GenerateRequest;
import dev.goldfinch.proto.v1.SamplingParams;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;

/** response_format, tools and tool_choice over HTTP and gRPC: what reaches decode, the prompt, the replies, the 400s. */
class StructuredOutputsTest {
    private static GatewayFixture mesh;

    static final Map<String, Object> WEATHER = Map.of(
            "type",
            "function",
            "function",
            Map.of(
                    "name",
                    "get_weather",
                    "description",
                    "Weather now",
                    "parameters",
                    Map.of(
                            "type",
                            "object",
                            "properties",
                            Map.of("city", Map.of("type", "string", "maxLength", 20)),
                            "required",
                            List.of("city"),
                            "additionalProperties",
                            false)));
    static final Map<String, Object> TIME =
            Map.of("type", "function", "function", Map.of("name", "get_time", "parameters", Map.of("type", "object")));

    @BeforeAll
    static void start() throws Exception {
        // Tool lists make long prompts: room for them (the gateway describes the model once, at start).
        mesh = new GatewayFixture(
                FakePrefill.MODEL.toBuilder()
                        .setMaxPromptTokens(4096)
                        .setMaxTokensCap(1024)
                        .build(),
                Map.of());
    }

    @AfterAll
    static void stop() {
        mesh.close();
    }

    @BeforeEach
    void reset() {
        mesh.reset();
    }

    static Map<String, Object> chat(Object... more) {
        Object[] kv = new Object[more.length + 2];
        kv[0] = "messages";
        kv[1] = List.of(Map.of("role", "user", "content", "Hi"));
        System.arraycopy(more, 0, kv, 2, more.length);
        return GatewayFixture.body(kv);
    }

    DecodeRequest sent() {
        List<DecodeRequest> all = new ArrayList<>(mesh.decodeA.requests);
        all.addAll(mesh.decodeB.requests);
        assertEquals(1, all.size());
        return all.getFirst();
    }

    /** Tokens of {@code text} in the test vocabulary (a byte each), then end-of-text. */
    static int[] bytesThenEnd(String text) {
        byte[] b = text.getBytes(StandardCharsets.UTF_8);
        int[] t = new int[b.length + 1];
        for (int i = 0; i < b.length; i++) {
            t[i] = TestVocab.ofByte(b[i]);
        }
        return t;
    }

    void script(String text) {
        FakeDecode.Script s = FakeDecode.finish(FinishReason.FINISH_REASON_END_OF_TEXT, bytesThenEnd(text));
        mesh.decodeA.scripts.add(s);
        mesh.decodeB.scripts.add(s);
    }

    @Test
    void responseFormatsReachDecodeAsASchema() throws Exception {
        Map<String, Object> schema = Map.of(
                "type", "object", "properties", Map.of("a", Map.of("type", "integer")), "required", List.of("a"));
        script("{\"a\":1}");
        var r = mesh.post(
                "/v1/chat/completions",
                chat(
                        "response_format",
                        Map.of(
                                "type",
                                "json_schema",
                                "json_schema",
                                Map.of("name", "x", "schema", schema, "strict", true))));
        assertEquals(200, r.status(), r.body().toString());
        assertEquals("{\"a\":1}", r.body().at("/choices/0/message/content").asString());
        SamplingParams s = sent().getSampling();
        assertEquals(GatewayFixture.JSON.readTree(s.getJsonSchema()), GatewayFixture.JSON.valueToTree(schema));
        assertFalse(s.hasJsonPrefix());
        assertEquals(mesh.prefill.model.getMaxTokensCap(), s.getMaxTokens(), "the chat default: the remaining context");

        mesh.reset();
        mesh.post(
                "/v1/completions",
                GatewayFixture.body("prompt", "x", "max_tokens", 8, "response_format", Map.of("type", "json_object")));
        assertEquals("{\"type\":\"object\"}", sent().getSampling().getJsonSchema());

        mesh.reset();
        mesh.post("/v1/chat/completions", chat("response_format", Map.of("type", "text")));
        assertFalse(sent().getSampling().hasJsonSchema());
    }

    @Test
    void unsupportedSchemasAndBadFormatsAre400sNamingTheField() throws Exception {
        record Case(Map<String, Object> body, String param, String says) {}
        List<Case> cases = List.of(
                new Case(
                        chat(
                                "response_format",
                                Map.of(
                                        "type",
                                        "json_schema",
                                        "json_schema",
                                        Map.of("schema", Map.of("type", "string", "pattern", "^a")))),
                        "response_format",
                        "pattern"),
                new Case(chat("response_format", Map.of("type", "xml")), "response_format.type", "json_schema"),
                new Case(
                        chat("response_format", Map.of("type", "json_schema")),
                        "response_format.json_schema",
                        "object"),
                new Case(
                        chat(
                                "response_format",
                                Map.of(
                                        "type",
                                        "json_schema",
                                        "json_schema",
                                        Map.of("schema", Map.of("const", "a long constant value"))),
                                "max_tokens",
                                3),
                        "max_tokens",
                        "shortest"),
                new Case(chat("tools", List.of(WEATHER), "tool_choice", "sometimes"), "tool_choice", "auto"),
                new Case(
                        chat(
                                "tools",
                                List.of(WEATHER),
                                "tool_choice",
                                Map.of("type", "function", "function", Map.of("name", "nope"))),
                        "tool_choice",
                        "nope"),
                new Case(chat("tool_choice", "required"), "tool_choice", "tools"),
                new Case(
                        chat("tools", List.of(Map.of("type", "function", "function", Map.of("name", "a b")))),
                        "tools[0].function.name",
                        "a-z"),
                new Case(chat("tools", List.of(WEATHER, WEATHER)), "tools[1].function.name", "two tools"),
                new Case(
                        chat(
                                "tools",
                                List.of(Map.of(
                                        "type",
                                        "function",
                                        "function",
                                        Map.of(
                                                "name",
                                                "f",
                                                "parameters",
                                                Map.of(
                                                        "type",
                                                        "object",
                                                        "properties",
                                                        Map.of("x", Map.of("oneOf", List.of()))))))),
                        "tools",
                        "oneOf"),
                new Case(
                        chat("tools", List.of(WEATHER), "response_format", Map.of("type", "json_object")),
                        "response_format",
                        "tools"),
                new Case(
                        chat("tools", List.of(WEATHER), "parallel_tool_calls", "yes"),
                        "parallel_tool_calls",
                        "boolean"),
                new Case(
                        GatewayFixture.body(
                                "messages",
                                List.of(Map.of(
                                        "role",
                                        "assistant",
                                        "tool_calls",
                                        List.of(Map.of(
                                                "id",
                                                "c",
                                                "type",
                                                "function",
                                                "function",
                                                Map.of("name", "f", "arguments", "{oops")))))),
                        "messages[0].tool_calls[0].function.arguments",
                        "JSON"));
        for (Case c : cases) {
            var r = mesh.post("/v1/chat/completions", c.body());
            assertEquals(400, r.status(), c + ": " + r.body());
            assertEquals(c.param(), r.body().at("/error/param").asString(), c + ": " + r.body());
            assertTrue(r.body().at("/error/message").asString().contains(c.says()), c + ": " + r.body());
        }
        assertTrue(mesh.decodeA.requests.isEmpty() && mesh.decodeB.requests.isEmpty(), "none reached decode");
        assertTrue(mesh.prefill.requests.isEmpty(), "none reached prefill");
    }

    @Test
    void toolChoiceSetsHowTheCallIsConstrained() throws Exception {
        mesh.post("/v1/chat/completions", chat("tools", List.of(WEATHER, TIME)));
        SamplingParams auto = sent().getSampling();
        assertEquals(PromptBuilder.TOOL_CALL_PREFIX, auto.getJsonPrefix());
        assertTrue(auto.getJsonOptional());
        JsonNode calls = GatewayFixture.JSON.readTree(auto.getJsonSchema());
        assertEquals(2, calls.at("/items/anyOf").size());
        assertTrue(calls.path("maxItems").isMissingNode(), "parallel calls by default");

        mesh.reset();
        mesh.post(
                "/v1/chat/completions",
                chat("tools", List.of(WEATHER, TIME), "tool_choice", "required", "parallel_tool_calls", false));
        SamplingParams required = sent().getSampling();
        assertFalse(required.getJsonOptional());
        assertEquals(
                1,
                GatewayFixture.JSON
                        .readTree(required.getJsonSchema())
                        .get("maxItems")
                        .asInt());

        mesh.reset();
        mesh.post(
                "/v1/chat/completions",
                chat(
                        "tools",
                        List.of(WEATHER, TIME),
                        "tool_choice",
                        Map.of("type", "function", "function", Map.of("name", "get_time"))));
        JsonNode named = GatewayFixture.JSON.readTree(sent().getSampling().getJsonSchema());
        assertEquals(1, named.at("/items/anyOf").size());
        assertEquals(
                "get_time", named.at("/items/anyOf/0/properties/name/const").asString());

        mesh.reset();
        mesh.post("/v1/chat/completions", chat("tools", List.of(WEATHER), "tool_choice", "none"));
        assertFalse(sent().getSampling().hasJsonSchema());
    }

    @Test
    void toolsAndToolMessagesAreRenderedInOneFormat() throws Exception {
        List<Map<String, Object>> messages = List.of(
                Map.of("role", "developer", "content", "Be brief."),
                Map.of("role", "user", "content", "Weather in Oslo?"),
                Map.of(
                        "role",
                        "assistant",
                        "tool_calls",
                        List.of(Map.of(
                                "id",
                                "call_1",
                                "type",
                                "function",
                                "function",
                                Map.of("name", "get_weather", "arguments", "{\"city\": \"Oslo\"}")))),
                Map.of("role", "tool", "tool_call_id", "call_1", "content", "-3 C"));
        var r = mesh.post("/v1/chat/completions", GatewayFixture.body("messages", messages, "tools", List.of(WEATHER)));
        assertEquals(200, r.status(), r.body().toString());
        List<Integer> ids = mesh.prefill.requests.getFirst().getTokensList();
        String prompt = new PromptBuilder(dev.goldfinch.model.tokenizer.WorldTokenizer.load(GatewayFixture.vocab()))
                .tokenizer()
                .decode(ids.stream().mapToInt(Integer::intValue).toArray());
        String expected = "System: "
                + PromptBuilder.toolsPrompt(
                        List.of("{\"name\":\"get_weather\",\"description\":\"Weather now\",\"parameters\":"
                                + GatewayFixture.JSON.writeValueAsString(
                                        ((Map<?, ?>) WEATHER.get("function")).get("parameters"))
                                + "}"))
                + "\n\nSystem: Be brief.\n\nUser: Weather in Oslo?\n\nAssistant: <tool_call>[{\"name\":\"get_weather\","
                + "\"arguments\":{\"city\":\"Oslo\"}}]\n\nTool: [call_1] -3 C\n\nAssistant:";
        assertEquals(expected, prompt);
    }

    @Test
    void aGeneratedCallComesBackAsToolCalls() throws Exception {
        String call = PromptBuilder.TOOL_CALL_PREFIX
                + "[{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Oslo\"}},{\"name\":\"get_time\",\"arguments\":{}}]";
        script(call);
        var r = mesh.post("/v1/chat/completions", chat("tools", List.of(WEATHER, TIME)));
        assertEquals(200, r.status(), r.body().toString());
        JsonNode choice = r.body().at("/choices/0");
        assertEquals("tool_calls", choice.get("finish_reason").asString());
        assertTrue(choice.at("/message/content").isNull());
        JsonNode calls = choice.at("/message/tool_calls");
        assertEquals(2, calls.size());
        assertEquals("get_weather", calls.at("/0/function/name").asString());
        assertEquals("{\"city\":\"Oslo\"}", calls.at("/0/function/arguments").asString());
        assertEquals("function", calls.at("/0/type").asString());
        assertTrue(calls.at("/0/id").asString().startsWith("call_"));
        assertNotEquals(calls.at("/0/id").asString(), calls.at("/1/id").asString(), "ids unique per call");

        // Streamed: the opener is held back, then the calls arrive whole in delta.tool_calls.
        mesh.reset();
        script(call);
        List<JsonNode> chunks = new ArrayList<>();
        try (var lines = mesh.stream("/v1/chat/completions", chat("tools", List.of(WEATHER, TIME), "stream", true))
                .body()) {
            lines.filter(l -> l.startsWith("data: {"))
                    .forEach(l -> chunks.add(GatewayFixture.JSON.readTree(l.substring(6))));
        }
        StringBuilder content = new StringBuilder();
        List<JsonNode> streamed = new ArrayList<>();
        String finish = null;
        for (JsonNode c : chunks) {
            JsonNode d = c.at("/choices/0/delta");
            content.append(d.path("content").asString(""));
            d.path("tool_calls").forEach(streamed::add);
            if (c.at("/choices/0/finish_reason").isString()) {
                finish = c.at("/choices/0/finish_reason").asString();
            }
        }
        assertEquals("", content.toString(), "no call text leaks as content");
        assertEquals("tool_calls", finish);
        assertEquals(2, streamed.size());
        assertEquals(1, streamed.get(1).get("index").asInt());
        assertEquals("{}", streamed.get(1).at("/function/arguments").asString());

        // Text that only starts like the opener is content, streamed and not.
        mesh.reset();
        script(" <tool_box> is not a call");
        var text = mesh.post("/v1/chat/completions", chat("tools", List.of(WEATHER)));
        assertEquals(
                " <tool_box> is not a call",
                text.body().at("/choices/0/message/content").asString());
        assertEquals("stop", text.body().at("/choices/0/finish_reason").asString());
        mesh.reset();
        script(" <tool");
        StringBuilder streamedText = new StringBuilder();
        try (var lines = mesh.stream("/v1/chat/completions", chat("tools", List.of(WEATHER), "stream", true))
                .body()) {
            lines.filter(l -> l.startsWith("data: {"))
                    .map(l -> GatewayFixture.JSON.readTree(l.substring(6)))
                    .forEach(c ->
                            streamedText.append(c.at("/choices/0/delta/content").asString("")));
        }
        assertEquals(" <tool", streamedText.toString(), "held text is sent when the output ends");
    }

    @Test
    void theGrpcApiTakesTheSchemaAndRefusesBadOnes() {
        var stub = mesh.generation();
        GenerateRequest.Builder req = GenerateRequest.newBuilder()
                .setPromptUtf8(com.google.protobuf.ByteString.copyFromUtf8("x"))
                .setSampling(SamplingParams.newBuilder()
                        .setMaxTokens(8)
                        .setJsonSchema("{\"type\":\"string\",\"format\":\"date\"}"));
        StatusRuntimeException e = org.junit.jupiter.api.Assertions.assertThrows(
                StatusRuntimeException.class, () -> stub.generate(req.build()).forEachRemaining(x -> {}));
        assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode());
        assertTrue(
                e.getStatus().getDescription().contains("format"), e.getStatus().getDescription());
        req.getSamplingBuilder().setJsonSchema("{\"type\":\"boolean\"}").setJsonOptional(true);
        e = org.junit.jupiter.api.Assertions.assertThrows(
                StatusRuntimeException.class, () -> stub.generate(req.build()).forEachRemaining(x -> {}));
        assertTrue(
                e.getStatus().getDescription().contains("json_prefix"),
                e.getStatus().getDescription());

        req.getSamplingBuilder().clearJsonOptional();
        stub.generate(req.build()).forEachRemaining(x -> {});
        assertEquals("{\"type\":\"boolean\"}", sent().getSampling().getJsonSchema());
    }
}
