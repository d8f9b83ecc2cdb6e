package dev.goldfinch.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.goldfinch.proto.internal.v1.DecodeRequest;
import dev.goldfinch.proto.v1.FinishReason;
import dev.goldfinch.proto.v1.GenerateRequest;
import dev.goldfinch.proto.v1.GenerateResponse;
import dev.goldfinch.proto.v1.GenerationGrpc;
import io.grpc.Status;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;

/** One generation through the gateway: routing, the retry before the first token, stop sequences, cancellation. */
class GenerationPipelineTest {
    private static GatewayFixture mesh;

    @BeforeAll
    static void start() throws Exception {
        mesh = new GatewayFixture(Map.of());
    }

    @AfterAll
    static void stop() {
        mesh.close();
    }

    @BeforeEach
    void reset() {
        mesh.reset();
    }

    private static String text(GatewayFixture.Reply r) {
        assertEquals(200, r.status(), r.body().toString());
        return r.body().get("choices").get(0).get("text").asString();
    }

    private static String finish(GatewayFixture.Reply r) {
        return r.body().get("choices").get(0).get("finish_reason").asString();
    }

    /** The JSON events of a stream, up to [DONE]. */
    private static List<JsonNode> events(HttpResponse<Stream<String>> r) {
        assertEquals(200, r.statusCode());
        try (Stream<String> lines = r.body()) {
            return lines.filter(l -> l.startsWith("data: ") && !l.equals("data: [DONE]"))
                    .map(l -> GatewayFixture.JSON.readTree(l.substring(6)))
                    .toList();
        }
    }

    // --- routing ---

