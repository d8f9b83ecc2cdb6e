package dev.goldfinch.mesh;

import dev.goldfinch.service.Channels;
import dev.goldfinch.service.tls.MeshCertificates;
import dev.goldfinch.service.tls.TlsProperties;
import io.grpc.ChannelCredentials;
import io.grpc.ManagedChannel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;

/**
 * The whole mesh in one JVM: cache store, prefill, N decode replicas and the gateway, each its own Spring
 * Boot application with its own loopback ports, talking real gRPC to each other. Used by
 * {@code goldfinch serve} and the end-to-end tests. The services share the model's weights (one copy per
 * JVM), nothing else. What each service runs with is {@link MeshPlan}'s, as for {@link ProcessMeshLauncher}.
 */
public final class MeshLauncher implements AutoCloseable {
    /**
     * What to run. {@code redisUrl} null: the embedded store. {@code vocab} null: the gateway chooses from the
     * model (bytes for 256 tokens, else the bundled World vocabulary). Ports 0: free ones. {@code apiKeys} null: the
     * gateway serves anyone; else its {@code TENANT KEY} file. {@code publicHost}: the address the gateway's
     * public ports listen on (the other services stay on loopback). {@code prefillReplicas}: prefill services
     * behind the gateway (named {@code prefill} when one, {@code prefill-1}… when more).
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
            Map<String, String> extra,
            String publicHost,
            int prefillReplicas) {
        public Options {
            if (prefillReplicas < 1 || decodeReplicas < 1) {
                throw new IllegalArgumentException("a mesh needs at least one prefill and one decode replica");
            }
        }

        /** One prefill replica. */
        public Options(
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
                Map<String, String> extra,
                String publicHost) {
            this(
                    modelPath,
                    shape,
                    seed,
                    dtype,
                    vocab,
                    redisUrl,
                    decodeReplicas,
                    httpPort,
                    grpcPort,
                    maxPromptTokens,
                    maxTokensCap,
                    apiKeys,
                    extra,
                    publicHost,
                    1);
        }

        /** These options with {@code n} prefill replicas. */
        public Options withPrefillReplicas(int n) {
            return new Options(
                    modelPath,
                    shape,
                    seed,
                    dtype,
                    vocab,
                    redisUrl,
                    decodeReplicas,
                    httpPort,
                    grpcPort,
                    maxPromptTokens,
                    maxTokensCap,
                    apiKeys,
                    extra,
                    publicHost,
                    n);
        }

        /** On loopback only, as tests and a laptop want it. */
        public Options(
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
                Map<String, String> extra) {
            this(
                    modelPath,
                    shape,
                    seed,
                    dtype,
                    vocab,
                    redisUrl,
                    decodeReplicas,
                    httpPort,
                    grpcPort,
                    maxPromptTokens,
                    maxTokensCap,
                    apiKeys,
                    extra,
                    "127.0.0.1");
        }
    }

    private final List<ConfigurableApplicationContext> contexts = new ArrayList<>();
    private final Map<String, Integer> grpcPorts = new LinkedHashMap<>();
    private final Map<String, Integer> httpPorts = new LinkedHashMap<>();
    private final Map<String, Integer> managementPorts = new LinkedHashMap<>();
    private final MeshCertificates certificates = MeshCertificates.create("goldfinch-mesh-ca");
    /** The launcher's own mesh identity: its health probes and {@link #internalChannel} present it. */
    private final ChannelCredentials launcherCredentials =
            certificates.issue("launcher").channelCredentials();

    private MeshLauncher() {}

    public static MeshLauncher start(Options o) {
        for (int attempt = 1; ; attempt++) {
            MeshLauncher mesh = new MeshLauncher();
            try {
                mesh.launch(o);
                return mesh;
            } catch (RuntimeException e) {
                mesh.close();
                // Free ports are picked before the services bind them; another process may take one meanwhile.
                if (attempt >= 3 || !portTaken(e)) {
                    throw e;
                }
            }
        }
    }

    static boolean portTaken(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            // Netty's native transport reports a taken port as its own IOException, not a BindException.
            if (t instanceof java.net.BindException
                    || t.getClass().getSimpleName().equals("PortInUseException")
                    || (t.getMessage() != null && t.getMessage().contains(ADDRESS_IN_USE))) {
                return true;
            }
        }
        return false;
    }

    /** How the OS (and so Netty's native transport and Tomcat) words a taken port. */
    static final String ADDRESS_IN_USE = "Address already in use";

    private void launch(Options o) {
        List<MeshPlan.Service> services = MeshPlan.of(o, certificates);
        services.forEach(this::run);
        MeshPlan.awaitServing(services, Duration.ofSeconds(60), launcherCredentials);
    }

    private void run(MeshPlan.Service service) {
        List<String> args = new ArrayList<>();
        service.properties().forEach((k, v) -> args.add("--" + k + "=" + v));
        // The logging system is one per JVM: the first context's application name would label every line.
        args.add("--logging.include-application-name=false");
        ConfigurableApplicationContext ctx = new SpringApplicationBuilder(service.app())
                .main(service.app())
                .profiles(service.profile())
                .run(args.toArray(String[]::new));
        contexts.add(ctx);
        grpcPorts.put(service.name(), service.grpcPort());
        httpPorts.put(service.name(), service.httpPort());
        managementPorts.put(service.name(), service.managementPort());
    }

    /** A channel to an internal service's gRPC port, presenting a certificate of this mesh's CA. */
    public ManagedChannel internalChannel(String service) {
        return Channels.open("127.0.0.1:" + grpcPort(service), launcherCredentials);
    }

    /** A certificate of this run's CA for 127.0.0.1, e.g. to test a client that reads its identity from files. */
    public TlsProperties.Mesh issueCertificate(String name) {
        return certificates.issue(name);
    }

    /** The throwaway CA of this run (PEM), e.g. to test that a port refuses other certificates. */
    public Path meshCa() {
        return certificates.caFile();
    }

    /** Actuator's port (loopback): {@code /actuator/health}, {@code /actuator/prometheus} and the rest. */
    public int managementPort(String service) {
        return managementPorts.get(service);
    }

    public int grpcPort(String service) {
        return grpcPorts.get(service);
    }

    /** The public HTTP port: the API (gateway), {@code /health} and {@code /metrics}. */
    public int httpPort(String service) {
        return httpPorts.get(service);
    }

    public Map<String, Integer> grpcPorts() {
        return Map.copyOf(grpcPorts);
    }

    public <T> T bean(String service, Class<T> type) {
        int i = new ArrayList<>(grpcPorts.keySet()).indexOf(service);
        return contexts.get(i).getBean(type);
    }

    /** Stops one service (it drains first, as on SIGTERM); the others go on. */
    public void stop(String service) {
        int i = new ArrayList<>(grpcPorts.keySet()).indexOf(service);
        if (i < 0) {
            throw new IllegalArgumentException("no service " + service + " in this mesh");
        }
        contexts.get(i).close();
    }

    /** Stops every service at once: each drains (see GracefulDrain) in parallel rather than one after another. */
    @Override
    public void close() {
        List<Thread> closing = new ArrayList<>();
        for (int i = contexts.size() - 1; i >= 0; i--) {
            closing.add(Thread.ofPlatform().name("close-" + i).start(contexts.get(i)::close));
        }
        for (Thread t : closing) {
            try {
                t.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        contexts.clear();
        certificates.close();
    }
}
