package dev.goldfinch.gateway;

import dev.goldfinch.proto.v1.GenerationGrpc;
import io.grpc.BindableService;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import java.io.IOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The real gateway (its Spring Boot application, HTTP on a free loopback port, gRPC in-process) in front
 * of a {@link FakePrefill} and two {@link FakeDecode} replicas, each a real gRPC server on grpc-java's
 * in-process transport with a health service. The gateway reaches them through its {@link ChannelOpener},
 * replaced here by one that opens in-process channels: nothing else of the gateway is stood in for.
 */
final class GatewayFixture implements AutoCloseable {
    static final JsonMapper JSON = JsonMapper.builder().build();

    final FakePrefill prefill = new FakePrefill();
    /** A second prefill replica, behind the gateway only in a fixture built {@link #withTwoPrefillReplicas}. */
    final FakePrefill prefillB = new FakePrefill();

    final FakeDecode decodeA;
    final FakeDecode decodeB;
    /** Prefill replica A's health ({@link #prefillB} has no health service: the gateway trusts its calls). */
    final HealthStatusManager prefillHealth = new HealthStatusManager();

    final HealthStatusManager healthA = new HealthStatusManager();
    final HealthStatusManager healthB = new HealthStatusManager();
    private final List<Server> servers = new ArrayList<>();
    private final List<ManagedChannel> channels = new ArrayList<>();
    private final ConfigurableApplicationContext gateway;
    private final String gatewayGrpcName;
    private final HttpClient http = HttpClient.newHttpClient();
    private final int httpPort;
    private volatile int nettyGrpcPort = -1;

    /** {@code properties}: more gateway properties; {@code extraServices}: more gRPC services for the gateway's own server. */
    GatewayFixture(Map<String, String> properties, BindableService... extraServices) throws IOException {
        this(FakePrefill.MODEL, properties, extraServices);
    }

    /** As above, with the model the fake prefill describes (the gateway asks once, at start). */
    GatewayFixture(
            dev.goldfinch.proto.v1.ModelInfo model, Map<String, String> properties, BindableService... extraServices)
            throws IOException {
        this(model, 1, properties, extraServices);
    }

    /** A gateway in front of two prefill replicas, {@link #prefill} and {@link #prefillB} (A wins a tie). */
    static GatewayFixture withTwoPrefillReplicas(Map<String, String> properties) throws IOException {
        return new GatewayFixture(FakePrefill.MODEL, 2, properties);
    }

