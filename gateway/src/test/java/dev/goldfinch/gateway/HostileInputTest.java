package dev.goldfinch.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.goldfinch.proto.v1.GenerateRequest;
import dev.goldfinch.proto.v1.GenerationGrpc;
import dev.goldfinch.service.Channels;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.reflection.v1.ServerReflectionGrpc;
import io.grpc.reflection.v1.ServerReflectionRequest;
import io.grpc.stub.StreamObserver;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;

/**
 * Every length and count a client sends the gateway is bounded before work is done for it: the body (413),
 * the gRPC message (RESOURCE_EXHAUSTED), the prompt's bytes before tokenizing, stop sequences, and request
 * numbers compared as sent; tokenizing waits for admission. Real HTTP and gRPC over Netty on loopback.
 */
class HostileInputTest {
    static final int BODY_LIMIT = 64 << 10;
    private static GatewayFixture mesh;

    @BeforeAll
    static void start() throws Exception {
        mesh = new GatewayFixture(Map.of(
                "goldfinch.gateway.max-inflight", "1",
                "goldfinch.gateway.max-request-body", BODY_LIMIT + "B",
                "spring.grpc.server.max-inbound-message-size", BODY_LIMIT + "B"));
    }

    @AfterAll
    static void stop() {
        mesh.close();
    }

    @BeforeEach
    void reset() {
        mesh.reset();
    }

    private static void assertError(GatewayFixture.Reply r, int status, String code, String param, String what) {
        assertEquals(status, r.status(), what + ": " + r.body());
        JsonNode error = r.body().get("error");
        assertNotNull(error, what + ": " + r.body());
        assertEquals(code, error.get("code").asString(), what);
        assertEquals(
                param, error.get("param").isNull() ? null : error.get("param").asString(), what + ": " + r.body());
        assertTrue(error.get("message").asString().length() > 10, what);
        assertTrue(error.get("type").isString(), what);
    }

    private static byte[] json(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void aBodyOverTheLimitIs413WithOpenAisErrorObjectAnnouncedOrChunked() throws Exception {
        String prompt = "a".repeat(BODY_LIMIT);
        byte[] big = json("{\"prompt\": \"" + prompt + "\"}");
        assertError(mesh.post("/v1/completions", big), 413, "request_too_large", null, "Content-Length");
        assertError(mesh.postChunked("/v1/completions", big), 413, "request_too_large", null, "chunked");
        assertError(mesh.postChunked("/v1/chat/completions", big), 413, "request_too_large", null, "chat");
        assertTrue(mesh.prefill.requests.isEmpty(), "nothing was asked of prefill");
        // Just under the limit the body is read and parsed: what is wrong with it now is the prompt.
        byte[] under = json("{\"prompt\": \"" + "a".repeat(BODY_LIMIT - 100) + "\"}");
        assertError(mesh.postChunked("/v1/completions", under), 400, "invalid_value", "prompt", "under, chunked");
        assertError(mesh.post("/v1/completions", under), 400, "invalid_value", "prompt", "under");
    }

    @Test
    void aGrpcMessageOverTheServersLimitIsResourceExhaustedOverNetty() {
        ManagedChannel channel = Channels.open("127.0.0.1:" + mesh.nettyGrpcPort());
        try {
            GenerateRequest big = GenerateRequest.newBuilder()
                    .setPromptUtf8(ByteString.copyFrom(new byte[BODY_LIMIT + 1]))
                    .build();
            StatusRuntimeException e = assertThrows(
                    StatusRuntimeException.class,
                    () -> GenerationGrpc.newBlockingStub(channel)
                            .withDeadlineAfter(10, TimeUnit.SECONDS)
                            .generate(big)
                            .hasNext());
            assertEquals(
                    Status.Code.RESOURCE_EXHAUSTED,
                    e.getStatus().getCode(),
                    e.getStatus().toString());
            assertTrue(mesh.prefill.requests.isEmpty());
        } finally {
            Channels.close(channel);
        }
    }

    @Test
    void grpcReflectionIsOffUnlessEnabled() throws Exception {
        ManagedChannel channel = Channels.open("127.0.0.1:" + mesh.nettyGrpcPort());
        try {
            CompletableFuture<Status> closed = new CompletableFuture<>();
            StreamObserver<ServerReflectionRequest> requests = ServerReflectionGrpc.newStub(channel)
                    .serverReflectionInfo(new StreamObserver<>() {
                        @Override
                        public void onNext(io.grpc.reflection.v1.ServerReflectionResponse value) {
                            closed.complete(Status.OK);
                        }

                        @Override
                        public void onError(Throwable t) {
                            closed.complete(Status.fromThrowable(t));
                        }

                        @Override
                        public void onCompleted() {
                            closed.complete(Status.OK);
                        }
                    });
            requests.onNext(
                    ServerReflectionRequest.newBuilder().setListServices("*").build());
            requests.onCompleted();
            assertEquals(
                    Status.Code.UNIMPLEMENTED, closed.get(10, TimeUnit.SECONDS).getCode());
        } finally {
            Channels.close(channel);
        }
    }

    @Test
    void thePromptIsBoundedInBytesBeforeTokenizing() throws Exception {
        // 24 prompt tokens of at most 9 bytes (the test vocabulary's longest): 216 bytes can fit, 217 cannot.
        String over = "x".repeat(24 * 9 + 1);
        GatewayFixture.Reply r = mesh.post("/v1/completions", GatewayFixture.body("prompt", over));
        assertError(r, 400, "invalid_value", "prompt", "completion");
        assertTrue(
                r.body().get("error").get("message").asString().contains("bytes"),
                r.body().toString());
        assertError(
                mesh.post(
                        "/v1/chat/completions",
                        GatewayFixture.body(
                                "messages",
                                List.of(
                                        Map.of("role", "system", "content", over.substring(100)),
                                        Map.of("role", "user", "content", over.substring(0, 100))))),
                400,
                "invalid_value",
                "messages",
                "chat");
        StatusRuntimeException e = assertThrows(
                StatusRuntimeException.class,
                () -> mesh.generation()
                        .generate(GenerateRequest.newBuilder()
                                .setPromptUtf8(ByteString.copyFromUtf8(over))
                                .build())
                        .hasNext());
        assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode());
        assertTrue(
                e.getStatus().getDescription().contains("bytes"), e.getStatus().getDescription());
        assertTrue(mesh.prefill.requests.isEmpty());
    }

