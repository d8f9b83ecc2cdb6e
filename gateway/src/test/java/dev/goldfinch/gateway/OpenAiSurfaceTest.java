package dev.goldfinch.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.proto.internal.v1.DecodeRequest;
import dev.goldfinch.proto.v1.FinishReason;
import io.grpc.Status;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;

/**
 * The OpenAI surface around generation, through the real gateway over real HTTP: served-model-name aliases,
 * {@code /v1/models/{id}}, {@code system_fingerprint}, vLLM's tokenizer and version routes, the fields passed
 * on to decoding, and OpenAI's error object on every route — unknown paths and methods included.
 */
class OpenAiSurfaceTest {
    private static GatewayFixture mesh;
    private static final HttpClient HTTP = HttpClient.newHttpClient();

    @BeforeAll
    static void start() throws Exception {
        mesh = new GatewayFixture(Map.of(
                "goldfinch.gateway.served-model-names", "alpha, beta",
                "goldfinch.gateway.max-inflight", "1"));
    }

    @AfterAll
    static void stop() {
        mesh.close();
    }

    @BeforeEach
    void reset() {
        mesh.reset();
    }

    private static void assertError(GatewayFixture.Reply r, int status, String code, String param) {
        assertEquals(status, r.status(), r.body().toString());
        JsonNode error = r.body().get("error");
        assertNotNull(error, r.body().toString());
        assertEquals(code, error.get("code").asString(), r.body().toString());
        assertEquals(
                param,
                error.get("param").isNull() ? null : error.get("param").asString(),
                r.body().toString());
        assertTrue(
                error.get("type").isString() && error.get("message").isString(),
                r.body().toString());
    }

