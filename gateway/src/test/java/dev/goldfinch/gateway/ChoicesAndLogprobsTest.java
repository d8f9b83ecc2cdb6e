package dev.goldfinch.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.goldfinch.proto.internal.v1.DecodeRequest;
import dev.goldfinch.proto.v1.FinishReason;
import dev.goldfinch.proto.v1.GenerateRequest;
import dev.goldfinch.proto.v1.SamplingParams;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;

/**
 * n and best_of from one prefill, OpenAI's logprob shapes, echo with prompt logprobs, logit_bias, chat stops
 * and the refused fields, through the real gateway in front of fake prefill and decode services.
 */
class ChoicesAndLogprobsTest {
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

    private static List<DecodeRequest> decodeRequests() {
        List<DecodeRequest> all = new ArrayList<>(mesh.decodeA.requests);
        all.addAll(mesh.decodeB.requests);
        return all;
    }

    private static void assertBadRequest(GatewayFixture.Reply r, String param) {
        assertEquals(400, r.status(), param + ": " + r.body());
        assertEquals(param, r.body().at("/error/param").asString(), r.body().toString());
    }

    @Test
    void nChoicesShareOnePrefillAndSampleWithSeedPlusIndex() throws Exception {
        GatewayFixture.Reply r = mesh.post(
                "/v1/completions", GatewayFixture.body("prompt", "Hello", "n", 4, "seed", 7, "max_tokens", 2));
        assertEquals(200, r.status(), r.body().toString());
        assertEquals(1, mesh.prefill.requests.size(), "one prefill for four choices");
        List<DecodeRequest> decodes = decodeRequests();
        assertEquals(4, decodes.size());
        Set<Long> seeds = new TreeSet<>();
        for (DecodeRequest d : decodes) {
            seeds.add(d.getSampling().getSeed());
            assertEquals(decodes.getFirst().getEntry(), d.getEntry(), "every choice decodes the one entry");
        }
        assertEquals(Set.of(7L, 8L, 9L, 10L), seeds);
        JsonNode choices = r.body().get("choices");
        assertEquals(4, choices.size());
        for (int i = 0; i < 4; i++) {
            assertEquals(i, choices.get(i).get("index").asInt());
            assertEquals("Hello", choices.get(i).get("text").asString());
        }
        assertEquals(
                mesh.prefill.requests.getFirst().getTokensCount(),
                r.body().at("/usage/prompt_tokens").asInt(),
                "the prompt counted once");
        assertEquals(4, r.body().at("/usage/completion_tokens").asInt(), "one token per choice");
    }

    @Test
    void streamedChoicesCarryTheirIndexAndEndOnce() throws Exception {
        HttpResponse<Stream<String>> r = mesh.stream(
                "/v1/chat/completions",
                GatewayFixture.body(
                        "messages",
                        List.of(Map.of("role", "user", "content", "Hi")),
                        "n",
                        2,
                        "stream",
                        true,
                        "stream_options",
                        Map.of("include_usage", true)));
        assertEquals(200, r.statusCode());
        List<String> lines;
        try (Stream<String> s = r.body()) {
            lines = s.filter(l -> l.startsWith("data: ")).toList();
        }
        assertEquals("data: [DONE]", lines.getLast());
        assertEquals(1, lines.stream().filter(l -> l.equals("data: [DONE]")).count());
        Set<Integer> finished = new HashSet<>();
        Set<Integer> content = new HashSet<>();
        JsonNode usage = null;
        for (String l : lines.subList(0, lines.size() - 1)) {
            JsonNode chunk = GatewayFixture.JSON.readTree(l.substring(6));
            if (chunk.has("usage") && !chunk.get("usage").isNull()) {
                usage = chunk.get("usage");
                continue;
            }
            JsonNode choice = chunk.at("/choices/0");
            int index = choice.get("index").asInt();
            if (!choice.get("finish_reason").isNull()) {
                assertTrue(finished.add(index), "one finish per choice");
            }
            if ("Hello".equals(choice.at("/delta/content").asString(""))) {
                content.add(index);
            }
        }
        assertEquals(Set.of(0, 1), finished);
        assertEquals(Set.of(0, 1), content);
        assertEquals(2, usage.get("completion_tokens").asInt());
        assertEquals(1, mesh.prefill.requests.size());
    }

    @Test
    void bestOfKeepsTheHighestCumulativeLogprob() throws Exception {
        // Every fake token has logprob -0.5: the one-token sequence beats the three-token one, whichever order
        // and replica the two decode calls take.
        var longer =
                FakeDecode.finish(FinishReason.FINISH_REASON_LENGTH, TestVocab.HELLO, TestVocab.MORE, TestVocab.MORE);
        var shorter = FakeDecode.finish(FinishReason.FINISH_REASON_LENGTH, TestVocab.WORLD);
        mesh.decodeA.scripts.addAll(List.of(longer, shorter));
        mesh.decodeB.scripts.addAll(List.of(shorter, longer));
        GatewayFixture.Reply r = mesh.post(
                "/v1/completions", GatewayFixture.body("prompt", "Hello", "best_of", 2, "max_tokens", 3, "seed", 1));
        assertEquals(200, r.status(), r.body().toString());
        assertEquals(1, r.body().get("choices").size());
        assertEquals(" world", r.body().at("/choices/0/text").asString());
        assertEquals(0, r.body().at("/choices/0/index").asInt());
        assertEquals(1, mesh.prefill.requests.size());
        assertEquals(2, decodeRequests().size());
        assertEquals(4, r.body().at("/usage/completion_tokens").asInt(), "best_of bills every sequence generated");
    }

