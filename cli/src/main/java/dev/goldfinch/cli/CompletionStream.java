package dev.goldfinch.cli;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/** One streamed {@code /v1/completions} request, timed as a client sees it: what both mesh benchmarks measure. */
final class CompletionStream {
    private static final JsonMapper JSON = JsonMapper.builder().build();

    /**
     * HTTP status (200 when it streamed; 500 for an error event mid-stream), seconds to the first token, ms between
     * text chunks, cached prompt tokens, tokens generated (the usage's count when the server sent one, else the text
     * chunks), whether the stream ended with a finish reason (a stream cut short has none), and an error event's
     * {@code code} (else its {@code type}).
     */
    record Timing(int status, double ttft, List<Double> gaps, int cached, int tokens, boolean finished, String error) {
        Timing(int status, double ttft, List<Double> gaps, int cached, int tokens, boolean finished) {
            this(status, ttft, gaps, cached, tokens, finished, null);
        }
    }

    private CompletionStream() {}

    static Timing send(HttpClient http, String url, String apiKey, Map<String, Object> body) throws Exception {
        return send(http, url, apiKey, body, System.nanoTime(), null);
    }

    /**
     * Sends {@code body} and reads the stream; {@code since} ({@link System#nanoTime}) is when the request was due, so
     * an open-loop client that sends late still counts the lateness in the TTFT. {@code timeout} bounds the wait for the
     * response's headers (null: none).
     */
    static Timing send(
            HttpClient http, String url, String apiKey, Map<String, Object> body, long since, Duration timeout)
            throws Exception {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(url + "/v1/completions"));
        if (apiKey != null && !apiKey.isEmpty()) {
            request.header("Authorization", "Bearer " + apiKey);
        }
        if (timeout != null) {
            request.timeout(timeout);
        }
        HttpResponse<java.io.InputStream> r = http.send(
                request.header("Content-Type", "application/json")
                        .POST(HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(body)))
                        .build(),
                HttpResponse.BodyHandlers.ofInputStream());
        if (r.statusCode() != 200) {
            r.body().readAllBytes();
            return new Timing(r.statusCode(), -1, List.of(), -1, 0, false);
        }
        double ttft = -1;
        long last = 0;
        List<Double> gaps = new ArrayList<>();
        int cached = -1;
        int chunks = 0;
        int usageTokens = -1;
        boolean finished = false;
        try (BufferedReader in = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8))) {
            for (String line; (line = in.readLine()) != null; ) {
                if (!line.startsWith("data: {")) {
                    continue;
                }
                long now = System.nanoTime();
                JsonNode chunk = JSON.readTree(line.substring(6));
                if (chunk.hasNonNull("error")) {
                    JsonNode error = chunk.get("error");
                    String kind = error.hasNonNull("code")
                            ? error.get("code").asString()
                            : error.path("type").asString("unknown");
                    return new Timing(500, ttft, gaps, cached, chunks, false, kind);
                }
                if (chunk.hasNonNull("usage")) {
                    JsonNode usage = chunk.get("usage");
                    cached = usage.path("prompt_tokens_details")
                            .path("cached_tokens")
                            .asInt(-1);
                    usageTokens = usage.path("completion_tokens").asInt(-1);
                    continue;
                }
                if (chunk.get("choices").get(0).hasNonNull("finish_reason")) {
                    finished = true;
                    continue;
                }
                chunks++;
                if (ttft < 0) {
                    ttft = (now - since) / 1e9;
                } else {
                    gaps.add((now - last) / 1e6);
                }
                last = now;
            }
        }
        return new Timing(200, ttft, gaps, cached, usageTokens >= 0 ? usageTokens : chunks, finished);
    }
}
