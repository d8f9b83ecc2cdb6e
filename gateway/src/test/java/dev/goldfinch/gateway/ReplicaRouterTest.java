package dev.goldfinch.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Server;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Replica choice against two replicas whose gRPC health the test sets, over the in-process transport. */
class ReplicaRouterTest {
    private final String run = UUID.randomUUID().toString();
    private final String targetA = "router-a-" + run;
    private final String targetB = "router-b-" + run;
    private final HealthStatusManager healthA = new HealthStatusManager();
    private final HealthStatusManager healthB = new HealthStatusManager();
    private Server serverA;
    private Server serverB;
    private ReplicaRouter router;
    private ReplicaRouter.Replica a;
    private ReplicaRouter.Replica b;

    @BeforeEach
    void start() throws Exception {
        serverA = InProcessServerBuilder.forName(targetA)
                .addService(healthA.getHealthService())
                .build()
                .start();
        serverB = InProcessServerBuilder.forName(targetB)
                .addService(healthB.getHealthService())
                .build()
                .start();
        router = new ReplicaRouter(
                "decode",
                List.of(targetB, targetA),
                Duration.ofMillis(50),
                2,
                t -> InProcessChannelBuilder.forName(t).build());
        for (ReplicaRouter.Replica r : router.replicas()) {
            if (r.target().equals(targetA)) {
                a = r;
            } else {
                b = r;
            }
        }
    }

    @AfterEach
    void stop() {
        router.close();
        serverA.shutdownNow();
        serverB.shutdownNow();
    }

    private ReplicaRouter.Replica pick(String entry, ReplicaRouter.Replica exclude) {
        return router.pick(entry, exclude).orElseThrow();
    }

    @Test
    void theLeastLoadedReplicaWinsAndTiesGoByTarget() {
        assertEquals(2, router.replicas().size());
        assertEquals(targetA, pick("e1", null).target(), "a tie: the first target by name");
        a.live.set(3);
        b.live.set(1);
        assertEquals(targetB, pick("e2", null).target());
        assertEquals(targetA, pick("e3", b).target(), "an excluded replica is never picked, however idle");
    }

    @Test
    void theReplicaThatServedAnEntryKeepsItWhileWithinTheSlack() {
        assertEquals(targetA, pick("entry", null).target());
        a.live.set(2); // two more than B: still within the slack of 2
        assertEquals(targetA, pick("entry", null).target(), "affinity: A's local cache holds the entry");
        a.live.set(3); // beyond the slack: the least loaded wins, and now holds the entry
        assertEquals(targetB, pick("entry", null).target());
        a.live.set(0);
        b.live.set(1);
        assertEquals(targetB, pick("entry", null).target(), "the entry followed to B");
        assertEquals(targetA, pick("other entry", null).target(), "another entry goes to the least loaded");
    }

    @Test
    void anUnhealthyReplicaIsSkippedUntilItServesAgain() {
        a.live.set(0);
        b.live.set(5);
        healthA.setStatus("", ServingStatus.NOT_SERVING);
        GatewayFixture.await(() -> !a.healthy, "the health round sees A down");
        assertEquals(targetB, pick("e", null).target(), "A is idle but down");
        healthB.setStatus("", ServingStatus.NOT_SERVING);
        GatewayFixture.await(() -> !b.healthy, "the health round sees B down");
        assertTrue(router.pick("e", null).isEmpty(), "no healthy replica: nothing to pick");
        healthA.setStatus("", ServingStatus.SERVING);
        GatewayFixture.await(() -> a.healthy, "A back");
        assertEquals(targetA, pick("e", null).target());
    }

    @Test
    void aReplicaMarkedUnavailableGetsNoWorkUntilAHealthRoundSaysOtherwise() {
        try (ReplicaRouter slow = new ReplicaRouter(
                "decode",
                List.of(targetA, targetB),
                Duration.ofHours(1),
                2,
                t -> InProcessChannelBuilder.forName(t).build())) {
            ReplicaRouter.Replica first = slow.pick("e", null).orElseThrow();
            assertEquals(targetA, first.target());
            slow.markUnavailable(first);
            assertEquals(targetB, slow.pick("e", null).orElseThrow().target());
            assertEquals(targetB, slow.pick("other", null).orElseThrow().target());
        }
    }

