package dev.goldfinch.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.proto.internal.v1.DecodeRequest;
import dev.goldfinch.proto.v1.FinishReason;
import dev.goldfinch.service.ErrorTable;
import io.grpc.Metadata;
import io.grpc.Status;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;

/** The OpenAI HTTP API's errors, through a real HTTP server: the parser's field errors and every status of the error table. */
class OpenAiErrorsTest {
    private static GatewayFixture mesh;

    @BeforeAll
    static void start() throws Exception {
        mesh = new GatewayFixture(
                Map.of("goldfinch.gateway.max-inflight", "1", "goldfinch.gateway.request-timeout", "2s"));
    }

    @AfterAll
    static void stop() {
        mesh.close();
    }

    @BeforeEach
    void reset() {
        mesh.reset();
    }

    private static void assertError(GatewayFixture.Reply r, int status, String type, String param, String what) {
        assertEquals(status, r.status(), what + ": " + r.body());
        JsonNode error = r.body().get("error");
        assertNotNull(error, what + ": " + r.body());
        assertEquals(type, error.get("type").asString(), what);
        assertEquals(
                param, error.get("param").isNull() ? null : error.get("param").asString(), what + ": " + r.body());
        assertTrue(
                error.get("message").isString()
                        && !error.get("message").asString().isBlank(),
                what);
        assertTrue(error.get("code").isString(), what);
    }

    @Test
    void eachBadFieldIsA400NamingItAsParam() throws Exception {
        List<Map.Entry<String, Map<String, Object>>> completions = new java.util.ArrayList<>();
        completions.add(Map.entry("prompt", GatewayFixture.body("max_tokens", 4)));
        completions.add(Map.entry("max_tokens", GatewayFixture.body("prompt", "Hello", "max_tokens", 0)));
        completions.add(Map.entry("temperature", GatewayFixture.body("prompt", "Hello", "temperature", -0.5)));
        completions.add(Map.entry("top_p", GatewayFixture.body("prompt", "Hello", "top_p", 1.5)));
        completions.add(Map.entry("n", GatewayFixture.body("prompt", "Hello", "n", 9))); // beyond max-choices
        completions.add(Map.entry("n", GatewayFixture.body("prompt", "Hello", "n", (1L << 32) + 1)));
        completions.add(Map.entry("logprobs", GatewayFixture.body("prompt", "Hello", "logprobs", (1L << 32) + 1)));
        completions.add(Map.entry("stop", GatewayFixture.body("prompt", "Hello", "stop", 5)));
        completions.add(Map.entry("stream", GatewayFixture.body("prompt", "Hello", "stream", "yes")));
        completions.add(Map.entry("top_k", GatewayFixture.body("prompt", "Hello", "top_k", -3)));
        completions.add(Map.entry("prompt[1]", GatewayFixture.body("prompt", List.of(1, 999_999))));
        for (Map.Entry<String, Map<String, Object>> c : completions) {
            GatewayFixture.Reply r = mesh.post("/v1/completions", c.getValue());
            assertError(r, 400, "invalid_request_error", c.getKey(), c.getKey());
            assertEquals("invalid_value", r.body().get("error").get("code").asString());
        }
        // Over the limits the model describes (24 prompt tokens, 16 new tokens).
        assertError(
                mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello", "max_tokens", 17)),
                400,
                "invalid_request_error",
                "max_tokens",
                "cap");
        assertError(
                mesh.post("/v1/completions", GatewayFixture.body("prompt", Collections.nCopies(25, 5))),
                400,
                "invalid_request_error",
                "prompt",
                "long");

        Map<String, Map<String, Object>> chat = new LinkedHashMap<>();
        chat.put("messages", GatewayFixture.body("messages", "Hello"));
        chat.put(
                "messages[0].role",
                GatewayFixture.body("messages", List.of(Map.of("role", "robot", "content", "Hello"))));
        chat.put(
                "messages[0].content",
                GatewayFixture.body(
                        "messages", List.of(Map.of("role", "user", "content", List.of(Map.of("type", "image_url"))))));
        chat.put(
                "max_completion_tokens",
                GatewayFixture.body(
                        "messages", List.of(Map.of("role", "user", "content", "Hi")), "max_completion_tokens", 0));
        chat.put(
                "logprobs",
                GatewayFixture.body("messages", List.of(Map.of("role", "user", "content", "Hi")), "logprobs", 3));
        for (Map.Entry<String, Map<String, Object>> c : chat.entrySet()) {
            assertError(
                    mesh.post("/v1/chat/completions", c.getValue()),
                    400,
                    "invalid_request_error",
                    c.getKey(),
                    c.getKey());
        }
        assertTrue(mesh.prefill.requests.isEmpty(), "rejected before any service was asked");
    }

    @Test
    void aBodyThatIsNotJsonOrNotUtf8IsA400WithoutParam() throws Exception {
        assertError(
                mesh.post("/v1/completions", "{\"prompt\": ".getBytes(StandardCharsets.UTF_8)),
                400,
                "invalid_request_error",
                null,
                "json");
        assertError(
                mesh.post("/v1/completions", "[1, 2]".getBytes(StandardCharsets.UTF_8)),
                400,
                "invalid_request_error",
                null,
                "array");
        byte[] latin1 = "{\"prompt\": \"caf\u00ff\"}".getBytes(StandardCharsets.ISO_8859_1);
        GatewayFixture.Reply r = mesh.post("/v1/completions", latin1);
        assertError(r, 400, "invalid_request_error", null, "utf-8");
        assertTrue(r.body().get("error").get("message").asString().contains("UTF-8"));
    }

