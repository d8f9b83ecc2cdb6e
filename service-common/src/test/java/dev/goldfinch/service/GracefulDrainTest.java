package dev.goldfinch.service;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.proto.internal.v1.DecodeGrpc;
import dev.goldfinch.proto.internal.v1.DecodeRequest;
import dev.goldfinch.proto.internal.v1.DecodeResponse;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.stub.StreamObserver;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.Iterator;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** A service's drain over real gRPC on loopback: NOT_SERVING, new calls refused, calls in progress finished or cut. */
class GracefulDrainTest {
    final CountDownLatch release = new CountDownLatch(1);
    final HealthStatusManager health = new HealthStatusManager();
    Server server;
    ManagedChannel channel;

    /** One token at once, the second when the test releases it. */
    final class HeldDecode extends DecodeGrpc.DecodeImplBase {
        @Override
        public void decode(DecodeRequest request, StreamObserver<DecodeResponse> response) {
            response.onNext(DecodeResponse.newBuilder().setToken(1).build());
            Thread.ofVirtual().start(() -> {
                try {
                    release.await();
                    response.onNext(DecodeResponse.newBuilder().setToken(2).build());
                    response.onCompleted();
                } catch (InterruptedException | RuntimeException e) {
                    // cut by the drain: the call is gone
                }
            });
        }
    }

    GracefulDrain start(Duration notice, Duration timeout) throws Exception {
        GracefulDrain drain = new GracefulDrain(notice, timeout, health);
        server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .addService(ServerInterceptors.intercept(new HeldDecode(), drain))
                .addService(ServerInterceptors.intercept(health.getHealthService(), drain))
                .build()
                .start();
        drain.serverStarted(server);
        channel = Channels.open("127.0.0.1:" + server.getPort());
        return drain;
    }

    @AfterEach
    void stop() {
        release.countDown();
        if (channel != null) {
            Channels.close(channel);
        }
        if (server != null) {
            server.shutdownNow();
        }
    }

    Iterator<DecodeResponse> call() {
        return DecodeGrpc.newBlockingStub(channel)
                .withDeadlineAfter(60, TimeUnit.SECONDS)
                .decode(DecodeRequest.getDefaultInstance());
    }

    HealthCheckResponse.ServingStatus health() {
        return HealthGrpc.newBlockingStub(channel)
                .withDeadlineAfter(10, TimeUnit.SECONDS)
                .check(HealthCheckRequest.getDefaultInstance())
                .getStatus();
    }

    @Test
    void aDrainingServiceSaysNotServingRefusesNewCallsAndFinishesItsStream() throws Exception {
        GracefulDrain drain = start(Duration.ofMillis(300), Duration.ofMinutes(5));
        assertEquals(HealthCheckResponse.ServingStatus.SERVING, health());
        Iterator<DecodeResponse> inProgress = call();
        assertEquals(1, inProgress.next().getToken());
        assertEquals(1, drain.inFlight());

        Thread draining = Thread.ofPlatform().start(drain::drain);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!drain.draining() && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertTrue(drain.draining(), "past the notice, the drain refuses new calls");
        assertEquals(HealthCheckResponse.ServingStatus.NOT_SERVING, health());
        StatusRuntimeException refused =
                org.junit.jupiter.api.Assertions.assertThrows(StatusRuntimeException.class, () -> call().next());
        assertEquals(Status.Code.UNAVAILABLE, refused.getStatus().getCode());
        draining.join(300);
        assertTrue(draining.isAlive(), "the drain waits for the stream in progress");

        release.countDown();
        assertEquals(2, inProgress.next().getToken());
        assertFalse(inProgress.hasNext(), "the stream ended normally");
        draining.join(TimeUnit.SECONDS.toMillis(30));
        assertFalse(draining.isAlive(), "drained once the stream ended");
        assertEquals(0, drain.inFlight());
    }

    @Test
    void aStreamStillRunningAtTheDrainTimeoutIsCutForItsCallerToMove() throws Exception {
        GracefulDrain drain = start(Duration.ZERO, Duration.ofMillis(500));
        Iterator<DecodeResponse> inProgress = call();
        assertEquals(1, inProgress.next().getToken());
        drain.drain(); // returns after the timeout, the stream never released
        StatusRuntimeException cut =
                org.junit.jupiter.api.Assertions.assertThrows(StatusRuntimeException.class, inProgress::next);
        assertTrue(
                Set.of(Status.Code.UNAVAILABLE, Status.Code.CANCELLED)
                        .contains(cut.getStatus().getCode()),
                "a status the gateway fails over on: " + cut.getStatus());
    }
}
