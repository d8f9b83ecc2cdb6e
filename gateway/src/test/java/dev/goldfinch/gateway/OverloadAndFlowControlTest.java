package dev.goldfinch.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.goldfinch.proto.v1.FinishReason;
import dev.goldfinch.proto.v1.GenerateRequest;
import dev.goldfinch.proto.v1.GenerateResponse;
import dev.goldfinch.proto.v1.GenerationGrpc;
import io.grpc.Deadline;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Overload, flow control, client hang-ups and deadlines, against the real gateway (HTTP and Netty gRPC on
 * loopback) in front of fake prefill and decode replicas.
 */
class OverloadAndFlowControlTest {
    static final int CAPACITY = 4;
    static GatewayFixture mesh;

    @BeforeAll
    static void start() throws Exception {
        mesh = new GatewayFixture(Map.of(
                "goldfinch.gateway.max-inflight",
                String.valueOf(CAPACITY),
                "goldfinch.gateway.request-timeout",
                "60s"));
    }

    @AfterAll
    static void stop() {
        if (mesh != null) {
            mesh.close();
        }
    }

    @BeforeEach
    void reset() {
        mesh.reset();
    }

    private static GenerateRequest prompt(String text) {
        return GenerateRequest.newBuilder()
                .setModel(FakePrefill.MODEL.getId())
                .setPromptUtf8(ByteString.copyFromUtf8(text))
                .setCacheSalt(java.util.UUID.randomUUID().toString())
                .build();
    }

    private static ManagedChannel nettyChannel(int flowControlWindow) {
        return NettyChannelBuilder.forAddress("127.0.0.1", mesh.nettyGrpcPort())
                .usePlaintext()
                .flowControlWindow(flowControlWindow)
                .build();
    }

    /** A gRPC stream that records what arrives; {@code manual}: the test asks for each message. */
    static final class Reader implements ClientResponseObserver<GenerateRequest, GenerateResponse> {
        final boolean manual;
        final List<GenerateResponse> received = new CopyOnWriteArrayList<>();
        final CompletableFuture<Status> end = new CompletableFuture<>();
        volatile ClientCallStreamObserver<GenerateRequest> call;

        Reader(boolean manual) {
            this.manual = manual;
        }

        @Override
        public void beforeStart(ClientCallStreamObserver<GenerateRequest> requestStream) {
            call = requestStream;
            if (manual) {
                requestStream.disableAutoInboundFlowControl(); // one message asked for at the start
            }
        }

        @Override
        public void onNext(GenerateResponse value) {
            received.add(value);
        }

        @Override
        public void onError(Throwable t) {
            end.complete(Status.fromThrowable(t));
        }

        @Override
        public void onCompleted() {
            end.complete(Status.OK);
        }
    }

    @Test
    void pastCapacityEveryExtraRequestIsShedAt429OrResourceExhaustedAtOnce() throws Exception {
        for (int i = 0; i < CAPACITY; i++) { // held open until their clients cancel
            mesh.decodeA.scripts.add(FakeDecode.thenRepeat(TestVocab.HELLO, TestVocab.HELLO));
            mesh.decodeB.scripts.add(FakeDecode.thenRepeat(TestVocab.HELLO, TestVocab.HELLO));
        }
        ManagedChannel channel = nettyChannel(1 << 20);
        List<Reader> holders = new ArrayList<>();
        try {
            for (int i = 0; i < CAPACITY; i++) {
                Reader r = new Reader(false);
                GenerationGrpc.newStub(channel).generate(prompt("hold " + i), r);
                holders.add(r);
            }
            GatewayFixture.await(() -> holders.stream().allMatch(h -> !h.received.isEmpty()), "every slot streaming");

            List<Long> shedNanos = Collections.synchronizedList(new ArrayList<>());
            for (int i = 0; i < 6; i++) {
                long t0 = System.nanoTime();
                var reply = mesh.http()
                        .send(
                                mesh.request("/v1/completions")
                                        .POST(java.net.http.HttpRequest.BodyPublishers.ofString(
                                                GatewayFixture.JSON.writeValueAsString(GatewayFixture.body(
                                                        "model", "test-model", "prompt", "extra " + i))))
                                        .build(),
                                HttpResponse.BodyHandlers.ofString());
                shedNanos.add(System.nanoTime() - t0);
                assertEquals(429, reply.statusCode(), reply.body());
                assertEquals(
                        HttpErrors.RETRY_AFTER_SECONDS,
                        reply.headers().firstValue("Retry-After").orElse(null));
                var error = GatewayFixture.JSON.readTree(reply.body()).path("error");
                assertFalse(error.path("message").asString("").isEmpty(), reply.body());
                assertTrue(error.has("type") && error.has("code") && error.has("param"), reply.body());

                long g0 = System.nanoTime();
                StatusRuntimeException refused = assertThrows(
                        StatusRuntimeException.class,
                        () -> GenerationGrpc.newBlockingStub(channel)
                                .withDeadlineAfter(30, TimeUnit.SECONDS)
                                .generate(prompt("extra grpc"))
                                .forEachRemaining(x -> {}));
                shedNanos.add(System.nanoTime() - g0);
                assertEquals(Status.Code.RESOURCE_EXHAUSTED, refused.getStatus().getCode(), refused.toString());
            }
            List<Long> sorted = new ArrayList<>(shedNanos);
            Collections.sort(sorted);
            System.out.printf(
                    "RELIABILITY time to shed (%d refusals past capacity %d, HTTP 429 and gRPC RESOURCE_EXHAUSTED):"
                            + " median %.1f ms, max %.1f ms%n",
                    sorted.size(), CAPACITY, sorted.get(sorted.size() / 2) / 1e6, sorted.getLast() / 1e6);
            // Generous: shedding must not wait for a slot (the held streams run for 30 s).
            assertTrue(sorted.getLast() < TimeUnit.SECONDS.toNanos(5), "shed within seconds: " + sorted);
            assertEquals(CAPACITY, holders.stream().filter(h -> !h.end.isDone()).count(), "holders unharmed");
        } finally {
            holders.forEach(h -> h.call.cancel("test over", null));
            GatewayFixture.await(() -> mesh.router().replicas().stream().allMatch(r -> r.live() == 0), "freed");
        }
        // The slots come back: the next request is served.
        mesh.decodeA.scripts.clear();
        mesh.decodeB.scripts.clear();
        var after = GenerationGrpc.newBlockingStub(channel)
                .withDeadlineAfter(30, TimeUnit.SECONDS)
                .generate(prompt("after"));
        GenerateResponse last = null;
        while (after.hasNext()) {
            last = after.next();
        }
        assertNotNull(last);
        assertEquals(FinishReason.FINISH_REASON_LENGTH, last.getFinishReason());
        channel.shutdownNow();
    }