    @Test
    void aFieldRejectedByAnotherServiceKeepsItsParam() throws Exception {
        Metadata trailers = new Metadata();
        trailers.put(ErrorTable.PARAM, "tokens[0]");
        mesh.prefill.failures.add(Status.INVALID_ARGUMENT
                .withDescription("tokens[0] = 7 is outside the vocabulary")
                .asRuntimeException(trailers));
        GatewayFixture.Reply r = mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello"));
        assertError(r, 400, "invalid_request_error", "tokens[0]", "prefill's field");
        assertEquals(
                "tokens[0] = 7 is outside the vocabulary",
                r.body().get("error").get("message").asString());
    }

    @Test
    void aFullGatewayIs429() throws Exception {
        mesh.decodeA.scripts.add(FakeDecode.thenRepeat(TestVocab.MORE, TestVocab.HELLO));
        HttpResponse<Stream<String>> held =
                mesh.stream("/v1/completions", GatewayFixture.body("prompt", "Hello", "stream", true));
        try {
            assertEquals(200, held.statusCode());
            assertError(
                    mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello")),
                    429,
                    "rate_limit_error",
                    null,
                    "full");
        } finally {
            held.body().close();
        }
        assertNotNull(mesh.decodeA.cancelled.poll(10, TimeUnit.SECONDS), "the held stream's decode was cancelled");
    }

    @Test
    void statusesFromTheDecodeReplicaMapThroughTheTable() throws Exception {
        // After the first token, each reaches the client as it came: at once, or — UNAVAILABLE, which another
        // replica can fix — once every replica has failed the same way.
        record Case(Status status, int http, String type) {}
        List<Case> cases = List.of(
                new Case(
                        Status.FAILED_PRECONDITION.withDescription("entry.model is another model"),
                        409,
                        "invalid_request_error"),
                new Case(
                        Status.RESOURCE_EXHAUSTED.withDescription("decode replica is at its limit"),
                        429,
                        "rate_limit_error"),
                new Case(Status.UNAVAILABLE.withDescription("replica shutting down"), 503, "server_error"),
                new Case(Status.INTERNAL.withDescription("internal error, id 00ff"), 500, "server_error"),
                new Case(Status.UNKNOWN.withDescription("something"), 500, "server_error"));
        for (Case c : cases) {
            mesh.reset();
            mesh.decodeA.scripts.add(FakeDecode.fail(c.status(), TestVocab.HELLO));
            mesh.decodeB.scripts.add(FakeDecode.fail(c.status()));
            GatewayFixture.Reply r = mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello"));
            assertError(r, c.http(), c.type(), null, c.status().toString());
            assertEquals(
                    c.status().getDescription(),
                    r.body().get("error").get("message").asString());
            boolean failsOver = c.status().getCode() == Status.Code.UNAVAILABLE;
            assertEquals(
                    failsOver ? 1 : 0, mesh.decodeB.requests.size(), "B resumes only what another replica can fix");
            // Both replicas were marked down by the failures: let the next round of health checks restore them.
            GatewayFixture.await(
                    () -> mesh.router().replicas().stream().allMatch(rep -> rep.healthy), "both replicas healthy");
        }
    }

    @Test
    void noHealthyReplicaIs503AndADeadlineIs504() throws Exception {
        mesh.healthA.setStatus("", io.grpc.health.v1.HealthCheckResponse.ServingStatus.NOT_SERVING);
        mesh.healthB.setStatus("", io.grpc.health.v1.HealthCheckResponse.ServingStatus.NOT_SERVING);
        GatewayFixture.await(
                () -> mesh.router().replicas().stream().noneMatch(r -> r.healthy), "both replicas unhealthy");
        GatewayFixture.Reply down = mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello"));
        assertError(down, 503, "server_error", null, "no replica");
        assertEquals("service_unavailable", down.body().get("error").get("code").asString());

        mesh.reset();
        mesh.decodeA.scripts.add(call -> Thread.sleep(5000)); // says nothing until after the 2 s deadline
        GatewayFixture.Reply late = mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello"));
        assertError(late, 504, "server_error", null, "deadline");
        assertEquals("timeout", late.body().get("error").get("code").asString());
    }

    @Test
    void aGoodRequestStillSucceeds() throws Exception {
        mesh.decodeA.scripts.add(
                FakeDecode.finish(FinishReason.FINISH_REASON_LENGTH, TestVocab.HELLO, TestVocab.WORLD));
        GatewayFixture.Reply r = mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello", "max_tokens", 2));
        assertEquals(200, r.status(), r.body().toString());
        assertEquals("Hello world", r.body().get("choices").get(0).get("text").asString());
        assertEquals(
                "length", r.body().get("choices").get(0).get("finish_reason").asString());
        DecodeRequest sent = mesh.decodeA.requests.getFirst();
        assertEquals(2, sent.getSampling().getMaxTokens());
    }
}
