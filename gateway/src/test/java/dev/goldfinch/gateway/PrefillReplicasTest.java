package dev.goldfinch.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The gateway in front of two prefill replicas: a prefill that ends because its replica went away or is
 * shutting down (UNAVAILABLE, or a CANCELLED the gateway did not ask for) is sent to the other replica; any
 * other failure is the client's answer; a replica answering NOT_SERVING gets no prompt.
 */
class PrefillReplicasTest {
    private static GatewayFixture mesh;

    @BeforeAll
    static void start() throws Exception {
        mesh = GatewayFixture.withTwoPrefillReplicas(Map.of());
    }

    @AfterAll
    static void stop() {
        mesh.close();
    }

    @BeforeEach
    void reset() {
        mesh.reset();
    }

    private static String text(GatewayFixture.Reply r) {
        assertEquals(200, r.status(), r.body().toString());
        return r.body().get("choices").get(0).get("text").asString();
    }

    @Test
    void aPrefillReplicaGoingAwayIsRetriedOnTheOther() throws Exception {
        mesh.prefill.failures.add(
                Status.UNAVAILABLE.withDescription("going away").asRuntimeException());
        assertEquals("Hello", text(mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello"))));
        assertEquals(1, mesh.prefill.requests.size(), "A first (a tie goes to A)");
        assertEquals(1, mesh.prefillB.requests.size(), "then B");
        assertEquals(mesh.prefill.requests.getFirst(), mesh.prefillB.requests.getFirst(), "the same prompt");
    }

    @Test
    void aPrefillCutByAReplicaShuttingDownIsRetriedOnTheOther() throws Exception {
        mesh.prefill.failures.add(
                Status.CANCELLED.withDescription("server shutdown").asRuntimeException());
        assertEquals("Hello", text(mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello"))));
        assertEquals(1, mesh.prefill.requests.size());
        assertEquals(1, mesh.prefillB.requests.size());
    }

    @Test
    void anyOtherPrefillFailureIsTheAnswerWithoutARetry() throws Exception {
        mesh.prefill.failures.add(
                Status.INVALID_ARGUMENT.withDescription("prompt too long").asRuntimeException());
        GatewayFixture.Reply r = mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello"));
        assertEquals(400, r.status(), r.body().toString());
        assertEquals(1, mesh.prefill.requests.size());
        assertTrue(mesh.prefillB.requests.isEmpty(), "not retried: another replica would refuse it too");
    }

    @Test
    void whenEveryPrefillReplicaGoesAwayTheClientGets503() throws Exception {
        mesh.prefill.failures.add(
                Status.UNAVAILABLE.withDescription("going away").asRuntimeException());
        mesh.prefillB.failures.add(
                Status.UNAVAILABLE.withDescription("going away").asRuntimeException());
        GatewayFixture.Reply r = mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello"));
        assertEquals(503, r.status(), r.body().toString());
        assertEquals(
                "service_unavailable",
                r.body().get("error").get("code").asString(),
                r.body().toString());
        assertEquals(1, mesh.prefill.requests.size(), "each replica tried once");
        assertEquals(1, mesh.prefillB.requests.size());
        assertTrue(mesh.decodeA.requests.isEmpty() && mesh.decodeB.requests.isEmpty(), "nothing to decode");
    }

    @Test
    void aPrefillReplicaAnsweringNotServingGetsNoPrompt() throws Exception {
        mesh.prefillHealth.setStatus("", ServingStatus.NOT_SERVING);
        GatewayFixture.await(
                () -> mesh.prefillRouter().replicas().stream().anyMatch(p -> !p.healthy), "the gateway sees A drain");
        for (int i = 0; i < 3; i++) {
            assertEquals("Hello", text(mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello " + i))));
        }
        assertTrue(mesh.prefill.requests.isEmpty(), "A is shutting down");
        assertEquals(3, mesh.prefillB.requests.size());
    }
}