    @Test
    void aSlowGrpcReaderHoldsBackItsDecodeStreamNotTheGatewaysHeap() throws Exception {
        int tokens = 8000;
        mesh.decodeA.scripts.add(mesh.decodeA.paced(TestVocab.HELLO, tokens));
        mesh.decodeB.scripts.add(mesh.decodeB.paced(TestVocab.HELLO, tokens));
        // A small HTTP/2 window: the client's transport takes little beyond what the reader asked for.
        ManagedChannel channel = nettyChannel(1024);
        try {
            Reader reader = new Reader(true);
            GenerationGrpc.newStub(channel).generate(prompt("slow reader"), reader);
            GatewayFixture.await(() -> reader.received.size() == 1, "the first message");
            // The reader pauses; the replica's stream must stop well before its end.
            int stalled = awaitStable(() -> mesh.decodeA.sent.get() + mesh.decodeB.sent.get());
            int buffered = mesh.pipeline().bufferedMessages();
            System.out.printf(
                    "RELIABILITY slow gRPC reader: replica sent %d of %d tokens while the client had read 1;"
                            + " gateway buffered %d%n",
                    stalled, tokens, buffered);
            assertTrue(stalled < tokens / 2, "decode held back by the reader: sent " + stalled);
            assertTrue(buffered <= 4, "the gateway holds about one message per slow stream: " + buffered);
            // Now it reads, one message at a time, to the end.
            while (!reader.end.isDone()) {
                int have = reader.received.size();
                reader.call.request(1);
                long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
                while (reader.received.size() == have && !reader.end.isDone() && System.nanoTime() < until) {
                    Thread.onSpinWait();
                }
                assertTrue(reader.received.size() > have || reader.end.isDone(), "stream progresses");
            }
            assertEquals(
                    Status.Code.OK, reader.end.get().getCode(), reader.end.get().toString());
            long ids = reader.received.stream()
                    .mapToLong(GenerateResponse::getTokenIdsCount)
                    .sum();
            assertEquals(tokens, ids, "every token exactly once");
            assertTrue(reader.received.stream()
                    .flatMap(r -> r.getTokenIdsList().stream())
                    .allMatch(id -> id == TestVocab.HELLO));
            GenerateResponse last = reader.received.getLast();
            assertEquals(FinishReason.FINISH_REASON_LENGTH, last.getFinishReason());
            assertEquals(tokens, last.getUsage().getCompletionTokens());
            GatewayFixture.await(() -> mesh.pipeline().bufferedMessages() == 0, "nothing left buffered");
        } finally {
            channel.shutdownNow();
        }
    }

    /** Waits until {@code count} stays the same for half a second, and returns it. */
    private static int awaitStable(java.util.function.IntSupplier count) throws InterruptedException {
        int last = -1;
        int now = count.getAsInt();
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (now != last && System.nanoTime() < until) {
            last = now;
            Thread.sleep(500);
            now = count.getAsInt();
        }
        return now;
    }

