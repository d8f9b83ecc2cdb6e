package dev.goldfinch.cli;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/** One streamed {@code /v1/completions} request, timed as a client sees it: what both mesh benchmarks measure. */
final class CompletionStream {
    private static final JsonMapper JSON = JsonMapper.builder().build();

    /** HTTP status (200 when it streamed), seconds to the first token, ms between tokens, cached prompt tokens. */
    record Timing(int status, double ttft, List<Double> gaps, int cached, int tokens) {}

    private CompletionStream() {}

    static Timing send(HttpClient http, String url, String apiKey, Map<String, Object> body) throws Exception {
        long t0 = System.nanoTime();
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(url + "/v1/completions"));
        if (apiKey != null && !apiKey.isEmpty()) {
            request.header("Authorization", "Bearer " + apiKey);
        }
        HttpResponse<java.io.InputStream> r = http.send(
                request.header("Content-Type", "application/json")
                        .POST(HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(body)))
                        .build(),
                HttpResponse.BodyHandlers.ofInputStream());
        if (r.statusCode() != 200) {
            r.body().readAllBytes();
            return new Timing(r.statusCode(), -1, List.of(), -1, 0);
        }
        double ttft = -1;
        long last = 0;
        List<Double> gaps = new ArrayList<>();
        int cached = -1;
        int tokens = 0;
        try (BufferedReader in = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8))) {
            for (String line; (line = in.readLine()) != null; ) {
                if (!line.startsWith("data: {")) {
                    continue;
                }
                long now = System.nanoTime();
                JsonNode chunk = JSON.readTree(line.substring(6));
                if (chunk.hasNonNull("error")) {
                    return new Timing(500, ttft, gaps, cached, tokens);
                }
                if (chunk.hasNonNull("usage")) {
                    cached = chunk.get("usage")
                            .get("prompt_tokens_details")
                            .get("cached_tokens")
                            .asInt();
                    continue;
                }
                if (chunk.get("choices").get(0).hasNonNull("finish_reason")) {
                    continue;
                }
                tokens++;
                if (ttft < 0) {
                    ttft = (now - t0) / 1e9;
                } else {
                    gaps.add((now - last) / 1e6);
                }
                last = now;
            }
        }
        return new Timing(200, ttft, gaps, cached, tokens);
    }
}
