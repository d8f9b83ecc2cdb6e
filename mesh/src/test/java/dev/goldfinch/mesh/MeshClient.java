package dev.goldfinch.mesh;

import com.google.protobuf.ByteString;
import dev.goldfinch.proto.v1.ChatMessage;
import dev.goldfinch.proto.v1.ChatMessages;
import dev.goldfinch.proto.v1.GenerateRequest;
import dev.goldfinch.proto.v1.GenerateResponse;
import dev.goldfinch.proto.v1.GenerationGrpc;
import dev.goldfinch.proto.v1.SamplingParams;
import dev.goldfinch.service.Channels;
import io.grpc.ManagedChannel;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/** A client of the gateway, over HTTP (as any OpenAI client) and over gRPC, for the end-to-end tests. */
final class MeshClient implements AutoCloseable {
    static final JsonMapper JSON = JsonMapper.builder().build();

    record Reply(int status, JsonNode body) {}

    /** What a generation returned: token ids, text, and usage. */
    record Generation(List<Integer> tokens, String text, int promptTokens, int cachedTokens, String finishReason) {}

    final HttpClient http =
            HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    final String base;
    final ManagedChannel grpc;

    /** Sent as {@code Authorization: Bearer} on HTTP requests; null: none. */
    final String apiKey;

    MeshClient(int httpPort, int grpcPort) {
        this(httpPort, grpcPort, null);
    }

    MeshClient(int httpPort, int grpcPort, String apiKey) {
        this.base = "http://127.0.0.1:" + httpPort;
        this.grpc = Channels.open("127.0.0.1:" + grpcPort);
        this.apiKey = apiKey;
    }

    private HttpRequest.Builder request(String path) {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + path));
        return apiKey == null ? b : b.header("Authorization", "Bearer " + apiKey);
    }

    Reply post(String path, byte[] body) throws Exception {
        HttpResponse<byte[]> r = http.send(
                request(path)
                        .timeout(Duration.ofSeconds(120))
                        .header("Content-Type", "application/json")
                        .POST(HttpRequest.BodyPublishers.ofByteArray(body))
                        .build(),
                HttpResponse.BodyHandlers.ofByteArray());
        return new Reply(r.statusCode(), JSON.readTree(r.body()));
    }

    Reply post(String path, Object body) throws Exception {
        return post(path, JSON.writeValueAsBytes(body));
    }

    Reply get(String path) throws Exception {
        HttpResponse<byte[]> r = http.send(request(path).GET().build(), HttpResponse.BodyHandlers.ofByteArray());
        return new Reply(r.statusCode(), JSON.readTree(r.body()));
    }

    /** A non-streaming completion or chat completion. */
    Generation complete(String path, Object body) throws Exception {
        Reply r = post(path, body);
        if (r.status() != 200) {
            throw new AssertionError("HTTP " + r.status() + ": " + r.body());
        }
        JsonNode choice = r.body().get("choices").get(0);
        List<Integer> ids = new ArrayList<>();
        choice.path("token_ids").forEach(n -> ids.add(n.asInt()));
        String text = choice.has("message")
                ? choice.get("message").get("content").asString()
                : choice.get("text").asString();
        JsonNode usage = r.body().get("usage");
        return new Generation(
                ids,
                text,
                usage.get("prompt_tokens").asInt(),
                usage.get("prompt_tokens_details").get("cached_tokens").asInt(),
                choice.get("finish_reason").asString());
    }

    /** A streaming request: every SSE line checked against OpenAI's framing, chunks joined. */
    Generation stream(String path, Object body, List<String> rawEvents) throws Exception {
        HttpResponse<java.io.InputStream> r = http.send(
                request(path)
                        .timeout(Duration.ofSeconds(120))
                        .header("Content-Type", "application/json")
                        .POST(HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(body)))
                        .build(),
                HttpResponse.BodyHandlers.ofInputStream());
        if (r.statusCode() != 200) {
            throw new AssertionError(
                    "HTTP " + r.statusCode() + ": " + new String(r.body().readAllBytes(), StandardCharsets.UTF_8));
        }
        if (!r.headers().firstValue("content-type").orElse("").startsWith("text/event-stream")) {
            throw new AssertionError("not an event stream: " + r.headers().map());
        }
        List<Integer> ids = new ArrayList<>();
        StringBuilder text = new StringBuilder();
        int prompt = -1;
        int cached = -1;
        String finish = null;
        try (BufferedReader in = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8))) {
            String line;
            boolean blankExpected = false;
            while ((line = in.readLine()) != null) {
                if (blankExpected) {
                    if (!line.isEmpty()) {
                        throw new AssertionError("an SSE event must end with a blank line, got: " + line);
                    }
                    blankExpected = false;
                    continue;
                }
                if (!line.startsWith("data: ")) {
                    throw new AssertionError("unexpected SSE line: " + line);
                }
                rawEvents.add(line);
                blankExpected = true;
                String data = line.substring(6);
                if (data.equals("[DONE]")) {
                    break;
                }
                JsonNode chunk = JSON.readTree(data);
                if (chunk.has("error")) {
                    throw new AssertionError("error event: " + data);
                }
                if (chunk.hasNonNull("usage")) {
                    prompt = chunk.get("usage").get("prompt_tokens").asInt();
                    cached = chunk.get("usage")
                            .get("prompt_tokens_details")
                            .get("cached_tokens")
                            .asInt();
                }
                for (JsonNode choice : chunk.get("choices")) {
                    choice.path("token_ids").forEach(n -> ids.add(n.asInt()));
                    JsonNode delta = choice.has("delta") ? choice.get("delta").path("content") : choice.path("text");
                    if (delta.isString()) {
                        text.append(delta.asString());
                    }
                    if (choice.hasNonNull("finish_reason")) {
                        finish = choice.get("finish_reason").asString();
                    }
                }
            }
        }
        return new Generation(ids, text.toString(), prompt, cached, finish);
    }

    /** The same generation over gRPC {@code goldfinch.v1.Generation/Generate}. */
    Generation grpcChat(List<String[]> messages, SamplingParams sampling, String salt) {
        ChatMessages.Builder chat = ChatMessages.newBuilder();
        for (String[] m : messages) {
            chat.addMessages(ChatMessage.newBuilder().setRole(m[0]).setContentUtf8(ByteString.copyFromUtf8(m[1])));
        }
        return grpcGenerate(GenerateRequest.newBuilder()
                .setChat(chat)
                .setSampling(sampling)
                .setCacheSalt(salt)
                .build());
    }

    Generation grpcGenerate(GenerateRequest request) {
        Iterator<GenerateResponse> it = GenerationGrpc.newBlockingStub(grpc)
                .withDeadlineAfter(120, TimeUnit.SECONDS)
                .generate(request);
        List<Integer> ids = new ArrayList<>();
        StringBuilder text = new StringBuilder();
        int prompt = -1;
        int cached = -1;
        String finish = null;
        while (it.hasNext()) {
            GenerateResponse r = it.next();
            ids.addAll(r.getTokenIdsList());
            text.append(r.getText());
            if (r.hasUsage()) {
                prompt = r.getUsage().getPromptTokens();
                cached = r.getUsage().getCachedTokens();
                finish = r.getFinishReason().name();
            }
        }
        return new Generation(ids, text.toString(), prompt, cached, finish);
    }

    @Override
    public void close() {
        Channels.close(grpc);
    }
}