    @Test
    void refusedFieldsNameThemselves() throws Exception {
        assertBadRequest(mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello", "n", 9)), "n");
        assertBadRequest(
                mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello", "n", 3, "best_of", 2)), "best_of");
        assertBadRequest(mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello", "best_of", 9)), "best_of");
        assertBadRequest(
                mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello", "best_of", 2, "stream", true)),
                "best_of");
        assertBadRequest(mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello", "suffix", "}")), "suffix");
        assertBadRequest(
                mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello", "max_tokens", 0)), "max_tokens");
        for (Object bias : List.of(
                Map.of("5", 100.5), Map.of("5", -101), Map.of("300", 1), Map.of("-1", 1), Map.of("x", 1), "5")) {
            assertBadRequest(
                    mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello", "logit_bias", bias)),
                    "logit_bias");
        }
        assertEquals(0, mesh.prefill.requests.size(), "refused before any work");
        assertEquals(
                200,
                mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello", "user", "u-1", "suffix", ""))
                        .status());
    }

    @Test
    void logitBiasReachesTheSamplerOverHttpAndGrpc() throws Exception {
        GatewayFixture.Reply r = mesh.post(
                "/v1/chat/completions",
                GatewayFixture.body(
                        "messages",
                        List.of(Map.of("role", "user", "content", "Hi")),
                        "logit_bias",
                        Map.of("5", -100, "7", 2.5)));
        assertEquals(200, r.status(), r.body().toString());
        assertEquals(
                Map.of(5, -100f, 7, 2.5f),
                decodeRequests().getFirst().getSampling().getLogitBiasMap());

        mesh.reset();
        var it = mesh.generation()
                .generate(GenerateRequest.newBuilder()
                        .setPromptUtf8(ByteString.copyFromUtf8("Hello"))
                        .setSampling(SamplingParams.newBuilder().putLogitBias(9, 100f))
                        .build());
        it.forEachRemaining(x -> {});
        assertEquals(Map.of(9, 100f), decodeRequests().getFirst().getSampling().getLogitBiasMap());
        for (var bias : List.of(Map.of(300, 1f), Map.of(9, 100.5f))) {
            StatusRuntimeException e = assertThrows(
                    StatusRuntimeException.class,
                    () -> mesh.generation()
                            .generate(GenerateRequest.newBuilder()
                                    .setPromptUtf8(ByteString.copyFromUtf8("Hello"))
                                    .setSampling(SamplingParams.newBuilder().putAllLogitBias(bias))
                                    .build())
                            .forEachRemaining(x -> {}));
            assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode());
            assertTrue(
                    e.getStatus().getDescription().contains("logit_bias"),
                    e.getStatus().getDescription());
        }
    }

    @Test
    void aChatStopAddsToTheTurnStop() throws Exception {
        GatewayFixture.Reply r = mesh.post(
                "/v1/chat/completions",
                GatewayFixture.body("messages", List.of(Map.of("role", "user", "content", "Hi")), "stop", "END"));
        assertEquals(200, r.status(), r.body().toString());
        assertEquals(
                List.of("END", PromptBuilder.CHAT_STOP),
                decodeRequests().getFirst().getSampling().getStopList());
        mesh.reset();
        var it = mesh.generation()
                .generate(GenerateRequest.newBuilder()
                        .setChat(dev.goldfinch.proto.v1.ChatMessages.newBuilder()
                                .addMessages(dev.goldfinch.proto.v1.ChatMessage.newBuilder()
                                        .setRole("user")
                                        .setContentUtf8(ByteString.copyFromUtf8("Hi"))))
                        .setSampling(SamplingParams.newBuilder().addStop("END"))
                        .build());
        it.forEachRemaining(x -> {});
        assertEquals(
                List.of("END", PromptBuilder.CHAT_STOP),
                decodeRequests().getFirst().getSampling().getStopList());
    }

    @Test
    void completionLogprobsAreParallelLists() throws Exception {
        mesh.decodeA.scripts.add(
                FakeDecode.finish(FinishReason.FINISH_REASON_LENGTH, TestVocab.HELLO, TestVocab.WORLD));
        GatewayFixture.Reply r =
                mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hi", "logprobs", 2, "max_tokens", 2));
        assertEquals(200, r.status(), r.body().toString());
        JsonNode lp = r.body().at("/choices/0/logprobs");
        assertEquals(List.of("Hello", " world"), strings(lp.get("tokens")));
        assertEquals(-0.5, lp.at("/token_logprobs/0").asDouble(), 1e-6);
        assertEquals(-0.5, lp.at("/token_logprobs/1").asDouble(), 1e-6);
        assertTrue(lp.at("/top_logprobs/0").isObject());
        assertEquals(0, lp.at("/text_offset/0").asInt());
        assertEquals(5, lp.at("/text_offset/1").asInt());
        assertEquals(2, decodeRequests().getFirst().getSampling().getLogprobs());
    }

    @Test
    void chatLogprobsCarryBytesPerPosition() throws Exception {
        mesh.decodeA.scripts.add(
                FakeDecode.finish(FinishReason.FINISH_REASON_LENGTH, TestVocab.HELLO, TestVocab.WORLD));
        GatewayFixture.Reply r = mesh.post(
                "/v1/chat/completions",
                GatewayFixture.body(
                        "messages",
                        List.of(Map.of("role", "user", "content", "Hi")),
                        "logprobs",
                        true,
                        "max_tokens",
                        2));
        assertEquals(200, r.status(), r.body().toString());
        JsonNode content = r.body().at("/choices/0/logprobs/content");
        assertEquals(2, content.size(), "one entry per token, alternatives not merged");
        assertEquals(" world", content.at("/1/token").asString());
        assertEquals(-0.5, content.at("/1/logprob").asDouble(), 1e-6);
        List<Integer> bytes = new ArrayList<>();
        content.at("/1/bytes").forEach(b -> bytes.add(b.asInt()));
        assertEquals(List.of(32, 119, 111, 114, 108, 100), bytes);
        assertTrue(content.at("/1/top_logprobs").isArray());
        assertEquals(0, content.at("/1/top_logprobs").size(), "top_logprobs unset: none");
    }

    @Test
    void echoWithMaxTokensZeroScoresThePromptInOnePrefill() throws Exception {
        GatewayFixture.Reply r = mesh.post(
                "/v1/completions",
                GatewayFixture.body("prompt", "Hi!", "echo", true, "logprobs", 1, "max_tokens", 0, "n", 2));
        assertEquals(200, r.status(), r.body().toString());
        assertEquals(1, mesh.prefill.requests.size());
        assertEquals(1, mesh.prefill.requests.getFirst().getPromptLogprobs());
        assertTrue(decodeRequests().isEmpty(), "nothing to generate");
        for (JsonNode choice : r.body().get("choices")) {
            assertEquals("Hi!", choice.get("text").asString());
            assertEquals("length", choice.get("finish_reason").asString());
            JsonNode lp = choice.get("logprobs");
            assertEquals(List.of("H", "i", "!"), strings(lp.get("tokens")));
            assertTrue(lp.at("/token_logprobs/0").isNull(), "the first token has nothing before it");
            assertTrue(
                    lp.at("/top_logprobs/0").isObject()
                            && lp.at("/top_logprobs/0").isEmpty(),
                    "none scored");
            assertEquals(-0.25, lp.at("/token_logprobs/1").asDouble(), 1e-6);
            assertEquals(-0.5, lp.at("/token_logprobs/2").asDouble(), 1e-6);
            assertEquals(0.0, lp.at("/top_logprobs/2/!").asDouble(), 1e-6);
            assertEquals(List.of(0, 1, 2), ints(lp.get("text_offset")));
        }
        assertEquals(0, r.body().at("/usage/completion_tokens").asInt());
        assertEquals(3, r.body().at("/usage/prompt_tokens").asInt());
    }

    @Test
    void echoPutsThePromptBeforeTheCompletion() throws Exception {
        GatewayFixture.Reply r = mesh.post(
                "/v1/completions", GatewayFixture.body("prompt", "Hi", "echo", true, "logprobs", 0, "max_tokens", 1));
        assertEquals(200, r.status(), r.body().toString());
        assertEquals("HiHello", r.body().at("/choices/0/text").asString());
        JsonNode lp = r.body().at("/choices/0/logprobs");
        assertEquals(List.of("H", "i", "Hello"), strings(lp.get("tokens")));
        assertEquals(List.of(0, 1, 2), ints(lp.get("text_offset")));
        assertFalse(lp.at("/token_logprobs/2").isNull());

        HttpResponse<Stream<String>> s = mesh.stream(
                "/v1/completions", GatewayFixture.body("prompt", "Hi", "echo", true, "stream", true, "max_tokens", 1));
        StringBuilder text = new StringBuilder();
        try (Stream<String> lines = s.body()) {
            lines.filter(l -> l.startsWith("data: {"))
                    .map(l -> GatewayFixture.JSON.readTree(l.substring(6)))
                    .forEach(c -> text.append(c.at("/choices/0/text").asString("")));
        }
        assertEquals("HiHello", text.toString());
    }

    private static List<String> strings(JsonNode array) {
        List<String> out = new ArrayList<>();
        array.forEach(x -> out.add(x.asString()));
        return out;
    }

    private static List<Integer> ints(JsonNode array) {
        List<Integer> out = new ArrayList<>();
        array.forEach(x -> out.add(x.asInt()));
        return out;
    }
}