    private GatewayFixture(
            dev.goldfinch.proto.v1.ModelInfo model,
            int prefillReplicas,
            Map<String, String> properties,
            BindableService... extraServices)
            throws IOException {
        prefill.model = model;
        prefillB.model = model;
        String run = UUID.randomUUID().toString();
        String prefillName = "prefill-a-" + run;
        String prefillBName = "prefill-b-" + run;
        // Names sort as the replicas do by target: A wins a tie.
        decodeA = new FakeDecode("decode-a-" + run);
        decodeB = new FakeDecode("decode-b-" + run);
        servers.add(InProcessServerBuilder.forName(prefillName)
                .addService(prefill)
                .addService(prefillHealth.getHealthService())
                .build()
                .start());
        servers.add(InProcessServerBuilder.forName(prefillBName)
                .addService(prefillB)
                .build()
                .start());
        servers.add(InProcessServerBuilder.forName(decodeA.target)
                .addService(decodeA)
                .addService(healthA.getHealthService())
                .build()
                .start());
        servers.add(InProcessServerBuilder.forName(decodeB.target)
                .addService(decodeB)
                .addService(healthB.getHealthService())
                .build()
                .start());
        gatewayGrpcName = "gateway-" + run;
        Map<String, String> props = new LinkedHashMap<>();
        props.put("server.port", "0");
        props.put("server.address", "127.0.0.1");
        props.put("spring.grpc.server.inprocess.name", gatewayGrpcName);
        // The Netty server starts too: on a free loopback port, never the profile's fixed one.
        props.put("spring.grpc.server.port", "0");
        props.put("spring.grpc.server.address", "127.0.0.1:0");
        props.put("management.server.port", "0"); // Actuator on a port of its own, as in production
        props.put("spring.application.name", "goldfinch-gateway-test");
        props.put("goldfinch.gateway.vocab", vocab().toString());
        props.put("goldfinch.gateway.prefill", prefillReplicas == 1 ? prefillName : prefillName + "," + prefillBName);
        props.put("goldfinch.gateway.decode-targets", decodeA.target + "," + decodeB.target);
        props.put("goldfinch.gateway.health-interval", "100ms");
        props.putAll(properties);
        ChannelOpener inProcess = target -> {
            ManagedChannel c = InProcessChannelBuilder.forName(target).build();
            synchronized (channels) {
                channels.add(c);
            }
            return c;
        };
        // As arguments: they must win over application-gateway.properties (its fixed ports).
        String[] args = props.entrySet().stream()
                .map(e -> "--" + e.getKey() + "=" + e.getValue())
                .toArray(String[]::new);
        gateway = new SpringApplicationBuilder(GatewayApplication.class)
                .profiles("gateway")
                .initializers(ctx -> {
                    ctx.getBeanFactory().registerSingleton("channelOpener", inProcess);
                    for (int i = 0; i < extraServices.length; i++) {
                        ctx.getBeanFactory().registerSingleton("extraGrpcService" + i, extraServices[i]);
                    }
                })
                .listeners((org.springframework.context.ApplicationListener<
                                org.springframework.grpc.server.lifecycle.GrpcServerStartedEvent>)
                        started -> nettyGrpcPort = Math.max(nettyGrpcPort, started.getPort()))
                .run(args);
        httpPort = Integer.parseInt(gateway.getEnvironment().getProperty("local.server.port"));
    }

    /** A request body; a salt of its own unless given, so no entry (and no replica affinity) carries over from another test. */
    static Map<String, Object> body(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("cache_salt", java.util.UUID.randomUUID().toString());
        for (int i = 0; i < kv.length; i += 2) {
            m.put((String) kv[i], kv[i + 1]);
        }
        return m;
    }

    static Path vocab() {
        try {
            return Path.of(GatewayFixture.class.getResource("/test-vocab.txt").toURI());
        } catch (URISyntaxException e) {
            throw new AssertionError(e);
        }
    }

    /** Between tests: fakes forget, every replica serves, and the gateway has seen it. */
    void reset() {
        prefill.reset();
        prefillB.reset();
        decodeA.reset();
        decodeB.reset();
        prefillHealth.setStatus("", ServingStatus.SERVING);
        healthA.setStatus("", ServingStatus.SERVING);
        healthB.setStatus("", ServingStatus.SERVING);
        await(() -> router().replicas().stream().allMatch(r -> r.healthy), "every replica healthy again");
        await(() -> prefillRouter().replicas().stream().allMatch(r -> r.healthy), "every prefill replica healthy");
        await(() -> router().replicas().stream().allMatch(r -> r.live() == 0), "no sequence left live");
    }

    GenerationPipeline pipeline() {
        return gateway.getBean(GenerationPipeline.class);
    }

    HttpClient http() {
        return http;
    }

    /** The gateway's public HTTP port. */
    int httpPort() {
        return httpPort;
    }

    /** The decode replicas' router. */
    ReplicaRouter router() {
        return gateway.getBean(ReplicaRouter.class);
    }

    ReplicaRouter prefillRouter() {
        return gateway.getBean("prefillRouter", ReplicaRouter.class);
    }

    /** The loopback port of the gateway's Netty gRPC server (beside its in-process one). */
    int nettyGrpcPort() {
        return nettyGrpcPort;
    }

    /** The port Actuator answers on, apart from the public one. */
    int managementPort() {
        return Integer.parseInt(gateway.getEnvironment().getProperty("local.management.port"));
    }

    record TextReply(int status, String contentType, String body) {}

