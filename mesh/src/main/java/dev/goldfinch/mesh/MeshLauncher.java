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
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;

/**
 * The whole mesh in one JVM: cache store, prefill, N decode replicas and the gateway, each its own Spring
 * Boot application with its own loopback ports, talking real gRPC to each other. Used by
 * {@code goldfinch serve} and the end-to-end tests. The services share the model's weights (one copy per
 * JVM), nothing else. Inside, they speak mutual TLS: each run makes a throwaway CA and one certificate per
 * service ({@link MeshCertificates}), so an internal port refuses any client the mesh did not issue a
 * certificate to. The gateway's public ports serve TLS only when {@code goldfinch.tls.public.*} is given.
 */
public final class MeshLauncher implements AutoCloseable {
    /**
     * What to run. {@code redisUrl} null: the embedded store. {@code vocab} null: the bundled World vocabulary. Ports 0: free ones. {@code apiKeys} null: the
     * gateway serves anyone; else its {@code TENANT KEY} file.
     */
    public record Options(
            Path modelPath,
            String shape,
            long seed,
            String dtype,
            Path vocab,
            String redisUrl,
            int decodeReplicas,
            int httpPort,
            int grpcPort,
            int maxPromptTokens,
            int maxTokensCap,
            Path apiKeys,
            Map<String, String> extra) {}

    private final List<ConfigurableApplicationContext> contexts = new ArrayList<>();
    private final Map<String, Integer> grpcPorts = new LinkedHashMap<>();
    private final Map<String, Integer> httpPorts = new LinkedHashMap<>();
    private final MeshCertificates certificates = MeshCertificates.create("goldfinch-mesh-ca");
    /** The launcher's own mesh identity: its health probes and {@link #internalChannel} present it. */
    private final ChannelCredentials launcherCredentials =
            certificates.issue("launcher").channelCredentials();

    /** Extra properties under this prefix go to the gateway only. */
    private static final String PUBLIC_TLS = "goldfinch.tls.public.";

    private final Map<String, Integer> managementPorts = new LinkedHashMap<>();

    private MeshLauncher() {}

    public static MeshLauncher start(Options o) {
        MeshLauncher mesh = new MeshLauncher();
        try {
            mesh.launch(o);
            return mesh;
        } catch (RuntimeException e) {
            mesh.close();
            throw e;
        }
    }

    private void launch(Options o) {
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

        Map<String, String> store = new LinkedHashMap<>();
        if (o.redisUrl() != null) {
            store.put("goldfinch.cache.backend", "redis");
            store.put("goldfinch.cache.redis-url", o.redisUrl());
        }
        String storeTarget =
                "127.0.0.1:" + run("cache-store", CacheStoreApplication.class, "cache-store", 0, 0, store, o.extra());

        // One mesh key per run unless given: prefill and decode sign and verify with it; the store never has it.
        model.put(
                CacheClientProperties.SIGNING_KEY,
                o.extra().getOrDefault(CacheClientProperties.SIGNING_KEY, EntrySigner.randomKey()));

        Map<String, String> prefill = new LinkedHashMap<>(model);
        prefill.put("goldfinch.prefill.cache-store", storeTarget);
        String prefillTarget =
                "127.0.0.1:" + run("prefill", PrefillApplication.class, "prefill", 0, 0, prefill, o.extra());

        List<String> decodeTargets = new ArrayList<>();
        for (int i = 0; i < o.decodeReplicas(); i++) {
            Map<String, String> decode = new LinkedHashMap<>(model);
            decode.put("goldfinch.decode.cache-store", storeTarget);
            if (o.vocab() != null) { // structured outputs mask over the gateway's vocabulary
                decode.put(
                        "goldfinch.decode.vocab",
                        o.vocab().toAbsolutePath().normalize().toString());
            }
            decodeTargets.add(
                    "127.0.0.1:" + run("decode-" + i, DecodeApplication.class, "decode", 0, 0, decode, o.extra()));
        }

        Map<String, String> gateway = new LinkedHashMap<>();
        if (o.vocab() != null) { // else the gateway's bundled World vocabulary
            gateway.put(
                    "goldfinch.gateway.vocab",
                    o.vocab().toAbsolutePath().normalize().toString());
        }
        gateway.put("goldfinch.gateway.prefill", prefillTarget);
        gateway.put("goldfinch.gateway.cache-store", storeTarget); // the playground's mesh view shows its bytes
        gateway.put("goldfinch.gateway.decode-targets", String.join(",", decodeTargets));
        if (o.apiKeys() != null) {
            gateway.put(
                    "goldfinch.gateway.api-keys-file",
                    o.apiKeys().toAbsolutePath().normalize().toString());
        }
        run("gateway", GatewayApplication.class, "gateway", o.httpPort(), o.grpcPort(), gateway, o.extra());
        awaitHealthy(o.extra().containsKey(PUBLIC_TLS + "certificate"));
    }

