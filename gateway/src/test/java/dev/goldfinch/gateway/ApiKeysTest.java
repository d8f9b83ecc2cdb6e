package dev.goldfinch.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.goldfinch.cache.PrefixHasher;
import dev.goldfinch.error.FailureKind;
import dev.goldfinch.error.TypedFailure;
import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.proto.v1.GenerateRequest;
import dev.goldfinch.proto.v1.GenerateResponse;
import dev.goldfinch.proto.v1.GenerationGrpc;
import dev.goldfinch.proto.v1.ListModelsRequest;
import dev.goldfinch.proto.v1.SamplingParams;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.stub.MetadataUtils;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

/** API keys on the real gateway: HTTP and gRPC refuse an unknown caller before any downstream call. */
class ApiKeysTest {
    static final String KEY_A = "sk-alpha-0123456789";
    static final String KEY_B = "sk-beta-9876543210";
    static final String WRONG = "sk-wrong-5555555555";

    @TempDir
    static Path dir;

    private static GatewayFixture mesh;

    @BeforeAll
    static void start() throws Exception {
        Path keys = dir.resolve("api-keys");
        Files.writeString(
                keys,
                "# tenants of the test\n\nalpha " + KEY_A + "   # the first\n  beta\t" + KEY_B + "\n",
                StandardCharsets.UTF_8);
        mesh = new GatewayFixture(Map.of(
                "goldfinch.gateway.api-keys-file", keys.toString(),
                "goldfinch.gateway.max-inflight", "4",
                "goldfinch.gateway.max-inflight-per-tenant", "1"));
    }

    @AfterAll
    static void stop() {
        mesh.close();
    }

    @BeforeEach
    void reset() {
        mesh.reset();
    }

    private static Map<String, Object> body(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("prompt", "Hello");
        for (int i = 0; i < kv.length; i += 2) {
            m.put((String) kv[i], kv[i + 1]);
        }
        return m;
    }

    private static void assertUnauthorized(GatewayFixture.Reply r, String what) {
        assertEquals(401, r.status(), what + ": " + r.body());
        JsonNode error = r.body().get("error");
        assertNotNull(error, what);
        assertEquals("invalid_request_error", error.get("type").asString(), what);
        assertEquals("invalid_api_key", error.get("code").asString(), what);
        assertTrue(error.get("param").isNull(), what);
        assertFalse(r.body().toString().contains("sk-"), what + ": no key in the answer");
    }

    @Test
    void httpWithoutOrWithAWrongKeyIs401AndCallsNothing() throws Exception {
        assertUnauthorized(mesh.post("/v1/completions", body()), "no key");
        assertUnauthorized(mesh.post("/v1/completions", body(), WRONG), "wrong key");
        assertUnauthorized(mesh.post("/v1/chat/completions", body(), WRONG), "wrong key, chat");
        assertUnauthorized(mesh.post("/v1/completions", body(), ""), "empty bearer");
        assertUnauthorized(mesh.get("/v1/models", null), "models without a key");
        assertTrue(mesh.prefill.requests.isEmpty(), "no prefill call");
        assertTrue(mesh.decodeA.requests.isEmpty() && mesh.decodeB.requests.isEmpty(), "no decode call");
        assertEquals(200, mesh.get("/health", null).status(), "health stays open");
    }

    @Test
    void thePublicPortServesHealthAndMetricsWithoutAKeyAndNoOtherActuator() throws Exception {
        assertEquals(200, mesh.post("/v1/completions", body(), KEY_A).status());
        GatewayFixture.TextReply metrics = mesh.getText(0, "/metrics", null);
        assertEquals(200, metrics.status(), metrics.body());
        assertTrue(metrics.contentType().startsWith("text/plain"), metrics.contentType());
        assertTrue(metrics.body().contains("goldfinch_time_to_first_token_seconds"), "Prometheus text");
        for (String secret : List.of(KEY_A, KEY_B, "sk-", dir.toString())) {
            assertFalse(metrics.body().contains(secret), "no key (nor the key file's path) in /metrics: " + secret);
        }
        assertEquals(200, mesh.getText(0, "/health", null).status());
        for (String actuator : List.of("/actuator/prometheus", "/actuator/env", "/actuator/health", "/actuator")) {
            assertEquals(404, mesh.getText(0, actuator, KEY_A).status(), actuator + " is not on the public port");
        }
        GatewayFixture.TextReply managed = mesh.getText(mesh.managementPort(), "/actuator/prometheus", null);
        assertEquals(200, managed.status(), "Actuator answers on the management port");
        assertFalse(managed.body().contains(KEY_A) || managed.body().contains(KEY_B));
    }

