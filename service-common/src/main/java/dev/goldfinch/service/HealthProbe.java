package dev.goldfinch.service;

import dev.goldfinch.service.tls.TlsProperties;
import io.grpc.ChannelCredentials;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * A container health check on gRPC health, for images that have no probe binary:
 * {@code java -cp … dev.goldfinch.service.HealthProbe 127.0.0.1:9091} exits 0 when the service answers
 * SERVING, 1 otherwise (docker-compose.yml's healthchecks run it). An internal port that speaks mutual TLS is
 * probed with the service's own mesh identity, read from the same variables the service reads
 * ({@code GOLDFINCH_TLS_MESH_CERTIFICATE}, {@code _PRIVATEKEY}, {@code _CA}); {@code --plaintext} probes a
 * public port that serves plaintext (the gateway's gRPC port without a public certificate).
 */
public final class HealthProbe {
    private HealthProbe() {}

    public static void main(String[] args) {
        boolean plaintext = args.length == 2 && args[0].equals("--plaintext");
        if (args.length != (plaintext ? 2 : 1)) {
            System.err.println("usage: HealthProbe [--plaintext] HOST:PORT");
            System.exit(2);
        }
        ChannelCredentials credentials =
                plaintext ? InsecureChannelCredentials.create() : meshCredentials(System.getenv());
        System.exit(serving(args[args.length - 1], credentials) ? 0 : 1);
    }

    /** The mesh identity the environment names (all three variables, or none: plaintext). */
    public static ChannelCredentials meshCredentials(Map<String, String> env) {
        return new TlsProperties.Mesh(
                        path(env, "GOLDFINCH_TLS_MESH_CERTIFICATE"),
                        path(env, "GOLDFINCH_TLS_MESH_PRIVATEKEY"),
                        path(env, "GOLDFINCH_TLS_MESH_CA"))
                .channelCredentials();
    }

    private static Path path(Map<String, String> env, String variable) {
        String value = env.get(variable);
        return value == null || value.isBlank() ? null : Path.of(value);
    }

    public static boolean serving(String target) {
        return serving(target, InsecureChannelCredentials.create());
    }

    public static boolean serving(String target, ChannelCredentials credentials) {
        ManagedChannel channel = Channels.open(target, credentials);
        try {
            // A cold JVM's first TLS handshake on a busy host takes seconds (measured: the whole probe 6-10 s
            // at load 7-10 on 2 cores, mTLS included); compose's timeout (20 s) bounds the rest.
            HealthCheckResponse r = HealthGrpc.newBlockingStub(channel)
                    .withDeadlineAfter(10, TimeUnit.SECONDS)
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