    private int run(
            String name,
            Class<?> app,
            String profile,
            int httpPort,
            int grpcPort,
            Map<String, String> props,
            Map<String, String> extra) {
        int http = httpPort == 0 ? freePort() : httpPort;
        int grpc = grpcPort == 0 ? freePort() : grpcPort;
        List<String> args = new ArrayList<>();
        args.add("--server.port=" + http);
        args.add("--server.address=127.0.0.1");
        int management = freePort(); // Actuator, apart from the public port
        args.add("--management.server.port=" + management);
        args.add("--spring.grpc.server.port=" + grpc);
        args.add(
                "--spring.grpc.server.address=127.0.0.1:" + grpc); // host:port; a bare host would bind the default port
        TlsProperties.Mesh identity = certificates.issue(name);
        args.add("--goldfinch.tls.mesh.certificate=" + identity.certificate());
        args.add("--goldfinch.tls.mesh.private-key=" + identity.privateKey());
        args.add("--goldfinch.tls.mesh.ca=" + identity.ca());
        props.forEach((k, v) -> args.add("--" + k + "=" + v));
        extra.forEach((k, v) -> {
            if (k.equals(CacheClientProperties.SIGNING_KEY)) {
                return; // only prefill and decode get the key, via props
            }
            if (k.startsWith(PUBLIC_TLS) && !name.equals("gateway")) {
                return; // the public certificate is the gateway's; the others serve their ports with the mesh's
            }
            args.add("--" + k + "=" + v);
        });
        // The logging system is one per JVM: the first context's application name would label every line.
        args.add("--logging.include-application-name=false");
        ConfigurableApplicationContext ctx = new SpringApplicationBuilder(app)
                .main(app)
                .profiles(profile)
                .properties("spring.application.name=goldfinch-" + name)
                .run(args.toArray(String[]::new));
        contexts.add(ctx);
        grpcPorts.put(name, grpc);
        httpPorts.put(name, http);
        managementPorts.put(name, management);
        return grpc;
    }

    /** Every service answers gRPC health SERVING. */
    private void awaitHealthy(boolean publicTls) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        for (Map.Entry<String, Integer> service : grpcPorts.entrySet()) {
            ManagedChannel channel = service.getKey().equals("gateway")
                    ? Channels.open("127.0.0.1:" + service.getValue(), gatewayProbeCredentials(publicTls))
                    : internalChannel(service.getKey());
            try {
                while (true) {
                    try {
                        HealthCheckResponse r = HealthGrpc.newBlockingStub(channel)
                                .withDeadlineAfter(2, TimeUnit.SECONDS)
                                .check(HealthCheckRequest.getDefaultInstance());
                        if (r.getStatus() == HealthCheckResponse.ServingStatus.SERVING) {
                            break;
                        }
                    } catch (RuntimeException e) {
                        if (System.nanoTime() > deadline) {
                            throw new IllegalStateException(service.getKey() + " did not become healthy", e);
                        }
                    }
                    Thread.sleep(50);
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
    private static ChannelCredentials gatewayProbeCredentials(boolean publicTls) {
        return publicTls
                ? TlsChannelCredentials.newBuilder()
                        .trustManager(InsecureTrustManagerFactory.INSTANCE.getTrustManagers())
                        .build()
                : InsecureChannelCredentials.create();
    }

    /** A channel to an internal service's gRPC port, presenting a certificate of this mesh's CA. */
    public ManagedChannel internalChannel(String service) {
        return Channels.open("127.0.0.1:" + grpcPort(service), launcherCredentials);
    }

    /** The throwaway CA of this run (PEM), e.g. to test that a port refuses other certificates. */
    public Path meshCa() {
        return certificates.caFile();
    }

    public int grpcPort(String service) {
        return grpcPorts.get(service);
    }

    /** The public HTTP port: the API (gateway), {@code /health} and {@code /metrics}. */
    public int httpPort(String service) {
        return httpPorts.get(service);
    }

    /** Actuator's port (loopback): {@code /actuator/health}, {@code /actuator/prometheus} and the rest. */
    public int managementPort(String service) {
        return managementPorts.get(service);
    }

    public Map<String, Integer> grpcPorts() {
        return Map.copyOf(grpcPorts);
    }

    public <T> T bean(String service, Class<T> type) {
        int i = new ArrayList<>(grpcPorts.keySet()).indexOf(service);
        return contexts.get(i).getBean(type);
    }

    static int freePort() {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public void close() {
        for (int i = contexts.size() - 1; i >= 0; i--) {
            contexts.get(i).close();
        }
        contexts.clear();
        certificates.close();
    }
}