    @Test
    void aSecondRequestGoesToTheLessLoadedReplica() throws Exception {
        mesh.decodeA.scripts.add(FakeDecode.thenRepeat(TestVocab.MORE, TestVocab.HELLO));
        HttpResponse<Stream<String>> held = mesh.stream(
                "/v1/completions", GatewayFixture.body("prompt", "Hello", "stream", true, "max_tokens", 16));
        try {
            GatewayFixture.await(() -> mesh.decodeA.requests.size() == 1, "the first request on A (a tie goes to A)");
            assertEquals("Hello", text(mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hi"))));
            assertEquals(1, mesh.decodeB.requests.size(), "A holds a live sequence: B is less loaded");
            assertEquals(1, mesh.decodeA.requests.size());
        } finally {
            held.body().close();
        }
    }

    @Test
    void anEntryGoesBackToTheReplicaThatServedItWhileWithinTheSlack() throws Exception {
        Map<String, Object> request = GatewayFixture.body("prompt", "Hello world");
        text(mesh.post("/v1/completions", request));
        assertEquals(1, mesh.decodeA.requests.size());
        mesh.decodeA.scripts.add(FakeDecode.thenRepeat(TestVocab.MORE, TestVocab.HELLO));
        HttpResponse<Stream<String>> held = mesh.stream(
                "/v1/completions", GatewayFixture.body("prompt", "Hello", "stream", true, "max_tokens", 16));
        try {
            GatewayFixture.await(() -> mesh.decodeA.requests.size() == 2, "the held request on A");
            text(mesh.post("/v1/completions", request));
            assertEquals(
                    3, mesh.decodeA.requests.size(), "back to A, one sequence busier than B but holding the entry");
            assertTrue(mesh.decodeB.requests.isEmpty());
            assertEquals(
                    mesh.decodeA.requests.get(0).getEntry(),
                    mesh.decodeA.requests.get(2).getEntry());
        } finally {
            held.body().close();
        }
    }

    @Test
    void anUnhealthyReplicaIsSkipped() throws Exception {
        mesh.healthA.setStatus("", ServingStatus.NOT_SERVING);
        GatewayFixture.await(
                () -> mesh.router().replicas().stream().anyMatch(r -> !r.healthy), "the gateway sees A down");
        for (int i = 0; i < 3; i++) {
            assertEquals("Hello", text(mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello " + i))));
        }
        assertTrue(mesh.decodeA.requests.isEmpty());
        assertEquals(3, mesh.decodeB.requests.size());
    }

    // --- retry before the first token, and only then ---

    @Test
    void aReplicaThatGoesAwayBeforeTheFirstTokenIsRetriedElsewhere() throws Exception {
        mesh.decodeA.scripts.add(FakeDecode.fail(Status.UNAVAILABLE.withDescription("going away")));
        GatewayFixture.Reply r = mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello"));
        assertEquals("Hello", text(r));
        assertEquals(1, mesh.decodeA.requests.size());
        assertEquals(1, mesh.decodeB.requests.size());
        assertEquals(1, mesh.prefill.requests.size(), "the entry is still in the cache: no second prefill");
        assertEquals(mesh.decodeA.requests.getFirst(), mesh.decodeB.requests.getFirst(), "the same request, elsewhere");
    }

    @Test
    void aReplicaThatLostTheEntryIsRetriedElsewhereAfterPrefillingAgain() throws Exception {
        mesh.decodeA.scripts.add(FakeDecode.fail(Status.NOT_FOUND.withDescription("entry evicted")));
        assertEquals("Hello", text(mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello"))));
        assertEquals(2, mesh.prefill.requests.size(), "prefilled again: the entry was gone");
        assertEquals(1, mesh.decodeA.requests.size());
        assertEquals(1, mesh.decodeB.requests.size());
    }

    @Test
    void eachReplicaIsTriedOnceAndTheLastErrorIsReported() throws Exception {
        mesh.decodeA.scripts.add(FakeDecode.fail(Status.UNAVAILABLE.withDescription("A going away")));
        mesh.decodeB.scripts.add(FakeDecode.fail(Status.UNAVAILABLE.withDescription("B going away")));
        GatewayFixture.Reply r = mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello"));
        assertEquals(503, r.status(), r.body().toString());
        assertEquals("B going away", r.body().get("error").get("message").asString());
        assertEquals(2, mesh.decodeA.requests.size() + mesh.decodeB.requests.size());
    }

    // --- failover mid-stream ---

    @Test
    void aReplicaThatDiesMidStreamIsReplacedByOneResumingAfterTheSentTokens() throws Exception {
        mesh.decodeA.scripts.add(FakeDecode.fail(
                Status.UNAVAILABLE.withDescription("gone mid-stream"), TestVocab.HELLO, TestVocab.WORLD));
        mesh.decodeB.scripts.add(FakeDecode.finish(FinishReason.FINISH_REASON_LENGTH, TestVocab.MORE));
        List<JsonNode> events = events(mesh.stream(
                "/v1/completions",
                GatewayFixture.body(
                        "prompt",
                        "Hello",
                        "stream",
                        true,
                        "max_tokens",
                        3,
                        "stream_options",
                        Map.of("include_usage", true))));
        StringBuilder text = new StringBuilder();
        events.stream()
                .filter(e -> e.has("choices") && !e.get("choices").isEmpty())
                .forEach(e -> text.append(e.get("choices").get(0).get("text").asString()));
        assertEquals("Hello world more", text.toString(), "none lost, none repeated");
        JsonNode usage = events.getLast().get("usage");
        assertNotNull(usage, events.getLast().toString());
        assertEquals(3, usage.get("completion_tokens").asInt(), "each token counted once");
        assertEquals(1, mesh.decodeB.requests.size());
        DecodeRequest resumed = mesh.decodeB.requests.getFirst();
        assertEquals(List.of(TestVocab.HELLO, TestVocab.WORLD), resumed.getResumeTokensList());
        assertEquals(mesh.decodeA.requests.getFirst().getEntry(), resumed.getEntry(), "the same prompt entry");
        assertEquals(mesh.decodeA.requests.getFirst().getSampling(), resumed.getSampling(), "the same seed and params");
        assertEquals(1, mesh.prefill.requests.size(), "the entry is still cached: no second prefill");
    }

    @Test
    void aReplicaThatEndsTheCallItselfMidStreamIsReplacedToo() throws Exception {
        // What a draining replica does to a call it will not finish.
        mesh.decodeA.scripts.add(
                FakeDecode.fail(Status.CANCELLED.withDescription("server shutting down"), TestVocab.HELLO));
        mesh.decodeB.scripts.add(FakeDecode.finish(FinishReason.FINISH_REASON_LENGTH, TestVocab.WORLD));
        GatewayFixture.Reply r = mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello", "max_tokens", 2));
        assertEquals("Hello world", text(r));
        assertEquals(2, r.body().get("usage").get("completion_tokens").asInt());
        assertEquals(List.of(TestVocab.HELLO), mesh.decodeB.requests.getFirst().getResumeTokensList());
    }

    @Test
    void aFailureNoOtherReplicaCanFixIsNotRetried() throws Exception {
        mesh.decodeA.scripts.add(
                FakeDecode.fail(Status.INTERNAL.withDescription("gone mid-stream"), TestVocab.HELLO, TestVocab.WORLD));
        List<JsonNode> events =
                events(mesh.stream("/v1/completions", GatewayFixture.body("prompt", "Hello", "stream", true)));
        StringBuilder text = new StringBuilder();
        events.stream()
                .filter(e -> e.has("choices"))
                .forEach(e -> text.append(e.get("choices").get(0).get("text").asString()));
        assertEquals("Hello world", text.toString(), "what was streamed stays streamed");
        JsonNode error = events.getLast().get("error");
        assertNotNull(error, events.getLast().toString());
        assertEquals("gone mid-stream", error.get("message").asString());
        assertEquals("server_error", error.get("type").asString());
        assertTrue(mesh.decodeB.requests.isEmpty(), "no retry of an internal failure");
        assertEquals(1, mesh.prefill.requests.size());
    }

    // --- stop sequences arriving in pieces ---

    @Test
    void aStopSplitAcrossTokensIsCutExactlyAndTheDecodeIsCancelled() throws Exception {
        mesh.decodeA.scripts.add(
                FakeDecode.thenRepeat(TestVocab.MORE, TestVocab.HELLO, TestVocab.XX_S, TestVocab.T, TestVocab.OP_YY));
        GatewayFixture.Reply r =
                mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello", "stop", "STOP", "max_tokens", 16));
        assertEquals("Helloxx", text(r));
        assertEquals("stop", finish(r));
        assertNotNull(mesh.decodeA.cancelled.poll(10, TimeUnit.SECONDS), "the gateway cancels the decode at the stop");
    }

    @Test
    void aStreamedStopSplitAcrossTokensEmitsNothingAfterIt() throws Exception {
        mesh.decodeA.scripts.add(FakeDecode.thenRepeat(TestVocab.MORE, TestVocab.XX_S, TestVocab.T, TestVocab.OP_YY));
        List<JsonNode> events = events(mesh.stream(
                "/v1/completions",
                GatewayFixture.body(
                        "prompt", "Hello", "stop", List.of("nope", "STOP"), "stream", true, "max_tokens", 16)));
        StringBuilder text = new StringBuilder();
        String finish = null;
        for (JsonNode e : events) {
            JsonNode choice = e.get("choices").get(0);
            text.append(choice.get("text").asString());
            if (!choice.get("finish_reason").isNull()) {
                finish = choice.get("finish_reason").asString();
            }
        }
        assertEquals("xx", text.toString());
        assertEquals("stop", finish);
        assertNotNull(mesh.decodeA.cancelled.poll(10, TimeUnit.SECONDS));
    }

    @Test
    void aStopWhoseBytesSplitACharacterIsCutToo() throws Exception {
        byte[] eAcute = "\u00e9".getBytes(java.nio.charset.StandardCharsets.UTF_8);
        mesh.decodeA.scripts.add(FakeDecode.thenRepeat(
                TestVocab.MORE,
                TestVocab.HELLO,
                TestVocab.ofByte(eAcute[0]),
                TestVocab.ofByte(eAcute[1]),
                TestVocab.ofByte('!'),
                TestVocab.WORLD));
        GatewayFixture.Reply r = mesh.post(
                "/v1/completions", GatewayFixture.body("prompt", "Hello", "stop", "\u00e9!", "max_tokens", 16));
        assertEquals("Hello", text(r));
        assertEquals("stop", finish(r));
    }

    @Test
    void aPartialStopThatDoesNotCompleteIsReleased() throws Exception {
        mesh.decodeA.scripts.add(
                FakeDecode.finish(FinishReason.FINISH_REASON_LENGTH, TestVocab.XX_S, TestVocab.T, TestVocab.MORE));
        GatewayFixture.Reply r =
                mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello", "stop", "STOP", "max_tokens", 3));
        assertEquals("xxST more", text(r));
        assertEquals("length", finish(r));
    }

    @Test
    void chatStopsWhereTheModelStartsTheUsersTurn() throws Exception {
        mesh.decodeA.scripts.add(FakeDecode.thenRepeat(
                TestVocab.MORE,
                TestVocab.ofByte(' '),
                TestVocab.HELLO,
                TestVocab.NEWLINES,
                TestVocab.USER,
                TestVocab.COLON,
                TestVocab.WORLD));
        GatewayFixture.Reply r = mesh.post(
                "/v1/chat/completions",
                GatewayFixture.body("messages", List.of(Map.of("role", "user", "content", "Hi"))));
        assertEquals(200, r.status(), r.body().toString());
        JsonNode choice = r.body().get("choices").get(0);
        assertEquals(" Hello", choice.get("message").get("content").asString());
        assertEquals("stop", choice.get("finish_reason").asString());
        DecodeRequest sent = mesh.decodeA.requests.getFirst();
        assertTrue(sent.getCheckpointAtEnd(), "a chat turn leaves a checkpoint for the next");
    }

    // --- cancellation ---

    @Test
    void aGrpcClientThatCancelsCancelsTheDecode() throws Exception {
        mesh.decodeA.scripts.add(FakeDecode.thenRepeat(TestVocab.MORE, TestVocab.HELLO));
        CompletableFuture<ClientCallStreamObserver<GenerateRequest>> call = new CompletableFuture<>();
        CompletableFuture<String> firstText = new CompletableFuture<>();
        GenerationGrpc.newStub(mesh.gatewayChannel())
                .generate(
                        GenerateRequest.newBuilder()
                                .setPromptUtf8(ByteString.copyFromUtf8("Hello"))
                                .setCacheSalt(java.util.UUID.randomUUID().toString())
                                .setSampling(dev.goldfinch.proto.v1.SamplingParams.newBuilder()
                                        .setMaxTokens(16))
                                .build(),
                        new ClientResponseObserver<GenerateRequest, GenerateResponse>() {
                            @Override
                            public void beforeStart(ClientCallStreamObserver<GenerateRequest> requestStream) {
                                call.complete(requestStream);
                            }

                            @Override
                            public void onNext(GenerateResponse r) {
                                firstText.complete(r.getText());
                            }

                            @Override
                            public void onError(Throwable t) {
                                firstText.completeExceptionally(t);
                            }

                            @Override
                            public void onCompleted() {}
                        });
        assertEquals("Hello", firstText.get(10, TimeUnit.SECONDS));
        assertTrue(mesh.decodeA.cancelled.isEmpty());
        call.get().cancel("the user closed the tab", null);
        DecodeRequest cancelled = mesh.decodeA.cancelled.poll(10, TimeUnit.SECONDS);
        assertNotNull(cancelled, "the decode replica saw the cancellation");
        assertEquals(mesh.decodeA.requests.getFirst(), cancelled);
        GatewayFixture.await(
                () -> mesh.router().replicas().stream().allMatch(r -> r.live() == 0),
                "the sequence is no longer counted");
    }

    @Test
    void aGrpcClientThatCancelsDuringPrefillCancelsThePrefill() throws Exception {
        mesh.prefill.holdNext.set(true);
        CompletableFuture<ClientCallStreamObserver<GenerateRequest>> call = new CompletableFuture<>();
        CompletableFuture<Throwable> ended = new CompletableFuture<>();
        GenerationGrpc.newStub(mesh.gatewayChannel())
                .generate(
                        GenerateRequest.newBuilder()
                                .setPromptUtf8(ByteString.copyFromUtf8("Hello"))
                                .setCacheSalt(java.util.UUID.randomUUID().toString())
                                .build(),
                        new ClientResponseObserver<GenerateRequest, GenerateResponse>() {
                            @Override
                            public void beforeStart(ClientCallStreamObserver<GenerateRequest> requestStream) {
                                call.complete(requestStream);
                            }

                            @Override
                            public void onNext(GenerateResponse r) {}

                            @Override
                            public void onError(Throwable t) {
                                ended.complete(t);
                            }

                            @Override
                            public void onCompleted() {
                                ended.complete(null);
                            }
                        });
        GatewayFixture.await(() -> mesh.prefill.requests.size() == 1, "the prefill call is running");
        assertTrue(mesh.prefill.cancelled.isEmpty());
        call.get().cancel("the user gave up waiting", null);
        assertNotNull(mesh.prefill.cancelled.poll(10, TimeUnit.SECONDS), "the prefill service saw the cancellation");
        assertTrue(mesh.decodeA.requests.isEmpty() && mesh.decodeB.requests.isEmpty(), "no decode was started");
        // Its admission slot is back: the next request runs.
        assertEquals("Hello", text(mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello"))));
    }

    @Test
    void anHttpClientThatGoesAwayCancelsTheDecode() throws Exception {
        mesh.decodeA.scripts.add(FakeDecode.thenRepeat(TestVocab.MORE, TestVocab.HELLO));
        HttpResponse<Stream<String>> r = mesh.stream(
                "/v1/completions", GatewayFixture.body("prompt", "Hello", "stream", true, "max_tokens", 16));
        DecodeRequest mine;
        try {
            assertEquals(200, r.statusCode());
            Iterator<String> lines = r.body().iterator();
            String first = lines.next();
            assertTrue(first.startsWith("data: ") && first.contains("Hello"), first);
            mine = mesh.decodeA.requests.getLast();
            // Only this request's cancellation counts: an earlier test's may still be arriving.
            assertFalse(mesh.decodeA.cancelled.contains(mine), "not cancelled while the client reads");
        } finally {
            r.body().close();
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!mesh.decodeA.cancelled.contains(mine) && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertTrue(mesh.decodeA.cancelled.contains(mine), "the decode replica saw the cancellation");
    }

    @Test
    void aGenerationLeftAloneIsNotCancelled() throws Exception {
        // The end of text comes as its own token, which is not text.
        mesh.decodeA.scripts.add(FakeDecode.finish(
                FinishReason.FINISH_REASON_END_OF_TEXT,
                TestVocab.HELLO,
                TestVocab.WORLD,
                dev.goldfinch.model.tokenizer.WorldTokenizer.END_OF_TEXT));
        GatewayFixture.Reply r = mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello", "max_tokens", 16));
        assertEquals("Hello world", text(r));
        assertEquals("stop", finish(r));
        List<GenerateResponse> viaGrpc = new ArrayList<>();
        mesh.decodeA.scripts.add(FakeDecode.finish(FinishReason.FINISH_REASON_LENGTH, TestVocab.HELLO));
        mesh.generation()
                .generate(GenerateRequest.newBuilder()
                        .setPromptUtf8(ByteString.copyFromUtf8("Hello"))
                        .setCacheSalt(java.util.UUID.randomUUID().toString())
                        .build())
                .forEachRemaining(viaGrpc::add);
        assertEquals(FinishReason.FINISH_REASON_LENGTH, viaGrpc.getLast().getFinishReason());
        assertTrue(mesh.decodeA.cancelled.isEmpty(), "a completed call is not cancelled");
        assertFalse(mesh.decodeA.requests.isEmpty());
    }
}
