package dev.goldfinch.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.goldfinch.proto.v1.GenerateRequest;
import dev.goldfinch.proto.v1.GenerationGrpc;
import dev.goldfinch.proto.v1.SamplingParams;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Without an OTLP endpoint nothing is sampled or exported, yet a request's id still reaches every service's
 * log lines for it: over HTTP the response's {@code id}, over gRPC the caller's {@code request_id}.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class RequestIdMeshEndToEndTest {
    MeshLauncher mesh;
    MeshClient client;
    LogCapture logs;

    @BeforeAll
    void start() {
        Map<String, String> extra = new HashMap<>();
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
    }

    @Test
    void theResponseIdIsInEveryServicesLogLinesForTheRequest() throws Exception {
        MeshClient.Reply reply = client.post(
                "/v1/chat/completions",
                Map.of(
                        "messages",
                        List.of(Map.of("role", "user", "content", "Untraced, yet identified")),
                        "max_tokens",
                        3));
        assertEquals(200, reply.status(), () -> reply.body().toString());
        String requestId = reply.body().get("id").asString();
        String traceId = null;
        for (String logger : LogCapture.REQUEST_LOGGERS.values()) {
            LogCapture.Line line = logs.await(logger, requestId);
            // Unsampled, the trace context still travels: every service's line names the same trace.
            traceId = traceId == null ? line.context().get("traceId") : traceId;
            assertEquals(traceId, line.context().get("traceId"), logger + ": " + line);
        }
        assertTrue(traceId != null && !traceId.isEmpty(), "no trace id in the log context");
    }

    @Test
    void aGrpcCallersRequestIdIsInEveryServicesLogLines() throws Exception {
        String id = "grpc-caller-" + System.nanoTime();
        var responses = GenerationGrpc.newBlockingStub(client.grpc)
                .withDeadlineAfter(120, TimeUnit.SECONDS)
                .generate(GenerateRequest.newBuilder()
                        .setPromptUtf8(ByteString.copyFromUtf8("A prompt with its own id"))
                        .setSampling(SamplingParams.newBuilder().setMaxTokens(2))
                        .setRequestId(id)
                        .build());
        responses.forEachRemaining(r -> {});
        for (String logger : LogCapture.REQUEST_LOGGERS.values()) {
            logs.await(logger, id);
        }
    }
}
