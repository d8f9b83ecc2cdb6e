package dev.goldfinch.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Server;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Replica choice against two replicas whose gRPC health the test sets, over the in-process transport. */
class DecodeRouterTest {
    private final String run = UUID.randomUUID().toString();
    private final String targetA = "router-a-" + run;
    private final String targetB = "router-b-" + run;
    private final HealthStatusManager healthA = new HealthStatusManager();
    private final HealthStatusManager healthB = new HealthStatusManager();
    private Server serverA;
    private Server serverB;
    private DecodeRouter router;
    private DecodeRouter.Replica a;
    private DecodeRouter.Replica b;

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
        router = new DecodeRouter(
                List.of(targetB, targetA),
                Duration.ofMillis(50),
                2,
                t -> InProcessChannelBuilder.forName(t).build());
        for (DecodeRouter.Replica r : router.replicas()) {
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

    private DecodeRouter.Replica pick(String entry, DecodeRouter.Replica exclude) {
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
        try (DecodeRouter slow = new DecodeRouter(
                List.of(targetA, targetB),
                Duration.ofHours(1),
                2,
                t -> InProcessChannelBuilder.forName(t).build())) {
            DecodeRouter.Replica first = slow.pick("e", null).orElseThrow();
            assertEquals(targetA, first.target());
            slow.markUnavailable(first);
            assertEquals(targetB, slow.pick("e", null).orElseThrow().target());
            assertEquals(targetB, slow.pick("other", null).orElseThrow().target());
        }
    }
}
