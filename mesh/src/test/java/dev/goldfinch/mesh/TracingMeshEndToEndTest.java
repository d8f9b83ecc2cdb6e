package dev.goldfinch.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

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

    final List<ReceivedSpan> spans = new CopyOnWriteArrayList<>();
    HttpServer collector;
    MeshLauncher mesh;
    MeshClient client;
    LogCapture logs;

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
        LogCapture.logRequests(extra);
        mesh = MeshLauncher.start(MeshEndToEndTest.smallMesh(1, extra));
        client = new MeshClient(mesh.httpPort("gateway"), mesh.grpcPort("gateway"));
        logs = new LogCapture();
    }

    @AfterAll
    void stop() {
        if (logs != null) {
            logs.close();
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
        String traceId = logs.await(LogCapture.REQUEST_LOGGERS.get("goldfinch-gateway"), requestId)
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
                            TracingMeshEndToEndTest::role, Collectors.mapping(ReceivedSpan::name, Collectors.toSet())));
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
                            .filter(s -> role(s).equals(service))
                            .anyMatch(s -> trace.stream()
                                    .anyMatch(p -> p.spanId().equals(s.parentSpanId()) && !role(p).equals(service))),
                    service + " has no span whose parent is in another service: " + trace);
        }

        for (var e : LogCapture.REQUEST_LOGGERS.entrySet()) {
            LogCapture.Line line = logs.await(e.getValue(), requestId);
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
        for (String logger : LogCapture.REQUEST_LOGGERS.values()) {
            logs.await(logger, id);
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

    /** The service a span came from, a decode replica ({@code goldfinch-decode-1}, …) counted as decode. */
    static String role(ReceivedSpan span) {
        return span.service().replaceFirst("^goldfinch-decode-\\d+$", "goldfinch-decode");
    }
}
