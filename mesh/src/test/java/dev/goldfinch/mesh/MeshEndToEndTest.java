package dev.goldfinch.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.goldfinch.cache.PrefixCacheStore;
import dev.goldfinch.cache.PrefixHasher;
import dev.goldfinch.cache.client.CacheClientProperties;
import dev.goldfinch.cache.client.EntrySigner;
import dev.goldfinch.cache.client.RemotePrefixCacheStore;
import dev.goldfinch.cache.client.StateCache;
import dev.goldfinch.gateway.ApiKeys;
import dev.goldfinch.model.GoldFinchModel;
import dev.goldfinch.model.state.SequenceState;
import dev.goldfinch.model.state.StateCodec;
import dev.goldfinch.proto.internal.v1.CacheStoreGrpc;
import dev.goldfinch.proto.internal.v1.DecodeGrpc;
import dev.goldfinch.proto.internal.v1.DecodeRequest;
import dev.goldfinch.proto.internal.v1.DecodeResponse;
import dev.goldfinch.proto.internal.v1.EntryKind;
import dev.goldfinch.proto.internal.v1.EntryRef;
import dev.goldfinch.proto.internal.v1.GetRequest;
import dev.goldfinch.proto.internal.v1.LookupRequest;
import dev.goldfinch.proto.internal.v1.PrefillGrpc;
import dev.goldfinch.proto.internal.v1.PrefillRequest;
import dev.goldfinch.proto.internal.v1.PrefillResponse;
import dev.goldfinch.proto.internal.v1.PutHeader;
import dev.goldfinch.proto.internal.v1.PutRequest;
import dev.goldfinch.proto.internal.v1.PutResponse;
import dev.goldfinch.proto.v1.SamplingParams;
import dev.goldfinch.service.Channels;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The mesh end to end: cache store, prefill, two decode replicas and the gateway as separate servers on
 * loopback (one JVM), a small random-weight GoldFinch with the World vocabulary's 65,536 ids. Run once
 * with Redis and once with the embedded store.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class MeshEndToEndTest {
    static final String SHAPE = "layers=4,width=128,head=32,vocab=65536";
    static final int MAX_PROMPT = 2048;
    static final int CAP = 256;

    /** The mesh the end-to-end tests share: random weights of {@link #SHAPE}, embedded store, loopback, free ports. */
    static MeshLauncher.Options smallMesh(int decodeReplicas, Map<String, String> extra) {
        return new MeshLauncher.Options(
                null, SHAPE, 7, "f32", null, null, decodeReplicas, 0, 0, MAX_PROMPT, CAP, null, extra);
    }

    MeshLauncher mesh;
    MeshClient client;

    /** The Redis URL for the store, or null for the embedded one. */
    abstract String redisUrl();

    @BeforeAll
    void startMesh() {
        mesh = MeshLauncher.start(new MeshLauncher.Options(
                null,
                SHAPE,
                7,
                "f32",
                null, // the bundled World vocabulary
                redisUrl(),
                2,
                0,
                0,
                MAX_PROMPT,
                CAP,
                null,
                Map.of("logging.level.root", "WARN")));
        client = new MeshClient(mesh.httpPort("gateway"), mesh.grpcPort("gateway"));
    }

    @AfterAll
    void stopMesh() {
        if (client != null) {
            client.close();
        }
        if (mesh != null) {
            mesh.close();
        }
    }

    static String salt() {
        return UUID.randomUUID().toString();
    }

    static Map<String, Object> body(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put((String) kv[i], kv[i + 1]);
        }
        return m;
    }

    static List<Map<String, Object>> messages(String... roleContent) {
        List<Map<String, Object>> out = new ArrayList<>();
        for (int i = 0; i < roleContent.length; i += 2) {
            out.add(body("role", roleContent[i], "content", roleContent[i + 1]));
        }
        return out;
    }

    @Test
    void chatStreamsOverSseAndGrpcWithIdenticalTokens() throws Exception {
        String salt = salt();
        List<String> events = new ArrayList<>();
        MeshClient.Generation sse = client.stream(
                "/v1/chat/completions",
                body(
                        "model",
                        "goldfinch",
                        "messages",
                        messages("user", "Tell me about birds."),
                        "max_tokens",
                        12,
                        "temperature",
                        0.9,
                        "seed",
                        1234,
                        "stream",
                        true,
                        "stream_options",
                        body("include_usage", true),
                        "return_token_ids",
                        true,
                        "cache_salt",
                        salt),
                events);
        assertFalse(sse.tokens().isEmpty());
        assertTrue(
                events.getFirst().contains("\"role\":\"assistant\""),
                "the first chunk announces the role: " + events.getFirst());
        assertTrue(events.getFirst().contains("\"object\":\"chat.completion.chunk\""));
        assertEquals("data: [DONE]", events.getLast());
        assertTrue(sse.promptTokens() > 0);
        assertTrue(List.of("stop", "length").contains(sse.finishReason()));

        MeshClient.Generation grpc = client.grpcChat(
                List.<String[]>of(new String[] {"user", "Tell me about birds."}),
                SamplingParams.newBuilder()
                        .setMaxTokens(12)
                        .setTemperature(0.9)
                        .setSeed(1234)
                        .build(),
                salt);
        assertEquals(sse.tokens(), grpc.tokens());
        assertEquals(sse.text(), grpc.text());
        assertEquals(sse.promptTokens(), grpc.promptTokens());
    }

    @Test
    void aSharedPrefixComesFromCacheAndAnswersExactlyAsWithoutIt() throws Exception {
        Random random = new Random(11);
        int[] shared = random.ints(100, 1, 65000).toArray();
        List<Integer> first = new ArrayList<>();
        List<Integer> second = new ArrayList<>();
        for (int t : shared) {
            first.add(t);
            second.add(t);
        }
        random.ints(30, 1, 65000).forEach(first::add);
        random.ints(25, 1, 65000).forEach(second::add);
        String salt = salt();
        Map<String, Object> sampling =
                body("max_tokens", 16, "temperature", 0.8, "top_p", 0.95, "seed", 99, "return_token_ids", true);

        Map<String, Object> a = new LinkedHashMap<>(sampling);
        a.put("prompt", first);
        a.put("cache_salt", salt);
        MeshClient.Generation cold = client.complete("/v1/completions", a);
        assertEquals(0, cold.cachedTokens(), "a new salt starts cold");

        Map<String, Object> b = new LinkedHashMap<>(sampling);
        b.put("prompt", second);
        b.put("cache_salt", salt);
        MeshClient.Generation warm = client.complete("/v1/completions", b);
        assertTrue(warm.cachedTokens() >= 64, "cached_tokens " + warm.cachedTokens());

        b.put("skip_prefix_cache", true); // the same request with the cache disabled: everything recomputed
        MeshClient.Generation uncached = client.complete("/v1/completions", b);
        assertEquals(0, uncached.cachedTokens());
        assertEquals(uncached.tokens(), warm.tokens());
        assertEquals(16, warm.tokens().size());
        b.remove("skip_prefix_cache");
        assertTrue(
                client.complete("/v1/completions", b).cachedTokens() >= warm.cachedTokens(),
                "the cache still serves this salt");
    }

    @Test
    void aChatsSecondTurnResumesFromTheFirst() throws Exception {
        String salt = salt();
        MeshClient.Generation turn1 = client.complete(
                "/v1/chat/completions",
                body(
                        "messages",
                        messages("user", "Hello! Who are you?"),
                        "max_tokens",
                        10,
                        "temperature",
                        0.7,
                        "seed",
                        5,
                        "cache_salt",
                        salt));
        MeshClient.Generation turn2 = client.complete(
                "/v1/chat/completions",
                body(
                        "messages",
                        messages("user", "Hello! Who are you?", "assistant", turn1.text(), "user", "Tell me more."),
                        "max_tokens",
                        10,
                        "temperature",
                        0.7,
                        "seed",
                        5,
                        "cache_salt",
                        salt));
        assertTrue(
                turn2.cachedTokens() >= turn1.promptTokens(),
                "turn 2 cached " + turn2.cachedTokens() + " of " + turn2.promptTokens() + "; turn 1's prompt was "
                        + turn1.promptTokens());
    }

    @Test
    void theSameSeededRequestGivesTheSameTokensOnEitherReplica() {
        ManagedChannel prefill = mesh.internalChannel("prefill");
        try {
            int[] prompt = new Random(3).ints(90, 1, 65000).toArray();
            PrefillRequest.Builder req = PrefillRequest.newBuilder().setCacheSalt("replicas");
            for (int t : prompt) {
                req.addTokens(t);
            }
            PrefillResponse entry = PrefillGrpc.newBlockingStub(prefill)
                    .withDeadlineAfter(60, TimeUnit.SECONDS)
                    .prefill(req.build());
            assertEquals(89, entry.getEntry().getLength());
            List<List<Integer>> outputs = new ArrayList<>();
            for (String replica : List.of("decode-1", "decode-2")) {
                ManagedChannel decode = mesh.internalChannel(replica);
                try {
                    Iterator<DecodeResponse> it = DecodeGrpc.newBlockingStub(decode)
                            .withDeadlineAfter(60, TimeUnit.SECONDS)
                            .decode(DecodeRequest.newBuilder()
                                    .setEntry(entry.getEntry())
                                    .setLastPromptToken(prompt[89])
                                    .setCacheSalt("replicas")
                                    .setSampling(SamplingParams.newBuilder()
                                            .setMaxTokens(20)
                                            .setTemperature(1.0)
                                            .setSeed(77))
                                    .build());
                    List<Integer> tokens = new ArrayList<>();
                    it.forEachRemaining(r -> tokens.add(r.getToken()));
                    outputs.add(tokens);
                } finally {
                    Channels.close(decode);
                }
            }
            assertFalse(outputs.get(0).isEmpty());
            assertEquals(outputs.get(0), outputs.get(1));
        } finally {
            Channels.close(prefill);
        }
    }

    @Test
    void anInterruptedWriteIsNeverVisible() throws Exception {
        ManagedChannel store = mesh.internalChannel("cache-store");
        try {
            String hash = "0123456789abcdef0123456789abcdef";
            EntryRef ref = EntryRef.newBuilder()
                    .setModel("interrupted")
                    .setPrefixHash(hash)
                    .setLength(64)
                    .build();
            var stub = CacheStoreGrpc.newStub(store);
            var response = new java.util.concurrent.CompletableFuture<PutResponse>();
            io.grpc.stub.ClientCallStreamObserver<PutRequest>[] call = new io.grpc.stub.ClientCallStreamObserver[1];
            StreamObserver<PutRequest> out =
                    stub.put(new io.grpc.stub.ClientResponseObserver<PutRequest, PutResponse>() {
                        @Override
                        public void beforeStart(io.grpc.stub.ClientCallStreamObserver<PutRequest> requestStream) {
                            call[0] = requestStream;
                        }

                        @Override
                        public void onNext(PutResponse value) {
                            response.complete(value);
                        }

                        @Override
                        public void onError(Throwable t) {
                            response.completeExceptionally(t);
                        }

                        @Override
                        public void onCompleted() {}
                    });
            out.onNext(PutRequest.newBuilder()
                    .setHeader(PutHeader.newBuilder()
                            .setEntry(ref)
                            .setKind(EntryKind.ENTRY_KIND_KEY_BLOCK)
                            .setSize(600_000)
                            .setCrc32C(1))
                    .build());
            out.onNext(PutRequest.newBuilder()
                    .setChunk(ByteString.copyFrom(new byte[200_000]))
                    .build());
            Thread.sleep(200); // the server has the first chunk
            call[0].cancel("writer died", null);
            Thread.sleep(200);
            var blocking = CacheStoreGrpc.newBlockingStub(store);
            StatusRuntimeException miss = org.junit.jupiter.api.Assertions.assertThrows(
                    StatusRuntimeException.class,
                    () -> blocking.get(GetRequest.newBuilder()
                                    .setEntry(ref)
                                    .setKind(EntryKind.ENTRY_KIND_KEY_BLOCK)
                                    .build())
                            .hasNext());
            assertEquals(Status.Code.NOT_FOUND, miss.getStatus().getCode());
            assertEquals(
                    0,
                    blocking.lookup(LookupRequest.newBuilder()
                                    .setModel("interrupted")
                                    .addAllTokens(java.util.Collections.nCopies(64, 5))
                                    .setMaxLength(64)
                                    .build())
                            .getKeyBlocks());
        } finally {
            Channels.close(store);
        }
    }

    @Test
    void aCorruptEntryIsRecomputedAndTheAnswerStaysTheSame() throws Exception {
        String salt = salt();
        List<Integer> prompt = new ArrayList<>();
        new Random(21).ints(150, 1, 65000).forEach(prompt::add);
        Map<String, Object> first =
                body("prompt", prompt, "max_tokens", 8, "temperature", 0, "return_token_ids", true, "cache_salt", salt);
        assertEquals(0, client.complete("/v1/completions", first).cachedTokens());
        assertEquals(
                149,
                client.complete("/v1/completions", first).cachedTokens(),
                "the same prompt again: all but its last token from cache");

        assertTrue(corruptCheckpoints() > 0);
        List<Integer> longer = new ArrayList<>(prompt);
        new Random(22).ints(40, 1, 65000).forEach(longer::add);
        Map<String, Object> next =
                body("prompt", longer, "max_tokens", 8, "temperature", 0, "return_token_ids", true, "cache_salt", salt);
        MeshClient.Generation afterCorruption = client.complete("/v1/completions", next);
        assertTrue(
                afterCorruption.cachedTokens() < 149,
                "the corrupt checkpoint was not trusted: cached " + afterCorruption.cachedTokens());
        next.put("cache_salt", salt());
        MeshClient.Generation reference = client.complete("/v1/completions", next);
        assertEquals(0, reference.cachedTokens());
        assertEquals(reference.tokens(), afterCorruption.tokens(), "recomputed, and the same answer");
    }

    @Test
    void aCheckpointPlantedStraightInTheStoreIsNeverServed() throws Exception {
        String salt = salt();
        List<Integer> prompt = new ArrayList<>();
        new Random(31).ints(150, 1, 65000).forEach(prompt::add);
        int[] tokens = prompt.stream().mapToInt(Integer::intValue).toArray();
        GoldFinchModel model = mesh.bean("prefill", GoldFinchModel.class);
        String modelId = StateCache.modelId(model.fingerprint());
        PrefixHasher hasher = mesh.bean("prefill", CacheClientProperties.class).hasher();
        int b = hasher.blockSize();
        int planted = 2 * b;
        // The gateway hands the services its tenant's namespace, not the client's salt: plant where they look.
        byte[][] chain = hasher.chain(modelId, PrefixHasher.namespace(ApiKeys.ANONYMOUS, salt), tokens, planted);
        // The attacker reaches the store first: the prompt's key blocks and a checkpoint after them, well
        // formed (the right tokens, a poisoned recurrent state), each with a valid CRC and no MAC.
        SequenceState poisoned = model.newState();
        model.prefill(poisoned, java.util.Arrays.copyOf(tokens, planted));
        java.util.Arrays.fill(poisoned.wkv(0), 0.5f);
        List<PrefixCacheStore.Entry> forged = new ArrayList<>();
        for (int i = 1; i <= 2; i++) {
            forged.add(new PrefixCacheStore.Entry(
                    EntryKind.ENTRY_KIND_KEY_BLOCK,
                    chain[i],
                    i * b,
                    null,
                    StateCodec.encodeKeyBlock(poisoned, (i - 1) * b, i * b, StateCodec.FloatType.F32)));
        }
        byte[] checkpoint = StateCodec.encode(poisoned, StateCodec.FloatType.F32, 0, planted);
        forged.add(new PrefixCacheStore.Entry(EntryKind.ENTRY_KIND_CHECKPOINT, chain[2], planted, null, checkpoint));
        try (RemotePrefixCacheStore store = new RemotePrefixCacheStore(
                mesh.internalChannel("cache-store"), true, java.time.Duration.ofSeconds(10))) {
            assertEquals(3, store.putAll(modelId, forged));

            Map<String, Object> request =
                    body("prompt", prompt, "max_tokens", 12, "temperature", 0.8, "seed", 5, "return_token_ids", true);
            request.put("cache_salt", salt);
            MeshClient.Generation served = client.complete("/v1/completions", request);
            assertEquals(0, served.cachedTokens(), "nothing was resumed from the planted state");
            request.put("skip_prefix_cache", true);
            MeshClient.Generation cold = client.complete("/v1/completions", request);
            assertEquals(cold.tokens(), served.tokens(), "the answer is a cold run's");

            assertEquals(
                    1.0,
                    mesh.bean("prefill", io.micrometer.core.instrument.MeterRegistry.class)
                            .get(EntrySigner.REJECTED_METRIC)
                            .tag("reason", "signature")
                            .counter()
                            .count());
            byte[] now = store.get(modelId, EntryKind.ENTRY_KIND_CHECKPOINT, chain[2])
                    .orElseThrow();
            assertFalse(java.util.Arrays.equals(checkpoint, now), "deleted, and rewritten by the mesh");
        }
    }

    /** Flips a byte in every stored checkpoint; returns how many. */
    abstract int corruptCheckpoints() throws Exception;

    @Test
    void badInputIsRejectedWithAMessageNamingTheField() throws Exception {
        Map<String, Map<String, Object>> cases = new LinkedHashMap<>();
        cases.put("prompt", body("prompt", ""));
        cases.put(
                "maximum",
                body(
                        "prompt",
                        new Random(1).ints(MAX_PROMPT + 1, 1, 60000).boxed().toList()));
        cases.put("max_tokens", body("prompt", "hi", "max_tokens", 0));
        cases.put("max_tokens must be <=", body("prompt", "hi", "max_tokens", CAP + 1));
        cases.put("temperature", body("prompt", "hi", "temperature", -0.5));
        cases.put("top_p", body("prompt", "hi", "top_p", 0));
        cases.put("top_p must be in", body("prompt", "hi", "top_p", 1.5));
        for (Map.Entry<String, Map<String, Object>> c : cases.entrySet()) {
            MeshClient.Reply r = client.post("/v1/completions", c.getValue());
            assertEquals(400, r.status(), c.getKey() + ": " + r.body());
            assertEquals(
                    "invalid_request_error", r.body().get("error").get("type").asString());
            assertTrue(
                    r.body().get("error").get("message").asString().contains(c.getKey()), c.getKey() + ": " + r.body());
        }
        MeshClient.Reply chat = client.post("/v1/chat/completions", body("messages", List.of()));
        assertEquals(400, chat.status());
        assertTrue(chat.body().get("error").get("message").asString().contains("messages"));
        byte[] invalidUtf8 = "{\"prompt\": \"caf\u00ff\"}".getBytes(java.nio.charset.StandardCharsets.ISO_8859_1);
        MeshClient.Reply utf8 = client.post("/v1/completions", invalidUtf8);
        assertEquals(400, utf8.status(), utf8.body().toString());
        assertTrue(utf8.body().get("error").get("message").asString().contains("UTF-8"));

        // The same rules over gRPC: INVALID_ARGUMENT with the field in the message.
        Map<String, dev.goldfinch.proto.v1.GenerateRequest> grpc = new LinkedHashMap<>();
        grpc.put(
                "prompt",
                dev.goldfinch.proto.v1.GenerateRequest.newBuilder()
                        .setPromptUtf8(ByteString.EMPTY)
                        .build());
        grpc.put(
                "prompt_utf8",
                dev.goldfinch.proto.v1.GenerateRequest.newBuilder()
                        .setPromptUtf8(ByteString.copyFrom(new byte[] {'a', (byte) 0xff}))
                        .build());
        grpc.put("max_tokens", generate(SamplingParams.newBuilder().setMaxTokens(0)));
        grpc.put("max_tokens must be <=", generate(SamplingParams.newBuilder().setMaxTokens(CAP + 1)));
        grpc.put("temperature", generate(SamplingParams.newBuilder().setTemperature(-1)));
        grpc.put("top_p", generate(SamplingParams.newBuilder().setTopP(0)));
        StringBuilder longPrompt = new StringBuilder();
        for (int i = 0; i < MAX_PROMPT + 10; i++) {
            longPrompt.append(" word").append(i);
        }
        grpc.put(
                "maximum",
                dev.goldfinch.proto.v1.GenerateRequest.newBuilder()
                        .setPromptUtf8(ByteString.copyFromUtf8(longPrompt.toString()))
                        .build());
        for (Map.Entry<String, dev.goldfinch.proto.v1.GenerateRequest> c : grpc.entrySet()) {
            StatusRuntimeException e = org.junit.jupiter.api.Assertions.assertThrows(
                    StatusRuntimeException.class, () -> client.grpcGenerate(c.getValue()), c.getKey());
            assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode(), c.getKey());
            assertTrue(
                    e.getStatus().getDescription().contains(c.getKey()),
                    c.getKey() + ": " + e.getStatus().getDescription());
        }
    }

    static dev.goldfinch.proto.v1.GenerateRequest generate(SamplingParams.Builder sampling) {
        return dev.goldfinch.proto.v1.GenerateRequest.newBuilder()
                .setPromptUtf8(ByteString.copyFromUtf8("hello"))
                .setSampling(sampling)
                .build();
    }

    /** Every service's gRPC server (over Netty) refuses a message over its inbound limit, whatever the method. */
    @Test
    void everyServiceRefusesAMessageOverItsLimit() {
        io.grpc.MethodDescriptor.Marshaller<byte[]> raw = new io.grpc.MethodDescriptor.Marshaller<>() {
            @Override
            public java.io.InputStream stream(byte[] value) {
                return new java.io.ByteArrayInputStream(value);
            }

            @Override
            public byte[] parse(java.io.InputStream stream) {
                try {
                    return stream.readAllBytes();
                } catch (java.io.IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            }
        };
        io.grpc.MethodDescriptor<byte[], byte[]> check = io.grpc.MethodDescriptor.<byte[], byte[]>newBuilder()
                .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
                .setFullMethodName(io.grpc.health.v1.HealthGrpc.getCheckMethod().getFullMethodName())
                .setRequestMarshaller(raw)
                .setResponseMarshaller(raw)
                .build();
        byte[] tooLarge = new byte[Channels.MAX_MESSAGE_BYTES + 1];
        for (Map.Entry<String, Integer> service : mesh.grpcPorts().entrySet()) {
            // Internal ports speak mTLS (a plaintext client never gets as far as a message); the gateway's is public.
            ManagedChannel channel = service.getKey().equals("gateway")
                    ? Channels.open("127.0.0.1:" + service.getValue())
                    : mesh.internalChannel(service.getKey());
            try {
                StatusRuntimeException e = org.junit.jupiter.api.Assertions.assertThrows(
                        StatusRuntimeException.class,
                        () -> io.grpc.stub.ClientCalls.blockingUnaryCall(
                                channel,
                                check,
                                io.grpc.CallOptions.DEFAULT.withDeadlineAfter(
                                        30, java.util.concurrent.TimeUnit.SECONDS),
                                tooLarge),
                        service.getKey());
                assertEquals(Status.Code.RESOURCE_EXHAUSTED, e.getStatus().getCode(), service.getKey() + ": " + e);
            } finally {
                Channels.close(channel);
            }
        }
    }

    @Test
    void modelsHealthAndMetricsAreServed() throws Exception {
        MeshClient.Reply models = client.get("/v1/models");
        assertEquals(200, models.status());
        assertEquals("goldfinch", models.body().get("data").get(0).get("id").asString());
        client.complete("/v1/completions", body("prompt", "Metrics, please.", "max_tokens", 3));
        for (String service : List.of("gateway", "prefill", "decode-1", "cache-store")) {
            var http = java.net.http.HttpClient.newHttpClient();
            String base = "http://127.0.0.1:" + mesh.httpPort(service);
            String management = "http://127.0.0.1:" + mesh.managementPort(service);
            var health = http.send(
                    java.net.http.HttpRequest.newBuilder(java.net.URI.create(base + "/health"))
                            .build(),
                    java.net.http.HttpResponse.BodyHandlers.ofString());
            assertEquals(200, health.statusCode(), service + " health: " + health.body());
            var actuatorHealth = http.send(
                    java.net.http.HttpRequest.newBuilder(java.net.URI.create(management + "/actuator/health"))
                            .build(),
                    java.net.http.HttpResponse.BodyHandlers.ofString());
            assertEquals(200, actuatorHealth.statusCode(), service + " actuator health: " + actuatorHealth.body());
            var publicActuator = http.send(
                    java.net.http.HttpRequest.newBuilder(java.net.URI.create(base + "/actuator/prometheus"))
                            .build(),
                    java.net.http.HttpResponse.BodyHandlers.ofString());
            assertEquals(404, publicActuator.statusCode(), service + ": Actuator is not on the public port");
            var prom = http.send(
                    java.net.http.HttpRequest.newBuilder(java.net.URI.create(base + "/metrics"))
                            .build(),
                    java.net.http.HttpResponse.BodyHandlers.ofString());
            assertEquals(200, prom.statusCode(), service);
            String expected = switch (service) {
                case "gateway" -> "goldfinch_time_to_first_token_seconds";
                case "prefill" -> "goldfinch_prefix_cache_queries_total";
                case "decode-1" -> "goldfinch_decode_live_sequences";
                default -> "goldfinch_cache_store_bytes";
            };
            assertTrue(prom.body().contains(expected), service + " exposes " + expected);
        }
    }

    /** Every metric the Grafana dashboard (deploy/grafana) queries is one some service of this mesh exports. */
    @Test
    void theDashboardQueriesOnlyMetricsTheServicesExport() throws Exception {
        client.complete("/v1/completions", body("prompt", "Dashboards, please.", "max_tokens", 3));
        java.util.Set<String> exported = new java.util.TreeSet<>();
        var http = java.net.http.HttpClient.newHttpClient();
        for (String service : List.of("gateway", "prefill", "decode-1", "cache-store")) {
            var prom = http.send(
                    java.net.http.HttpRequest.newBuilder(
                                    java.net.URI.create("http://127.0.0.1:" + mesh.httpPort(service) + "/metrics"))
                            .build(),
                    java.net.http.HttpResponse.BodyHandlers.ofString());
            prom.body()
                    .lines()
                    .filter(l -> !l.startsWith("#") && !l.isBlank())
                    .map(l -> l.split("[{ ]", 2)[0])
                    .forEach(exported::add);
        }
        String dashboard = java.nio.file.Files.readString(
                DockerComposeConfigTest.projectFile("deploy/grafana/goldfinch-mesh.json"));
        var queried = java.util.regex.Pattern.compile("\\b((?:goldfinch|http_server|grpc_server)_[a-z0-9_]+)")
                .matcher(dashboard)
                .results()
                .map(m -> m.group(1))
                .collect(java.util.stream.Collectors.toCollection(java.util.TreeSet::new));
        assertTrue(queried.size() > 15, "the dashboard queries the mesh's metrics: " + queried);
        java.util.Set<String> missing = new java.util.TreeSet<>(queried);
        missing.removeAll(exported);
        assertTrue(missing.isEmpty(), "the dashboard queries metrics no service exports: " + missing);
    }

    /** The container healthcheck's probe: SERVING from a live service, a failure from a closed port. */
    @Test
    void theHealthProbeTellsServingFromDown() throws Exception {
        assertTrue(dev.goldfinch.service.HealthProbe.serving("127.0.0.1:" + mesh.grpcPort("gateway")));
        int closed;
        try (var socket = new java.net.ServerSocket(0)) {
            closed = socket.getLocalPort();
        }
        assertFalse(dev.goldfinch.service.HealthProbe.serving("127.0.0.1:" + closed));
    }
}
