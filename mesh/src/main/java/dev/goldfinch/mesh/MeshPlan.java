package dev.goldfinch.mesh;

import dev.goldfinch.cache.app.CacheStoreApplication;
import dev.goldfinch.cache.client.CacheClientProperties;
import dev.goldfinch.cache.client.EntrySigner;
import dev.goldfinch.decode.DecodeApplication;
import dev.goldfinch.gateway.GatewayApplication;
import dev.goldfinch.prefill.PrefillApplication;
import dev.goldfinch.service.Channels;
import dev.goldfinch.service.tls.MeshCertificates;
import dev.goldfinch.service.tls.TlsProperties;
import io.grpc.ChannelCredentials;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.TlsChannelCredentials;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import java.io.IOException;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

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
            String name,
            Class<?> app,
            String profile,
            String host,
            int httpPort,
            int grpcPort,
            int managementPort,
            Map<String, String> properties) {
        /** Where peers and probes reach its gRPC port (a wildcard listen address is reached on loopback). */
        public String grpcTarget() {
            boolean wildcard = host.equals("0.0.0.0") || host.equals("::") || host.equals("[::]");
            return (wildcard ? "127.0.0.1" : host) + ":" + grpcPort;
        }
    }

    /** Extra properties under this prefix go to the gateway only. */
    static final String PUBLIC_TLS = "goldfinch.tls.public.";

    private MeshPlan() {}

    /**
     * Cache store, prefill (or {@code prefill-1}…), {@code decode-1}… and the gateway, for {@code o}; each with a certificate of
     * {@code certificates}' CA, so the mesh speaks mutual TLS inside.
     */
    public static List<Service> of(MeshLauncher.Options o, MeshCertificates certificates) {
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
        Service cacheStore =
                service(o, certificates, "cache-store", CacheStoreApplication.class, "cache-store", 0, 0, store);
        services.add(cacheStore);

        List<String> prefillTargets = new ArrayList<>();
        for (int i = 1; i <= o.prefillReplicas(); i++) {
            Map<String, String> prefillProps = new LinkedHashMap<>(model);
            prefillProps.put("goldfinch.prefill.cache-store", cacheStore.grpcTarget());
            String name = o.prefillReplicas() == 1 ? "prefill" : "prefill-" + i;
            Service prefill = service(o, certificates, name, PrefillApplication.class, "prefill", 0, 0, prefillProps);
            services.add(prefill);
            prefillTargets.add(prefill.grpcTarget());
        }

        List<String> decodeTargets = new ArrayList<>();
        for (int i = 1; i <= o.decodeReplicas(); i++) {
            Map<String, String> decode = new LinkedHashMap<>(model);
            decode.put("goldfinch.decode.cache-store", cacheStore.grpcTarget());
            if (o.vocab() != null) { // structured outputs mask over the gateway's vocabulary
                decode.put(
                        "goldfinch.decode.vocab",
                        o.vocab().toAbsolutePath().normalize().toString());
            }
            Service replica = service(o, certificates, "decode-" + i, DecodeApplication.class, "decode", 0, 0, decode);
            services.add(replica);
            decodeTargets.add(replica.grpcTarget());
        }

        Map<String, String> gateway = new LinkedHashMap<>();
        if (o.vocab() != null) { // else the gateway chooses from the model's vocabulary size
            gateway.put(
                    "goldfinch.gateway.vocab",
                    o.vocab().toAbsolutePath().normalize().toString());
        }
        gateway.put("goldfinch.gateway.prefill", String.join(",", prefillTargets));
        gateway.put("goldfinch.gateway.cache-store", cacheStore.grpcTarget()); // the playground shows its bytes
        gateway.put("goldfinch.gateway.decode-targets", String.join(",", decodeTargets));
        if (o.apiKeys() != null) {
            gateway.put(
                    "goldfinch.gateway.api-keys-file",
                    o.apiKeys().toAbsolutePath().normalize().toString());
        }
        services.add(service(
                o, certificates, "gateway", GatewayApplication.class, "gateway", o.httpPort(), o.grpcPort(), gateway));
        return services;
    }

    /** A service's properties: ports and loopback addresses, its own, then the options' extra ones. */
    private static Service service(
            MeshLauncher.Options o,
            MeshCertificates certificates,
            String name,
            Class<?> app,
            String profile,
            int httpPort,
            int grpcPort,
            Map<String, String> own) {
        int http = httpPort == 0 ? freePort() : httpPort;
        int grpc = grpcPort == 0 ? freePort() : grpcPort;
        int management = freePort(); // Actuator, apart from the public port
        Map<String, String> props = new LinkedHashMap<>();
        props.put("spring.application.name", "goldfinch-" + name);
        props.put("server.port", Integer.toString(http));
        String host = name.equals("gateway") ? o.publicHost() : "127.0.0.1"; // only the gateway is public
        props.put("server.address", host);
        props.put("spring.grpc.server.port", Integer.toString(grpc));
        props.put("spring.grpc.server.address", host + ":" + grpc); // host:port; a bare host binds the default port
        props.put("management.server.port", Integer.toString(management));
        TlsProperties.Mesh identity = certificates.issue(name);
        props.put("goldfinch.tls.mesh.certificate", identity.certificate().toString());
        props.put("goldfinch.tls.mesh.private-key", identity.privateKey().toString());
        props.put("goldfinch.tls.mesh.ca", identity.ca().toString());
        props.putAll(own);
        o.extra().forEach((k, v) -> {
            if (k.equals(CacheClientProperties.SIGNING_KEY)) {
                return; // only prefill and decode get the key, via own
            }
            if (k.startsWith(PUBLIC_TLS) && !name.equals("gateway")) {
                return; // the public certificate is the gateway's; the others serve their ports with the mesh's
            }
            props.put(k, v);
        });
        return new Service(name, app, profile, host, http, grpc, management, Map.copyOf(props));
    }

    static int freePort() {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Waits until every service answers gRPC health SERVING; throws naming the first that does not in time.
     * Internal services are asked with {@code internal} (a mesh certificate); the gateway as a client would.
     */
    static void awaitServing(List<Service> services, Duration timeout, ChannelCredentials internal) {
        awaitServing(services, timeout, internal, service -> {});
    }

    /**
     * As {@link #awaitServing(List, Duration, ChannelCredentials)}; {@code stillStarting} is asked about the service
     * waited for between tries and throws when it can no longer come up (its process has exited).
     */
    static void awaitServing(
            List<Service> services, Duration timeout, ChannelCredentials internal, Consumer<Service> stillStarting) {
        long deadline = System.nanoTime() + timeout.toNanos();
        for (Service service : services) {
            ManagedChannel channel = service.name().equals("gateway")
                    ? Channels.open(service.grpcTarget(), gatewayProbeCredentials(service))
                    : Channels.open(service.grpcTarget(), internal);
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
                    stillStarting.accept(service);
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

    /**
     * The gateway's public certificate may name any host, not 127.0.0.1: the liveness probe (no request data)
     * does not check it. Clients of the gateway do.
     */
    private static ChannelCredentials gatewayProbeCredentials(Service gateway) {
        return gateway.properties().containsKey(PUBLIC_TLS + "certificate")
                ? TlsChannelCredentials.newBuilder()
                        .trustManager(InsecureTrustManagerFactory.INSTANCE.getTrustManagers())
                        .build()
                : InsecureChannelCredentials.create();
    }
}
