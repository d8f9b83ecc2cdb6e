package dev.goldfinch.mesh;

import dev.goldfinch.cache.app.CacheStoreApplication;
import dev.goldfinch.cache.client.CacheClientProperties;
import dev.goldfinch.cache.client.EntrySigner;
import dev.goldfinch.decode.DecodeApplication;
import dev.goldfinch.gateway.GatewayApplication;
import dev.goldfinch.prefill.PrefillApplication;
import dev.goldfinch.service.Channels;
import io.grpc.ManagedChannel;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import java.io.IOException;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The services of one mesh, in start order, each with its ports and every property it runs with: the one
 * place a mesh is configured, whether {@link MeshLauncher} runs it in one JVM or {@link ProcessMeshLauncher}
 * as one JVM per service. Ports are chosen up front so every service knows its peers' addresses before any
 * starts.
 */
public final class MeshPlan {
    /**
     * One service: its Spring Boot application, profile, loopback ports (http serves the API or actuator's
     * Prometheus metrics) and properties (secrets among them: pass them where no one else reads them).
     */
    public record Service(
            String name, Class<?> app, String profile, int httpPort, int grpcPort, Map<String, String> properties) {
        public String grpcTarget() {
            return "127.0.0.1:" + grpcPort;
        }
    }

    private MeshPlan() {}

    /** Cache store, prefill, {@code decode-1}… and the gateway, for {@code o}. */
    public static List<Service> of(MeshLauncher.Options o) {
        Map<String, String> model = new LinkedHashMap<>();
        if (o.modelPath() != null) {
            model.put(
                    "goldfinch.model.path",
                    o.modelPath().toAbsolutePath().normalize().toString());
        } else {
            model.put("goldfinch.model.shape", o.shape());
            model.put("goldfinch.model.seed", Long.toString(o.seed()));
            model.put("goldfinch.model.dtype", o.dtype());
        }
        model.put("goldfinch.model.max-prompt-tokens", Integer.toString(o.maxPromptTokens()));
        model.put("goldfinch.model.max-tokens-cap", Integer.toString(o.maxTokensCap()));
        // One mesh key per run unless given: prefill and decode sign and verify with it; the store never has it.
        model.put(
                CacheClientProperties.SIGNING_KEY,
                o.extra().getOrDefault(CacheClientProperties.SIGNING_KEY, EntrySigner.randomKey()));

        List<Service> services = new ArrayList<>();
        Map<String, String> store = new LinkedHashMap<>();
        if (o.redisUrl() != null) {
            store.put("goldfinch.cache.backend", "redis");
            store.put("goldfinch.cache.redis-url", o.redisUrl());
        }
        Service cacheStore = service(o, "cache-store", CacheStoreApplication.class, "cache-store", 0, 0, store);
        services.add(cacheStore);

        Map<String, String> prefillProps = new LinkedHashMap<>(model);
        prefillProps.put("goldfinch.prefill.cache-store", cacheStore.grpcTarget());
        Service prefill = service(o, "prefill", PrefillApplication.class, "prefill", 0, 0, prefillProps);
        services.add(prefill);

        List<String> decodeTargets = new ArrayList<>();
        for (int i = 1; i <= o.decodeReplicas(); i++) {
            Map<String, String> decode = new LinkedHashMap<>(model);
            decode.put("goldfinch.decode.cache-store", cacheStore.grpcTarget());
            Service replica = service(o, "decode-" + i, DecodeApplication.class, "decode", 0, 0, decode);
            services.add(replica);
            decodeTargets.add(replica.grpcTarget());
        }

        Map<String, String> gateway = new LinkedHashMap<>();
        gateway.put(
                "goldfinch.gateway.vocab",
                o.vocab().toAbsolutePath().normalize().toString());
        gateway.put("goldfinch.gateway.prefill", prefill.grpcTarget());
        gateway.put("goldfinch.gateway.decode-targets", String.join(",", decodeTargets));
        if (o.apiKeys() != null) {
            gateway.put(
                    "goldfinch.gateway.api-keys-file",
                    o.apiKeys().toAbsolutePath().normalize().toString());
        }
        services.add(service(o, "gateway", GatewayApplication.class, "gateway", o.httpPort(), o.grpcPort(), gateway));
        return services;
    }

    /** A service's properties: ports and loopback addresses, its own, then the options' extra ones. */
    private static Service service(
            MeshLauncher.Options o,
            String name,
            Class<?> app,
            String profile,
            int httpPort,
            int grpcPort,
            Map<String, String> own) {
        int http = httpPort == 0 ? freePort() : httpPort;
        int grpc = grpcPort == 0 ? freePort() : grpcPort;
        Map<String, String> props = new LinkedHashMap<>();
        props.put("spring.application.name", "goldfinch-" + name);
        props.put("server.port", Integer.toString(http));
        props.put("server.address", "127.0.0.1");
        props.put("spring.grpc.server.port", Integer.toString(grpc));
        props.put("spring.grpc.server.address", "127.0.0.1:" + grpc); // host:port; a bare host binds the default port
        props.putAll(own);
        o.extra().forEach((k, v) -> {
            if (!k.equals(CacheClientProperties.SIGNING_KEY)) { // only prefill and decode get the key, via own
                props.put(k, v);
            }
        });
        return new Service(name, app, profile, http, grpc, Map.copyOf(props));
    }

    static int freePort() {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Waits until every service answers gRPC health SERVING; throws naming the first that does not in time. */
    static void awaitServing(List<Service> services, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        for (Service service : services) {
            ManagedChannel channel = Channels.open(service.grpcTarget());
            try {
                while (true) {
                    RuntimeException failure = null;
                    try {
                        HealthCheckResponse r = HealthGrpc.newBlockingStub(channel)
                                .withDeadlineAfter(2, TimeUnit.SECONDS)
                                .check(HealthCheckRequest.getDefaultInstance());
                        if (r.getStatus() == HealthCheckResponse.ServingStatus.SERVING) {
                            break;
                        }
                    } catch (RuntimeException e) {
                        failure = e;
                    }
                    if (System.nanoTime() > deadline) {
                        throw new IllegalStateException(service.name() + " did not become healthy", failure);
                    }
                    Thread.sleep(50);
                    // A refused connection backs the channel off for up to minutes: try again now instead.
                    channel.resetConnectBackoff();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            } finally {
                Channels.close(channel);
            }
        }
    }
}
