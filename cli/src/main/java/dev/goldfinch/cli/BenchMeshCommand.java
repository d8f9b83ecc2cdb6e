package dev.goldfinch.cli;

import io.lettuce.core.RedisClient;
import io.lettuce.core.api.StatefulRedisConnection;
import java.net.http.HttpClient;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import tools.jackson.databind.json.JsonMapper;

@Command(
        name = "mesh",
        mixinStandardHelpOptions = true,
        description =
                "Against a running mesh (goldfinch serve): TTFT of a long prompt cold and with most of it cached, requests/s and inter-token latency by concurrency, cache bytes per token in Redis.")
final class BenchMeshCommand implements Callable<Integer> {
    private static final JsonMapper JSON = JsonMapper.builder().build();

    @Mixin
    GatewayTarget gateway;

    @Option(names = "--prompt-tokens", defaultValue = "4096")
    int promptTokens;

    @Option(names = "--cached-tokens", defaultValue = "4032")
    int cachedTokens;

    @Option(names = "--concurrency", split = ",", defaultValue = "1,4,16")
    int[] concurrency;

    @Option(names = "--max-tokens", defaultValue = "32", description = "Tokens per request in the throughput runs.")
    int maxTokens;

    @Option(
            names = "--redis",
            paramLabel = "URL",
            description = "The mesh's Redis, to report cache bytes per token (used_memory before and after).")
    String redis;

    @Option(names = "--json", description = "Print one JSON object instead of the table.")
    boolean json;

    final HttpClient http =
            HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    record Timing(double ttft, List<Double> gaps, int cached) {}

    Timing stream(List<Integer> prompt, String salt, int tokens) throws Exception {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("prompt", prompt);
        body.put("max_tokens", tokens);
        body.put("temperature", 0);
        body.put("stream", true);
        body.put("stream_options", Map.of("include_usage", true));
        body.put("cache_salt", salt);
        CompletionStream.Timing t = CompletionStream.send(http, gateway.url, gateway.apiKey, body);
        if (t.status() != 200) {
            throw new IllegalStateException("HTTP " + t.status());
        }
        return new Timing(t.ttft(), t.gaps(), t.cached());
    }

    @Override
    public Integer call() throws Exception {
        Map<String, Object> out = new LinkedHashMap<>();
        Random random = new Random(9);
        List<Integer> prompt = random.ints(promptTokens, 1, 65000).boxed().toList();
        String salt = "bench-" + UUID.randomUUID();
        long before = redis == null ? 0 : usedMemory();
        Timing cold = stream(prompt, salt, 1);
        long after = redis == null ? 0 : usedMemory();
        List<Integer> second = new ArrayList<>(prompt.subList(0, cachedTokens));
        random.ints(promptTokens - cachedTokens, 1, 65000).forEach(second::add);
        Timing firstShare =
                stream(second, salt, 1); // resumes from the placed checkpoints, stores one at the branch point
        List<Integer> third = new ArrayList<>(prompt.subList(0, cachedTokens));
        random.ints(promptTokens - cachedTokens, 1, 65000).forEach(third::add);
        Timing warm = stream(third, salt, 1);
        out.put("ttft_cold_s", cold.ttft());
        out.put("ttft_first_shared_s", firstShare.ttft());
        out.put("ttft_first_shared_cached_tokens", firstShare.cached());
        out.put("ttft_cached_s", warm.ttft());
        out.put("ttft_cached_tokens", warm.cached());
        out.put("ttft_cached_over_cold", warm.ttft() / cold.ttft());
        if (redis != null) {
            out.put("redis_bytes_per_prompt_token", (double) (after - before) / promptTokens);
        }
        Map<String, Object> load = new LinkedHashMap<>();
        for (int c : concurrency) {
            ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor();
            List<Future<Timing>> runs = new ArrayList<>();
            long t0 = System.nanoTime();
            for (int i = 0; i < c * 2; i++) {
                List<Integer> p = random.ints(64, 1, 65000).boxed().toList();
                runs.add(pool.submit(() -> stream(p, "bench-load", maxTokens)));
            }
            List<Double> gaps = new ArrayList<>();
            List<Double> ttfts = new ArrayList<>();
            for (Future<Timing> f : runs) {
                gaps.addAll(f.get().gaps());
                ttfts.add(f.get().ttft());
            }
            double seconds = (System.nanoTime() - t0) / 1e9;
            pool.shutdown();
            Collections.sort(gaps);
            Collections.sort(ttfts);
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("requests_per_s", runs.size() / seconds);
            m.put("tokens_per_s", runs.size() * (double) maxTokens / seconds);
            m.put("itl_median_ms", gaps.isEmpty() ? 0 : gaps.get(gaps.size() / 2));
            m.put("itl_p90_ms", gaps.isEmpty() ? 0 : gaps.get((int) (gaps.size() * 0.9)));
            m.put("ttft_median_s", ttfts.get(ttfts.size() / 2));
            load.put(Integer.toString(c), m);
        }
        out.put("concurrency", load);
        if (json) {
            System.out.println(JSON.writeValueAsString(out));
        } else {
            System.out.printf(
                    "TTFT %d-token prompt: cold %.2f s; first prompt sharing %d tokens %.2f s (cached %d); next one %.2f s (cached %d) = %.1f%% of cold%n",
                    promptTokens,
                    cold.ttft(),
                    cachedTokens,
                    firstShare.ttft(),
                    firstShare.cached(),
                    warm.ttft(),
                    warm.cached(),
                    100 * warm.ttft() / cold.ttft());
            if (redis != null) {
                System.out.printf(
                        "Redis bytes per prompt token (keys + checkpoints as stored): %.0f%n",
                        out.get("redis_bytes_per_prompt_token"));
            }
            System.out.printf(
                    "%-12s %10s %10s %12s %12s %12s%n",
                    "concurrent", "req/s", "tok/s", "ITL p50 ms", "ITL p90 ms", "TTFT p50 s");
            for (Map.Entry<String, Object> e : load.entrySet()) {
                @SuppressWarnings("unchecked")
                Map<String, Object> m = (Map<String, Object>) e.getValue();
                System.out.printf(
                        "%-12s %10.2f %10.1f %12.1f %12.1f %12.2f%n",
                        e.getKey(),
                        m.get("requests_per_s"),
                        m.get("tokens_per_s"),
                        m.get("itl_median_ms"),
                        m.get("itl_p90_ms"),
                        m.get("ttft_median_s"));
            }
        }
        return 0;
    }

    private long usedMemory() {
        RedisClient client = RedisClient.create(redis);
        try (StatefulRedisConnection<String, String> c = client.connect()) {
            Matcher m = Pattern.compile("used_memory:(\\d+)").matcher(c.sync().info("memory"));
            return m.find() ? Long.parseLong(m.group(1)) : 0;
        } finally {
            client.shutdown();
        }
    }
}