    @Test
    void aReplicaTooBusyToAnswerOneHealthCheckKeepsItsWorkUntilSeveralGoUnanswered() throws Exception {
        String target = "router-slow-" + run;
        SlowHealth slowHealth = new SlowHealth();
        Server slowServer = InProcessServerBuilder.forName(target)
                .addService(slowHealth)
                .build()
                .start();
        try (ReplicaRouter slow = new ReplicaRouter(
                "decode",
                List.of(target),
                Duration.ofMillis(50),
                2,
                t -> InProcessChannelBuilder.forName(t).build())) {
            ReplicaRouter.Replica r = slow.replicas().getFirst();
            slowHealth.delayMillis = 1500; // past the check's 1 s deadline
            GatewayFixture.await(() -> r.unansweredChecks >= 1, "a check went unanswered");
            assertTrue(r.healthy, "one unanswered check is a busy replica, not a dead one");
            GatewayFixture.await(() -> !r.healthy, "several unanswered checks in a row take it out");
            assertTrue(
                    r.unansweredChecks >= ReplicaRouter.UNANSWERED_CHECKS_BEFORE_DOWN,
                    "down only after the threshold: " + r.unansweredChecks);
            slowHealth.delayMillis = 0;
            GatewayFixture.await(() -> r.healthy, "an answered check brings it back");
        } finally {
            slowServer.shutdownNow();
        }
    }

    @Test
    void withNoHealthyReplicaLeftTheLeastLoadedOneNotRefusingWorkIsStillTried() {
        try (ReplicaRouter slow = new ReplicaRouter(
                "decode",
                List.of(targetA, targetB),
                Duration.ofHours(1),
                2,
                t -> InProcessChannelBuilder.forName(t).build())) {
            ReplicaRouter.Replica first = slow.pick("e", null).orElseThrow();
            ReplicaRouter.Replica second = slow.pick("e", first).orElseThrow();
            slow.markUnavailable(first);
            slow.markUnavailable(second);
            assertTrue(slow.pick("e", null).isEmpty(), "nothing healthy");
            first.live.set(1);
            assertEquals(second, slow.pickDespiteHealth(List.of()).orElseThrow(), "the less loaded of the two");
            assertEquals(first, slow.pickDespiteHealth(List.of(second)).orElseThrow());
            assertTrue(slow.pickDespiteHealth(List.of(first, second)).isEmpty(), "both failed this request");
        }
    }

    @Test
    void aReplicaThatSaysNotServingIsNeverTriedEvenInPanic() {
        healthA.setStatus("", ServingStatus.NOT_SERVING);
        healthB.setStatus("", ServingStatus.NOT_SERVING);
        GatewayFixture.await(() -> !a.healthy && !b.healthy, "both say NOT_SERVING");
        assertTrue(router.pickDespiteHealth(List.of()).isEmpty(), "a draining replica takes no new work");
        healthB.setStatus("", ServingStatus.SERVING);
        GatewayFixture.await(() -> b.healthy, "B back");
        assertEquals(b, router.pickDespiteHealth(List.of()).orElseThrow());
    }

    @Test
    void aReplicaThatStartsAfterTheGatewayIsSeenWithinARoundOrTwo() throws Exception {
        int port;
        try (java.net.ServerSocket probe = new java.net.ServerSocket(0)) {
            port = probe.getLocalPort();
        }
        try (ReplicaRouter late = new ReplicaRouter(
                "decode",
                List.of("127.0.0.1:" + port),
                Duration.ofMillis(50),
                2,
                dev.goldfinch.service.Channels::open)) {
            ReplicaRouter.Replica r = late.replicas().getFirst();
            GatewayFixture.await(() -> !r.healthy, "nothing listens yet: down");
            // Long enough for the channel's own reconnect backoff to grow well past the wait below.
            Thread.sleep(10_000);
            Server server = NettyServerBuilder.forAddress(new java.net.InetSocketAddress("127.0.0.1", port))
                    .addService(new HealthStatusManager().getHealthService())
                    .build()
                    .start();
            try {
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(3);
                while (!r.healthy && System.nanoTime() < deadline) {
                    Thread.sleep(10);
                }
                assertTrue(r.healthy, "seen at the next health round, not after the channel's backoff");
            } finally {
                server.shutdownNow();
            }
        }
    }

    /** A health service that answers SERVING after a delay the test sets. */
    private static final class SlowHealth extends HealthGrpc.HealthImplBase {
        volatile long delayMillis;

        @Override
        public void check(HealthCheckRequest request, StreamObserver<HealthCheckResponse> response) {
            try {
                Thread.sleep(delayMillis);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            response.onNext(HealthCheckResponse.newBuilder()
                    .setStatus(ServingStatus.SERVING)
                    .build());
            response.onCompleted();
        }
    }
}