    @Test
    void httpWithAValidKeyIsServedInItsTenantsNamespace() throws Exception {
        GatewayFixture.Reply r = mesh.post("/v1/completions", body("cache_salt", "s1"), KEY_A);
        assertEquals(200, r.status(), r.body().toString());
        assertEquals(200, mesh.get("/v1/models", KEY_B).status());
        GatewayFixture.Reply b = mesh.post("/v1/completions", body("cache_salt", "s1"), KEY_B);
        assertEquals(200, b.status(), b.body().toString());
        assertEquals(2, mesh.prefill.requests.size());
        assertEquals(
                PrefixHasher.namespace("alpha", "s1"),
                mesh.prefill.requests.get(0).getCacheSalt());
        assertEquals(
                PrefixHasher.namespace("beta", "s1"),
                mesh.prefill.requests.get(1).getCacheSalt());
        List<String> decoded = new ArrayList<>();
        mesh.decodeA.requests.forEach(d -> decoded.add(d.getCacheSalt()));
        mesh.decodeB.requests.forEach(d -> decoded.add(d.getCacheSalt()));
        assertTrue(decoded.contains(PrefixHasher.namespace("alpha", "s1")), "decode keyed by the same namespace");
    }

    private static GenerationGrpc.GenerationBlockingStub grpc(String key) {
        GenerationGrpc.GenerationBlockingStub stub = mesh.generation();
        if (key == null) {
            return stub;
        }
        Metadata headers = new Metadata();
        headers.put(ApiKeyGrpcInterceptor.AUTHORIZATION, "Bearer " + key);
        return stub.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers));
    }

    private static List<GenerateResponse> generate(String key) {
        GenerateRequest request = GenerateRequest.newBuilder()
                .setPromptUtf8(ByteString.copyFromUtf8("Hello"))
                .setSampling(SamplingParams.newBuilder().setMaxTokens(1))
                .build();
        List<GenerateResponse> out = new ArrayList<>();
        Iterator<GenerateResponse> it = grpc(key).generate(request);
        it.forEachRemaining(out::add);
        return out;
    }

    @Test
    void grpcWithoutOrWithAWrongKeyIsUnauthenticatedAndCallsNothing() {
        for (String key : new String[] {null, WRONG}) {
            StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> generate(key));
            assertEquals(Status.Code.UNAUTHENTICATED, e.getStatus().getCode(), String.valueOf(key));
            assertFalse(String.valueOf(e.getStatus().getDescription()).contains("sk-"));
            StatusRuntimeException list = assertThrows(
                    StatusRuntimeException.class, () -> grpc(key).listModels(ListModelsRequest.getDefaultInstance()));
            assertEquals(Status.Code.UNAUTHENTICATED, list.getStatus().getCode());
        }
        assertTrue(mesh.prefill.requests.isEmpty(), "no prefill call");
        assertEquals(
                HealthCheckResponse.ServingStatus.SERVING,
                HealthGrpc.newBlockingStub(mesh.gatewayChannel())
                        .withDeadlineAfter(5, TimeUnit.SECONDS)
                        .check(HealthCheckRequest.getDefaultInstance())
                        .getStatus(),
                "health stays open");
    }

    @Test
    void grpcWithAValidKeyIsServed() {
        List<GenerateResponse> out = generate(KEY_B);
        assertTrue(out.getLast().hasUsage(), out.toString());
        assertEquals(
                PrefixHasher.namespace("beta", ""),
                mesh.prefill.requests.getFirst().getCacheSalt());
    }

    @Test
    void aTenantOverItsQuotaIs429WhileAnotherIsServed() throws Exception {
        mesh.decodeA.scripts.add(FakeDecode.thenRepeat(TestVocab.MORE, TestVocab.HELLO));
        mesh.decodeB.scripts.add(FakeDecode.thenRepeat(TestVocab.MORE, TestVocab.HELLO));
        HttpResponse<Stream<String>> held =
                mesh.stream("/v1/completions", body("stream", true, "cache_salt", "held"), KEY_A);
        try {
            assertEquals(200, held.statusCode());
            GatewayFixture.Reply second = mesh.post("/v1/completions", body(), KEY_A);
            assertEquals(429, second.status(), second.body().toString());
            assertEquals(
                    "rate_limit_error", second.body().get("error").get("type").asString());
            StatusRuntimeException grpcSecond = assertThrows(StatusRuntimeException.class, () -> generate(KEY_A));
            assertEquals(Status.Code.RESOURCE_EXHAUSTED, grpcSecond.getStatus().getCode());
            GatewayFixture.Reply other = mesh.post("/v1/completions", body("max_tokens", 1), KEY_B);
            assertEquals(200, other.status(), "another tenant still has its slots: " + other.body());
        } finally {
            held.body().close();
        }
        GatewayFixture.await(
                () -> {
                    try {
                        return mesh.post("/v1/completions", body("max_tokens", 1), KEY_A)
                                        .status()
                                == 200;
                    } catch (Exception e) {
                        throw new AssertionError(e);
                    }
                },
                "tenant alpha's slot back once its stream ended");
    }

    @Test
    void aMalformedFileFailsNamingTheLineButNotTheKey() throws Exception {
        Path bad = dir.resolve("bad-keys");
        Files.writeString(bad, "alpha sk-good-1\nbeta sk-secret-2 extra\n", StandardCharsets.UTF_8);
        GoldFinchException.InvalidInput e =
                assertThrows(GoldFinchException.InvalidInput.class, () -> ApiKeys.load(bad));
        assertTrue(e.getMessage().contains("line 2"), e.getMessage());
        assertFalse(e.getMessage().contains("sk-"), e.getMessage());
        Files.writeString(bad, "alpha sk-same\nbeta sk-same\n", StandardCharsets.UTF_8);
        e = assertThrows(GoldFinchException.InvalidInput.class, () -> ApiKeys.load(bad));
        assertFalse(e.getMessage().contains("sk-"), e.getMessage());
        Files.writeString(bad, "# only comments\n\n", StandardCharsets.UTF_8);
        assertThrows(GoldFinchException.InvalidInput.class, () -> ApiKeys.load(bad));
        Files.writeString(bad, "al/pha sk-1\n", StandardCharsets.UTF_8);
        assertThrows(GoldFinchException.InvalidInput.class, () -> ApiKeys.load(bad));
    }

    @Test
    void keysAuthenticateTheirTenantOnly() throws Exception {
        Path file = dir.resolve("two-keys");
        Files.writeString(file, "alpha k1\nalpha k2\nbeta k3\n", StandardCharsets.UTF_8);
        ApiKeys keys = ApiKeys.load(file);
        assertEquals("alpha", keys.authenticate("Bearer k2"));
        assertEquals("beta", keys.authenticate("bearer k3"));
        for (String header : new String[] {null, "", "Bearer ", "Basic k1", "Bearer k4", "k1", "Bearer k1x"}) {
            TypedFailure f = assertThrows(TypedFailure.class, () -> keys.authenticate(header), String.valueOf(header));
            assertEquals(FailureKind.UNAUTHENTICATED, f.kind());
        }
        assertEquals(ApiKeys.ANONYMOUS, ApiKeys.open().authenticate(null));
    }

    @Test
    void aTenantsLineMayNameItsDefaultInitialState() throws Exception {
        Path file = dir.resolve("keys-with-states");
        Files.writeString(
                file,
                "alpha k1 initial_state=pirate\nalpha k2 initial_state=pirate\nbeta k3\n",
                StandardCharsets.UTF_8);
        ApiKeys keys = ApiKeys.load(file);
        assertEquals("alpha", keys.authenticate("Bearer k2"));
        assertEquals("pirate", keys.defaultInitialState("alpha"));
        assertEquals(null, keys.defaultInitialState("beta"));
        assertEquals("pirate", GenerationPipeline.Job.initialState("", keys.defaultInitialState("alpha")));
        assertEquals("story", GenerationPipeline.Job.initialState("story", keys.defaultInitialState("alpha")));

        Path bad = dir.resolve("disagreeing-states");
        Files.writeString(bad, "alpha sk-1 initial_state=a\nalpha sk-2 initial_state=b\n", StandardCharsets.UTF_8);
        GoldFinchException.InvalidInput e =
                assertThrows(GoldFinchException.InvalidInput.class, () -> ApiKeys.load(bad));
        assertTrue(e.getMessage().contains("line 2") && e.getMessage().contains("initial_state"), e.getMessage());
        assertFalse(e.getMessage().contains("sk-"), e.getMessage());
        Files.writeString(bad, "alpha sk-1 initial_state=\n", StandardCharsets.UTF_8);
        assertThrows(GoldFinchException.InvalidInput.class, () -> ApiKeys.load(bad));
    }
}