    /** Opens a raw HTTP/1.1 connection and sends a completion request on it. */
    private static Socket post(String path, String json) throws Exception {
        Socket s = new Socket("127.0.0.1", mesh.httpPort());
        byte[] body = json.getBytes(StandardCharsets.UTF_8);
        OutputStream out = s.getOutputStream();
        out.write(("POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                        + "Content-Length: " + body.length + "\r\n\r\n")
                .getBytes(StandardCharsets.US_ASCII));
        out.write(body);
        out.flush();
        return s;
    }

    private static String completion(boolean stream) throws Exception {
        return GatewayFixture.JSON.writeValueAsString(
                GatewayFixture.body("model", "test-model", "prompt", "hang up", "stream", stream));
    }

    @Test
    void anSseClientThatHangsUpBeforeTheFirstByteCancelsThePrefill() throws Exception {
        mesh.prefill.holdNext.set(true); // a long prompt: prefill answers only when cancelled
        try (Socket client = post("/v1/completions", completion(true))) {
            GatewayFixture.await(() -> !mesh.prefill.requests.isEmpty(), "the prefill call");
        } // closed before a byte of the answer
        assertNotNull(mesh.prefill.cancelled.poll(30, TimeUnit.SECONDS), "prefill call cancelled");
        assertTrue(mesh.decodeA.requests.isEmpty() && mesh.decodeB.requests.isEmpty(), "no decode started");
    }

    @Test
    void anSseClientThatHangsUpMidStreamCancelsTheDecode() throws Exception {
        mesh.decodeA.scripts.add(FakeDecode.thenRepeat(TestVocab.HELLO, TestVocab.HELLO));
        mesh.decodeB.scripts.add(FakeDecode.thenRepeat(TestVocab.HELLO, TestVocab.HELLO));
        try (Socket client = post("/v1/completions", completion(true))) {
            InputStream in = client.getInputStream();
            String seen = "";
            byte[] buf = new byte[4096];
            while (!seen.contains("data: {")) {
                int n = in.read(buf);
                assertTrue(n > 0, "the stream started: " + seen);
                seen += new String(buf, 0, n, StandardCharsets.UTF_8);
            }
        } // closed mid-stream
        var cancelled = CompletableFuture.anyOf(
                CompletableFuture.supplyAsync(() -> poll(mesh.decodeA)),
                CompletableFuture.supplyAsync(() -> poll(mesh.decodeB)));
        assertNotNull(cancelled.get(40, TimeUnit.SECONDS), "decode call cancelled");
    }

    private static Object poll(FakeDecode decode) {
        try {
            var r = decode.cancelled.poll(30, TimeUnit.SECONDS);
            if (r == null) {
                Thread.sleep(Long.MAX_VALUE); // let the other replica answer
            }
            return r;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        }
    }

    @Test
    void theClientsDeadlineReachesPrefillAndDecode() throws Exception {
        Deadline client = Deadline.after(20, TimeUnit.SECONDS);
        ManagedChannel channel = nettyChannel(1 << 20);
        try {
            var it =
                    GenerationGrpc.newBlockingStub(channel).withDeadline(client).generate(prompt("deadline"));
            it.forEachRemaining(x -> {});
        } finally {
            channel.shutdownNow();
        }
        List<Deadline> seen = new ArrayList<>(mesh.prefill.deadlines);
        seen.addAll(mesh.decodeA.deadlines);
        seen.addAll(mesh.decodeB.deadlines);
        assertEquals(2, seen.size(), "one prefill and one decode call");
        for (Deadline d : seen) {
            // The header carries the time left when sent; each hop adds its transit, so allow a second for it
            // (the gateway's own timeout is 60 s, which would fail here).
            assertTrue(
                    d.timeRemaining(TimeUnit.MILLISECONDS) <= client.timeRemaining(TimeUnit.MILLISECONDS) + 1000,
                    "hop deadline " + d + " within the client's " + client);
        }
    }

    @Test
    void anHttpRequestsHopsGetTheGatewaysRequestTimeout() throws Exception {
        var reply = mesh.post("/v1/completions", GatewayFixture.body("model", "test-model", "prompt", "http"));
        assertEquals(200, reply.status(), reply.body().toString());
        List<Deadline> seen = new ArrayList<>(mesh.prefill.deadlines);
        seen.addAll(mesh.decodeA.deadlines);
        seen.addAll(mesh.decodeB.deadlines);
        assertEquals(2, seen.size());
        for (Deadline d : seen) {
            assertTrue(d.timeRemaining(TimeUnit.SECONDS) <= 60, "within the 60 s request timeout: " + d);
        }
    }

    @Test
    void aDeadlinePassedDuringPrefillIsDeadlineExceededAndCancelsThePrefill() throws Exception {
        mesh.prefill.holdNext.set(true);
        ManagedChannel channel = nettyChannel(1 << 20);
        try {
            StatusRuntimeException e = assertThrows(
                    StatusRuntimeException.class,
                    () -> GenerationGrpc.newBlockingStub(channel)
                            .withDeadlineAfter(1, TimeUnit.SECONDS)
                            .generate(prompt("too slow"))
                            .forEachRemaining(x -> {}));
            assertEquals(Status.Code.DEADLINE_EXCEEDED, e.getStatus().getCode(), e.toString());
            assertNotNull(mesh.prefill.cancelled.poll(30, TimeUnit.SECONDS), "the prefill call ends with it");
        } finally {
            channel.shutdownNow();
        }
    }
}