    private static HttpResponse<String> raw(String method, String path, String body) throws Exception {
        HttpRequest.Builder b = mesh.request(path);
        b.method(
                method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
        return HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    private static GatewayFixture.Reply reply(HttpResponse<String> r) {
        return new GatewayFixture.Reply(r.statusCode(), GatewayFixture.JSON.readTree(r.body()));
    }

    @Test
    void everyServedNameIsListedFoundAndUsable() throws Exception {
        GatewayFixture.Reply list = mesh.get("/v1/models", null);
        assertEquals(200, list.status());
        List<String> ids = new ArrayList<>();
        list.body().get("data").forEach(m -> ids.add(m.get("id").asString()));
        assertEquals(List.of("alpha", "beta"), ids);

        GatewayFixture.Reply beta = mesh.get("/v1/models/beta", null);
        assertEquals(200, beta.status(), beta.body().toString());
        assertEquals("beta", beta.body().get("id").asString());
        assertEquals("model", beta.body().get("object").asString());
        assertError(mesh.get("/v1/models/gpt-17", null), 404, "model_not_found", "model");
        // The model's own id is not a served name once names are given, as in vLLM.
        assertError(mesh.get("/v1/models/test-model", null), 404, "model_not_found", "model");

        for (String name : List.of("alpha", "beta")) {
            mesh.decodeA.scripts.add(FakeDecode.finish(FinishReason.FINISH_REASON_LENGTH, TestVocab.HELLO));
            GatewayFixture.Reply r = mesh.post(
                    "/v1/completions", GatewayFixture.body("prompt", "Hello", "model", name, "max_tokens", 1));
            assertEquals(200, r.status(), r.body().toString());
            assertEquals(name, r.body().get("model").asString(), "the answer names the model as asked");
        }
        mesh.decodeA.scripts.add(FakeDecode.finish(FinishReason.FINISH_REASON_LENGTH, TestVocab.HELLO));
        GatewayFixture.Reply unnamed =
                mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello", "max_tokens", 1));
        assertEquals("alpha", unnamed.body().get("model").asString(), "no model: the first served name");

        assertError(
                mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello", "model", "gpt-17")),
                404,
                "model_not_found",
                "model");
        assertError(
                mesh.post(
                        "/v1/chat/completions",
                        GatewayFixture.body(
                                "model", "gpt-17", "messages", List.of(Map.of("role", "user", "content", "Hi")))),
                404,
                "model_not_found",
                "model");
        assertTrue(mesh.prefill.requests.size() == 3, "only the three good requests reached prefill");
    }

    @Test
    void everyAnswerAndChunkCarriesTheModelFingerprint() throws Exception {
        String expected = "fp_" + FakePrefill.MODEL.getFingerprint();
        mesh.decodeA.scripts.add(FakeDecode.finish(FinishReason.FINISH_REASON_LENGTH, TestVocab.HELLO));
        GatewayFixture.Reply whole = mesh.post(
                "/v1/chat/completions",
                GatewayFixture.body("messages", List.of(Map.of("role", "user", "content", "Hi")), "max_tokens", 1));
        assertEquals(200, whole.status(), whole.body().toString());
        assertEquals(expected, whole.body().get("system_fingerprint").asString());

        mesh.decodeA.scripts.add(
                FakeDecode.finish(FinishReason.FINISH_REASON_LENGTH, TestVocab.HELLO, TestVocab.WORLD));
        HttpResponse<Stream<String>> streamed = mesh.stream(
                "/v1/completions",
                GatewayFixture.body(
                        "prompt",
                        "Hello",
                        "max_tokens",
                        2,
                        "stream",
                        true,
                        "stream_options",
                        Map.of("include_usage", true)));
        List<String> events = streamed.body()
                .filter(l -> l.startsWith("data: ") && !l.equals("data: [DONE]"))
                .toList();
        assertTrue(events.size() >= 3, events.toString());
        for (String e : events) {
            JsonNode chunk = GatewayFixture.JSON.readTree(e.substring("data: ".length()));
            assertEquals(expected, chunk.path("system_fingerprint").asString(null), e);
        }
    }

    @Test
    void tokenizeAndDetokenizeAsVllmDoes() throws Exception {
        GatewayFixture.Reply t = mesh.post("/tokenize", Map.of("model", "beta", "prompt", "Hello world"));
        assertEquals(200, t.status(), t.body().toString());
        List<Integer> tokens = new ArrayList<>();
        t.body().get("tokens").forEach(n -> tokens.add(n.asInt()));
        assertEquals(List.of(TestVocab.HELLO, TestVocab.WORLD), tokens);
        assertEquals(2, t.body().get("count").asInt());
        assertEquals(
                FakePrefill.MODEL.getMaxPromptTokens(),
                t.body().get("max_model_len").asInt());

        GatewayFixture.Reply chat =
                mesh.post("/tokenize", Map.of("messages", List.of(Map.of("role", "user", "content", "Hi"))));
        assertEquals(200, chat.status(), chat.body().toString());
        assertTrue(chat.body().get("count").asInt() > 2, "the chat template's tokens are counted");

        GatewayFixture.Reply d = mesh.post("/detokenize", Map.of("tokens", tokens));
        assertEquals(200, d.status(), d.body().toString());
        assertEquals("Hello world", d.body().get("prompt").asString());

        assertError(mesh.post("/detokenize", Map.of("tokens", List.of(1, 99_999))), 400, "invalid_value", "tokens[1]");
        assertError(mesh.post("/tokenize", Map.of("prompt", 5)), 400, "invalid_value", "prompt");
        assertError(mesh.post("/tokenize", Map.of("model", "gpt-17", "prompt", "x")), 404, "model_not_found", "model");

        GatewayFixture.Reply v = mesh.get("/version", null);
        assertEquals(200, v.status());
        assertTrue(
                v.body().get("version").asString().matches("\\d+\\.\\d+\\.\\d+.*"),
                v.body().toString());
    }

    @Test
    void seedPenaltyDecayAndTheChatDefaultReachDecoding() throws Exception {
        mesh.decodeA.scripts.add(FakeDecode.finish(FinishReason.FINISH_REASON_LENGTH, TestVocab.HELLO));
        GatewayFixture.Reply chat = mesh.post(
                "/v1/chat/completions",
                GatewayFixture.body(
                        "messages",
                        List.of(Map.of("role", "user", "content", "Hi")),
                        "seed",
                        42,
                        "penalty_decay",
                        0.996,
                        "user",
                        "someone",
                        "some_future_field",
                        Map.of("x", 1)));
        assertEquals(200, chat.status(), chat.body().toString());
        DecodeRequest sent = mesh.decodeA.requests.getFirst();
        assertEquals(42, sent.getSampling().getSeed());
        assertEquals(0.996, sent.getSampling().getPenaltyDecay(), 1e-12);
        // No max_tokens: the remaining context, which for a recurrent state is the server's cap.
        assertEquals(FakePrefill.MODEL.getMaxTokensCap(), sent.getSampling().getMaxTokens());

        mesh.reset();
        mesh.decodeA.scripts.add(FakeDecode.finish(FinishReason.FINISH_REASON_LENGTH, TestVocab.HELLO));
        GatewayFixture.Reply completion =
                mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello", "max_tokens", 1, "seed", 7));
        assertEquals(200, completion.status(), completion.body().toString());
        assertEquals(7, mesh.decodeA.requests.getFirst().getSampling().getSeed());

        assertError(
                mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello", "penalty_decay", 1.5)),
                400,
                "invalid_value",
                "penalty_decay");
    }

    @Test
    void aFieldWeKnowAndCannotHonourIsA400NamingIt() throws Exception {
        List<Map.Entry<String, Object>> cases = List.of(
                Map.entry("modalities", List.of("text", "audio")),
                Map.entry("audio", Map.of("voice", "alloy", "format", "wav")),
                Map.entry("prediction", Map.of("type", "content", "content", "x")),
                Map.entry("web_search_options", Map.of()),
                Map.entry("reasoning_effort", "high"),
                Map.entry("functions", List.of(Map.of("name", "f"))));
        for (Map.Entry<String, Object> c : cases) {
            GatewayFixture.Reply r = mesh.post(
                    "/v1/chat/completions",
                    GatewayFixture.body(
                            "messages", List.of(Map.of("role", "user", "content", "Hi")), c.getKey(), c.getValue()));
            assertError(r, 400, "invalid_value", c.getKey());
        }
        assertTrue(mesh.prefill.requests.isEmpty(), "refused before any service was asked");
    }

    @Test
    void unknownPathsAndMethodsAnswerOpenAisErrorObject() throws Exception {
        assertError(reply(raw("GET", "/v1/nothing-here", null)), 404, "not_found", null);
        assertError(reply(raw("POST", "/v1/engines/x/completions", "{}")), 404, "not_found", null);
        assertError(reply(raw("GET", "/error", null)), 404, "not_found", null);

        HttpResponse<String> wrongMethod = raw("GET", "/v1/chat/completions", null);
        assertError(reply(wrongMethod), 405, "method_not_allowed", null);
        assertEquals(List.of("POST"), wrongMethod.headers().allValues("Allow"));
        assertError(reply(raw("DELETE", "/v1/models", null)), 405, "method_not_allowed", null);
        assertFalse(raw("PUT", "/tokenize", "{}").body().contains("Whitelabel"));
    }

    @Test
    void aFullGatewayIs429WithRetryAfter() throws Exception {
        mesh.decodeA.scripts.add(FakeDecode.thenRepeat(TestVocab.MORE, TestVocab.HELLO));
        HttpResponse<Stream<String>> held =
                mesh.stream("/v1/completions", GatewayFixture.body("prompt", "Hello", "stream", true));
        try {
            assertEquals(200, held.statusCode());
            HttpResponse<String> full = raw(
                    "POST",
                    "/v1/completions",
                    GatewayFixture.JSON.writeValueAsString(GatewayFixture.body("prompt", "Hello")));
            assertError(reply(full), 429, "rate_limit_exceeded", null);
            int retryAfter =
                    Integer.parseInt(full.headers().firstValue("Retry-After").orElseThrow());
            assertTrue(retryAfter >= 1, "Retry-After " + retryAfter);
        } finally {
            held.body().close();
        }
        assertNotNull(mesh.decodeA.cancelled.poll(10, TimeUnit.SECONDS), "the held stream's decode was cancelled");
    }

    @Test
    void aServerFaultIs500WithAnIdAndNoStackTrace() throws Exception {
        // A status the table does not know, from a decode replica: a fault, shown as one.
        mesh.decodeA.scripts.add(FakeDecode.fail(Status.DATA_LOSS.withDescription("internal error, id 0badc0de")));
        mesh.decodeB.scripts.add(FakeDecode.fail(Status.DATA_LOSS.withDescription("internal error, id 0badc0de")));
        GatewayFixture.Reply r = mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello"));
        assertError(r, 500, "internal_error", null);
        String message = r.body().get("error").get("message").asString();
        assertTrue(message.matches("internal error, id [0-9a-f]+"), message);
    }
}