    @Test
    void stopSequencesAreBoundedInCountAndLength() throws Exception {
        assertError(
                mesh.post(
                        "/v1/completions",
                        GatewayFixture.body("prompt", "Hello", "stop", Collections.nCopies(17, "x"))),
                400,
                "invalid_value",
                "stop",
                "count");
        assertError(
                mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello", "stop", "y".repeat(1025))),
                400,
                "invalid_value",
                "stop",
                "length");
        assertTrue(mesh.prefill.requests.isEmpty());
    }

    /** Numbers beyond int (or long) are refused naming their field, never cast into range. */
    @Test
    void requestNumbersOutOfRangeAre400NamingTheField() throws Exception {
        Map<String, String> completions = new java.util.LinkedHashMap<>();
        completions.put("max_tokens", "\"max_tokens\": 4294967297");
        completions.put("n", "\"n\": 9223372036854775808");
        completions.put("logprobs", "\"logprobs\": -1");
        completions.put("top_k", "\"top_k\": 18446744073709551617");
        completions.put("seed", "\"seed\": 18446744073709551617");
        for (Map.Entry<String, String> c : completions.entrySet()) {
            byte[] body = json("{\"prompt\": \"Hello\", " + c.getValue() + "}");
            assertError(mesh.post("/v1/completions", body), 400, "invalid_value", c.getKey(), c.getValue());
        }
        byte[] chat = json("{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"logprobs\": true,"
                + " \"top_logprobs\": 4294967297}");
        assertError(mesh.post("/v1/chat/completions", chat), 400, "invalid_value", "top_logprobs", "top_logprobs");
        byte[] cap = json("{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}],"
                + " \"max_completion_tokens\": 4294967297}");
        assertError(mesh.post("/v1/chat/completions", cap), 400, "invalid_value", "max_completion_tokens", "chat max");
        assertTrue(mesh.prefill.requests.isEmpty());
    }

    /**
     * A prompt too long in tokens (but not in bytes) is found out only by tokenizing it; with the gateway
     * full, it is refused 429 — so it was not tokenized before admission — and 400 once there is room.
     */
    @Test
    void tokenizingWaitsForAdmission() throws Exception {
        String thirtyTokens = "Hello world".repeat(15); // 30 tokens of the test vocabulary, 165 bytes
        mesh.decodeA.scripts.add(FakeDecode.thenRepeat(TestVocab.MORE, TestVocab.HELLO));
        HttpResponse<Stream<String>> held =
                mesh.stream("/v1/completions", GatewayFixture.body("prompt", "Hello", "stream", true));
        try {
            assertEquals(200, held.statusCode());
            GatewayFixture.Reply full = mesh.post("/v1/completions", GatewayFixture.body("prompt", thirtyTokens));
            assertError(full, 429, "rate_limit_exceeded", null, "full");
        } finally {
            held.body().close();
        }
        mesh.reset();
        GatewayFixture.Reply room = mesh.post("/v1/completions", GatewayFixture.body("prompt", thirtyTokens));
        assertError(room, 400, "invalid_value", "prompt", "room");
        assertTrue(
                room.body().get("error").get("message").asString().contains("30 tokens"),
                room.body().toString());
    }
}