    /** A GET to {@code port} (the public one: 0) whose answer need not be JSON. */
    TextReply getText(int port, String path, String apiKey) throws IOException, InterruptedException {
        HttpRequest.Builder b = HttpRequest.newBuilder(
                        URI.create("http://127.0.0.1:" + (port == 0 ? httpPort : port) + path))
                .timeout(Duration.ofSeconds(20))
                .GET();
        if (apiKey != null) {
            b.header("Authorization", "Bearer " + apiKey);
        }
        HttpResponse<String> r = http.send(b.build(), HttpResponse.BodyHandlers.ofString());
        return new TextReply(
                r.statusCode(), r.headers().firstValue("Content-Type").orElse(""), r.body());
    }

    /** A POST of {@code body} without a Content-Length (chunked), as a streaming client sends it. */
    Reply postChunked(String path, byte[] body) throws IOException, InterruptedException {
        HttpResponse<byte[]> r = http.send(
                request(path)
                        .POST(HttpRequest.BodyPublishers.ofInputStream(() -> new java.io.ByteArrayInputStream(body)))
                        .build(),
                HttpResponse.BodyHandlers.ofByteArray());
        return new Reply(r.statusCode(), JSON.readTree(r.body()));
    }

    /** A channel to the gateway's own gRPC server. */
    GenerationGrpc.GenerationBlockingStub generation() {
        return GenerationGrpc.newBlockingStub(gatewayChannel()).withDeadlineAfter(10, TimeUnit.SECONDS);
    }

    ManagedChannel gatewayChannel() {
        ManagedChannel c = InProcessChannelBuilder.forName(gatewayGrpcName).build();
        synchronized (channels) {
            channels.add(c);
        }
        return c;
    }

    record Reply(int status, JsonNode body) {}

    Reply post(String path, Object body) throws IOException, InterruptedException {
        return send(request(path), body);
    }

    /** A POST with {@code Authorization: Bearer apiKey}. */
    Reply post(String path, Object body, String apiKey) throws IOException, InterruptedException {
        return send(request(path).header("Authorization", "Bearer " + apiKey), body);
    }

    Reply get(String path, String apiKey) throws IOException, InterruptedException {
        HttpRequest.Builder b = request(path).GET();
        if (apiKey != null) {
            b.header("Authorization", "Bearer " + apiKey);
        }
        HttpResponse<byte[]> r = http.send(b.build(), HttpResponse.BodyHandlers.ofByteArray());
        return new Reply(r.statusCode(), JSON.readTree(r.body()));
    }

    private Reply send(HttpRequest.Builder request, Object body) throws IOException, InterruptedException {
        byte[] bytes = body instanceof byte[] b ? b : JSON.writeValueAsBytes(body);
        HttpResponse<byte[]> r = http.send(
                request.POST(HttpRequest.BodyPublishers.ofByteArray(bytes)).build(),
                HttpResponse.BodyHandlers.ofByteArray());
        return new Reply(r.statusCode(), JSON.readTree(r.body()));
    }

    /** The server-sent events of a streamed completion, as they arrive. */
    HttpResponse<java.util.stream.Stream<String>> stream(String path, Object body)
            throws IOException, InterruptedException {
        return stream(request(path), body);
    }

    /** A streamed completion with {@code Authorization: Bearer apiKey}. */
    HttpResponse<java.util.stream.Stream<String>> stream(String path, Object body, String apiKey)
            throws IOException, InterruptedException {
        return stream(request(path).header("Authorization", "Bearer " + apiKey), body);
    }

    private HttpResponse<java.util.stream.Stream<String>> stream(HttpRequest.Builder request, Object body)
            throws IOException, InterruptedException {
        return http.send(
                request.POST(HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(body)))
                        .build(),
                HttpResponse.BodyHandlers.ofLines());
    }

    HttpRequest.Builder request(String path) {
        return HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + httpPort + path))
                .timeout(Duration.ofSeconds(20))
                .header("Content-Type", "application/json");
    }

    static void await(BooleanSupplier condition, String what) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for: " + what);
            }
            try {
                Thread.sleep(10);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError(e);
            }
        }
    }

    @Override
    public void close() {
        gateway.close();
        synchronized (channels) {
            channels.forEach(ManagedChannel::shutdownNow);
        }
        servers.forEach(Server::shutdownNow);
    }
}
