package dev.goldfinch.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.AppenderBase;
import com.sun.net.httpserver.HttpServer;
import io.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
import io.opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse;
import io.opentelemetry.proto.common.v1.KeyValue;
import io.opentelemetry.proto.trace.v1.ResourceSpans;
import io.opentelemetry.proto.trace.v1.ScopeSpans;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.slf4j.LoggerFactory;
import tools.jackson.databind.JsonNode;

/**
 * One chat request is one trace across the mesh: every service exports its spans over real OTLP/HTTP to a
 * collector this test serves on loopback, and the spans of the request's trace come from the gateway, prefill,
 * the cache store and decode, joined into one tree. The request's id (the response's {@code id}) is in the log
 * context of each service's lines about it.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TracingMeshEndToEndTest {
    /** One exported span, as the collector received it. */
    record ReceivedSpan(String service, String traceId, String spanId, String parentSpanId, String name) {}

    /** One log line of any service, with the log context it was written in. */
    record LogLine(String logger, String message, Map<String, String> context) {}

    /** The classes that log a line per request, one per service. */
    static final Map<String, String> REQUEST_LOGGERS = Map.of(
            "goldfinch-gateway", "dev.goldfinch.gateway.GenerationPipeline",
            "goldfinch-prefill", "dev.goldfinch.prefill.PrefillGrpcService",
            "goldfinch-cache-store", "dev.goldfinch.cache.grpc.CacheStoreGrpcService",
            "goldfinch-decode", "dev.goldfinch.decode.DecodeGrpcService");

    final List<ReceivedSpan> spans = new CopyOnWriteArrayList<>();
    final List<LogLine> logLines = new CopyOnWriteArrayList<>();
    HttpServer collector;
    MeshLauncher mesh;
    MeshClient client;
    AppenderBase<ILoggingEvent> appender;

    @BeforeAll
    void start() throws Exception {
        collector = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        collector.createContext("/v1/traces", exchange -> {
            try (InputStream in = exchange.getRequestBody()) {
                receive(ExportTraceServiceRequest.parseFrom(in));
            }
            byte[] ok = ExportTraceServiceResponse.getDefaultInstance().toByteArray();
            exchange.getResponseHeaders().add("Content-Type", "application/x-protobuf");
            exchange.sendResponseHeaders(200, ok.length == 0 ? -1 : ok.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(ok);
            }
        });
        collector.start();
        Map<String, String> extra = new java.util.HashMap<>();
        extra.put(
                "management.opentelemetry.tracing.export.otlp.endpoint",
                "http://127.0.0.1:" + collector.getAddress().getPort() + "/v1/traces");
        extra.put("management.opentelemetry.tracing.export.schedule-delay", "100ms");
        extra.put("logging.level.root", "WARN");
        REQUEST_LOGGERS.values().forEach(logger -> extra.put("logging.level." + logger, "DEBUG"));
        mesh = MeshLauncher.start(new MeshLauncher.Options(
                null,
                MeshEndToEndTest.SHAPE,
                7,
                "f32",
                null,
                null,
                1,
                0,
                0,
                MeshEndToEndTest.MAX_PROMPT,
                MeshEndToEndTest.CAP,
                null,
                extra));
        client = new MeshClient(mesh.httpPort("gateway"), mesh.grpcPort("gateway"));
        // After the mesh started: Boot sets the logging system up as the first service starts.
        appender = new AppenderBase<>() {
            @Override
            protected void append(ILoggingEvent e) {
                logLines.add(
                        new LogLine(e.getLoggerName(), e.getFormattedMessage(), Map.copyOf(e.getMDCPropertyMap())));
            }
        };
        appender.setContext((LoggerContext) LoggerFactory.getILoggerFactory());
        appender.start();
        rootLogger().addAppender(appender);
    }

    @AfterAll
    void stop() {
        if (appender != null) {
            rootLogger().detachAppender(appender);
        }
        if (client != null) {
            client.close();
        }
        if (mesh != null) {
            mesh.close();
        }
        if (collector != null) {
            collector.stop(0);
        }
    }

    private static Logger rootLogger() {
        return (Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
    }

    private void receive(ExportTraceServiceRequest request) {
        HexFormat hex = HexFormat.of();
        for (ResourceSpans resource : request.getResourceSpansList()) {
            String service = resource.getResource().getAttributesList().stream()
                    .filter(a -> a.getKey().equals("service.name"))
                    .map(KeyValue::getValue)
                    .map(v -> v.getStringValue())
                    .findFirst()
                    .orElse("?");
            for (ScopeSpans scope : resource.getScopeSpansList()) {
                for (var span : scope.getSpansList()) {
                    spans.add(new ReceivedSpan(
                            service,
                            hex.formatHex(span.getTraceId().toByteArray()),
                            hex.formatHex(span.getSpanId().toByteArray()),
                            hex.formatHex(span.getParentSpanId().toByteArray()),
                            span.getName()));
                }
            }
        }
    }

    @Test
    void oneRequestIsOneTraceThroughEveryServiceAndItsIdIsInEveryServicesLogs() throws Exception {
        MeshClient.Reply reply = client.post(
                "/v1/chat/completions",
                Map.of(
                        "messages", List.of(Map.of("role", "user", "content", "Trace me through the mesh")),
                        "max_tokens", 4,
                        "temperature", 0));
        assertEquals(200, reply.status(), () -> reply.body().toString());
        String requestId = reply.body().get("id").asString();
        assertTrue(requestId.startsWith("chatcmpl-"), requestId);

        // The gateway's own line for the request names the trace every other span must be in.
        String traceId = awaitLogLine(REQUEST_LOGGERS.get("goldfinch-gateway"), requestId)
                .context()
                .get("traceId");
        assertTrue(traceId != null && traceId.length() == 32, "gateway log line has no trace id: " + traceId);

        Map<String, Set<String>> expected = Map.of(
                "goldfinch-gateway", Set.of("tokenize", "http post /v1/chat/completions"),
                "goldfinch-prefill", Set.of("prefix lookup", "prefill compute", "entry transfer write"),
                "goldfinch-cache-store", Set.of("goldfinch.internal.v1.CacheStore/Lookup"),
                "goldfinch-decode", Set.of("queueing", "first token"));
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        Map<String, Set<String>> seen;
        while (true) {
            seen = trace(traceId).stream()
                    .collect(Collectors.groupingBy(
                            ReceivedSpan::service, Collectors.mapping(ReceivedSpan::name, Collectors.toSet())));
            Map<String, Set<String>> now = seen;
            boolean complete = expected.entrySet().stream()
                    .allMatch(e -> now.getOrDefault(e.getKey(), Set.of()).containsAll(e.getValue()));
            if ((complete && connected(trace(traceId))) || System.nanoTime() > deadline) {
                break;
            }
            Thread.sleep(100);
        }
        for (var e : expected.entrySet()) {
            Set<String> names = seen.getOrDefault(e.getKey(), Set.of());
            assertTrue(
                    names.containsAll(e.getValue()),
                    e.getKey() + " exported " + names + ", not all of " + e.getValue() + "; whole trace: " + seen);
        }
        List<ReceivedSpan> trace = trace(traceId);
        assertTrue(connected(trace), "the request's spans are not one tree: " + trace);
        // Each service's gRPC server span hangs under a client span of its caller's service.
        for (String service : List.of("goldfinch-prefill", "goldfinch-cache-store", "goldfinch-decode")) {
            assertTrue(
                    trace.stream()
                            .filter(s -> s.service().equals(service))
                            .anyMatch(s -> trace.stream()
                                    .anyMatch(p -> p.spanId().equals(s.parentSpanId())
                                            && !p.service().equals(service))),
                    service + " has no span whose parent is in another service: " + trace);
        }

        for (var e : REQUEST_LOGGERS.entrySet()) {
            LogLine line = awaitLogLine(e.getValue(), requestId);
            assertEquals(traceId, line.context().get("traceId"), e.getKey() + ": " + line);
        }
    }

    @Test
    void aMalformedClientRequestIdIsRefusedNamingTheHeader() throws Exception {
        HttpResponse<String> r = client.http.send(
                HttpRequest.newBuilder(URI.create(client.base + "/v1/chat/completions"))
                        .header("Content-Type", "application/json")
                        .header("X-Request-Id", "no spaces allowed")
                        .POST(HttpRequest.BodyPublishers.ofString(
                                "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":1}"))
                        .build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(400, r.statusCode(), r.body());
        JsonNode error = MeshClient.JSON.readTree(r.body()).get("error");
        assertEquals("X-Request-Id", error.get("param").asString(), r.body());
    }

    @Test
    void aClientRequestIdIsTheRequestIdInTheLogs() throws Exception {
        String id = "client-" + System.nanoTime();
        HttpResponse<String> r = client.http.send(
                HttpRequest.newBuilder(URI.create(client.base + "/v1/chat/completions"))
                        .header("Content-Type", "application/json")
                        .header("X-Request-Id", id)
                        .POST(HttpRequest.BodyPublishers.ofString(
                                "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi again\"}],\"max_tokens\":2}"))
                        .build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode(), r.body());
        for (String logger : REQUEST_LOGGERS.values()) {
            awaitLogLine(logger, id);
        }
    }

    /** The spans received so far of {@code traceId}. */
    private List<ReceivedSpan> trace(String traceId) {
        return spans.stream().filter(s -> s.traceId().equals(traceId)).toList();
    }

    /** One root, and every other span's parent among them. */
    private static boolean connected(List<ReceivedSpan> trace) {
        Set<String> ids = trace.stream().map(ReceivedSpan::spanId).collect(Collectors.toSet());
        long roots = trace.stream().filter(s -> s.parentSpanId().isEmpty()).count();
        return roots == 1 && trace.stream().allMatch(s -> s.parentSpanId().isEmpty() || ids.contains(s.parentSpanId()));
    }

    /** The first line of {@code logger} written with {@code requestId} in its log context (waits for it). */
    private LogLine awaitLogLine(String logger, String requestId) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (true) {
            for (LogLine line : logLines) {
                if (line.logger().equals(logger)
                        && requestId.equals(line.context().get("request_id"))) {
                    return line;
                }
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("no line of " + logger + " with request_id " + requestId + "; its lines: "
                        + logLines.stream()
                                .filter(l -> l.logger().equals(logger))
                                .toList());
            }
            Thread.sleep(50);
        }
    }
}
