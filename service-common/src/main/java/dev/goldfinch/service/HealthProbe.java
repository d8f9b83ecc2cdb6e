package dev.goldfinch.service;

import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import java.util.concurrent.TimeUnit;

/**
 * A container health check on gRPC health, for images that have no probe binary:
 * {@code java -cp … dev.goldfinch.service.HealthProbe 127.0.0.1:9091} exits 0 when the service answers
 * SERVING, 1 otherwise (docker-compose.yml's healthchecks run it).
 */
public final class HealthProbe {
    private HealthProbe() {}

    public static void main(String[] args) {
        if (args.length != 1) {
            System.err.println("usage: HealthProbe HOST:PORT");
            System.exit(2);
        }
        System.exit(serving(args[0]) ? 0 : 1);
    }

    public static boolean serving(String target) {
        ManagedChannel channel = Channels.open(target);
        try {
            HealthCheckResponse r = HealthGrpc.newBlockingStub(channel)
                    .withDeadlineAfter(3, TimeUnit.SECONDS)
                    .check(HealthCheckRequest.getDefaultInstance());
            System.out.println(r.getStatus());
            return r.getStatus() == HealthCheckResponse.ServingStatus.SERVING;
        } catch (StatusRuntimeException e) {
            System.out.println(e.getStatus().getCode());
            return false;
        } finally {
            channel.shutdownNow();
        }
    }
}
