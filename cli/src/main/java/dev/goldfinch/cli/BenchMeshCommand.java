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
                "Against a running mesh (goldfinch serve): TTFT of a long prompt cold and with most of it cached, requests/s and inter-token latency by concurrency, cache bytes per token in Redis; then the engine's own decode speed for the same shape, measured in this process, and the mesh's ratios to it.")
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

    @Option(
            names = "--shape",
            required = true,
            description = "The served model's shape (serve --shape; the gateway does not report it), e.g. L12-D768:"
                    + " the engine reference is random weights of this shape decoding in this process.")
    String shape;

    @Option(
            names = "--dtype",
            defaultValue = "f32",
            description = "The served weights, for the engine reference: f32, bf16 or q8_0 (serve --quantize q8_0)"
                    + " (default: ${DEFAULT-VALUE}).")
    String dtype;

    @Option(
            names = "--kv-format",
            defaultValue = "f32",
            description = "The served live K/V format (serve --kv-format), for the engine reference (default:"
                    + " ${DEFAULT-VALUE}).")
    String kvFormat;

    @Option(
            names = "--cached-stream-tokens",
            defaultValue = "128",
            description =
                    "Tokens per stream in the cached-prompt runs set against the engine (default: ${DEFAULT-VALUE}).")
    int cachedStreamTokens;

    @Option(
            names = "--repeats",
            defaultValue = "3",
            description =
                    "Runs of each cached-prompt figure and of each engine figure; medians (default: ${DEFAULT-VALUE}).")
    int repeats;

    @Option(names = "--json", description = "Print one JSON object instead of the table.")
    boolean json;

    /** Context of the engine reference: the cached runs' 64-token prompts plus their generated tokens, about. */
    private static final int REFERENCE_CONTEXT = 128;

    final HttpClient http =
            HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    record Timing(double ttft, List<Double> gaps, int cached) {}

    /** A greedy streamed completion of {@code prompt} under {@code salt}, usage in its last chunk. */
    private static Map<String, Object> streamBody(List<Integer> prompt, String salt, int tokens) {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("prompt", prompt);
        body.put("max_tokens", tokens);
        body.put("temperature", 0);
        body.put("stream", true);
        body.put("stream_options", Map.of("include_usage", true));
        body.put("cache_salt", salt);
        return body;
    }

    Timing stream(List<Integer> prompt, String salt, int tokens) throws Exception {
        CompletionStream.Timing t =
                CompletionStream.send(http, gateway.url, gateway.apiKey, streamBody(prompt, salt, tokens));
        if (t.status() != 200) {
            throw new IllegalStateException("HTTP " + t.status());
        }
        return new Timing(t.ttft(), t.gaps(), t.cached());
    }

    @Override
    public Integer call() throws Exception {
        dev.goldfinch.model.ModelShapes.parse(shape); // a bad shape fails now, not after the mesh runs
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
        // The engine, in this process, alternates run for run with the mesh's cached-prompt runs: on a shared machine
        // both then see the same load, and each pair's ratio is taken before the medians.
        try (EngineReference engine = new EngineReference(shape, dtype, kvFormat, REFERENCE_CONTEXT)) {
            Map<String, Object> reference = new LinkedHashMap<>();
            reference.put("shape", shape);
            reference.put("dtype", dtype);
            reference.put("kv_format", kvFormat);
            reference.put("context", engine.context());
            reference.put("steps_per_run", EngineReference.STEPS);
            Map<String, Object> one = cachedStreams(1, random, engine, reference);
            Map<String, Object> sixteen = cachedStreams(16, random, engine, reference);
            out.put("cached_1_stream", one);
            out.put("cached_16_streams", sixteen);
            out.put("engine", reference);
            out.put("itl_1_stream_over_engine_b1_step", one.get("itl_over_engine_step"));
            out.put("tps_16_streams_cached_over_engine_b16", sixteen.get("tps_over_engine"));
        }
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
            @SuppressWarnings("unchecked")
            Map<String, Object> reference = (Map<String, Object>) out.get("engine");
            System.out.printf(
                    "%nCached prompts, %d tokens a stream: 1 stream ITL p50 %.1f ms, 16 streams %.1f tok/s%n",
                    cachedStreamTokens,
                    ((Map<?, ?>) out.get("cached_1_stream")).get("itl_median_ms"),
                    ((Map<?, ?>) out.get("cached_16_streams")).get("tokens_per_s"));
            System.out.printf(
                    "Engine (%s %s, context %d, in this process, run for run with those): b1 step %.1f ms, b16"
                            + " %.1f tok/s%n",
                    shape, dtype, REFERENCE_CONTEXT, reference.get("b1_step_ms"), reference.get("b16_tps"));
            System.out.printf(
                    "Mesh / engine: ITL at 1 stream %.2fx the b1 step (target <= 1.2); 16 streams %.2fx b16 tok/s"
                            + " (target >= 0.8)%n",
                    out.get("itl_1_stream_over_engine_b1_step"), out.get("tps_16_streams_cached_over_engine_b16"));
        }
        return 0;
    }

    /**
     * {@code streams} concurrent streams of {@link #cachedStreamTokens} tokens whose 64-token prompts are already in
     * the cache (each sent once first, for one token), so decode is what is timed: generated tokens/s over the wall
     * time of each run (median of {@link #repeats}), inter-token gaps of every run pooled. After each run, one engine
     * run of the same batch: its figures go into {@code reference} (b1 step ms, or b16 tok/s), and the mesh's ratio
     * to it, run by run, median, into the result.
     */
    private Map<String, Object> cachedStreams(
            int streams, Random random, EngineReference engine, Map<String, Object> reference) throws Exception {
        String salt = "bench-cached-" + UUID.randomUUID();
        List<List<Integer>> prompts = new ArrayList<>();
        for (int i = 0; i < streams; i++) {
            prompts.add(random.ints(64, 1, 65000).boxed().toList());
        }
        run(prompts, salt, 1); // prefills them: the runs below find every prompt cached
        List<Double> rates = new ArrayList<>();
        List<Double> gaps = new ArrayList<>();
        List<Double> ttfts = new ArrayList<>();
        List<Integer> cached = new ArrayList<>();
        List<Double> engineRates = new ArrayList<>();
        List<Double> ratios = new ArrayList<>();
        for (int r = 0; r < Math.max(1, repeats); r++) {
            long t0 = System.nanoTime();
            List<CompletionStream.Timing> timings = run(prompts, salt, cachedStreamTokens);
            double seconds = (System.nanoTime() - t0) / 1e9;
            int tokens = 0;
            List<Double> runGaps = new ArrayList<>();
            for (CompletionStream.Timing t : timings) {
                tokens += t.tokens();
                runGaps.addAll(t.gaps());
                ttfts.add(t.ttft());
                cached.add(t.cached());
            }
            gaps.addAll(runGaps);
            rates.add(tokens / seconds);
            double engineTps = engine.tokensPerSecond(streams);
            engineRates.add(engineTps);
            if (streams == 1) {
                Collections.sort(runGaps);
                ratios.add(runGaps.isEmpty() ? 0 : runGaps.get(runGaps.size() / 2) / (1000.0 / engineTps));
            } else {
                ratios.add(tokens / seconds / engineTps);
            }
        }
        Collections.sort(engineRates);
        Collections.sort(ratios);
        double engineTps = engineRates.get(engineRates.size() / 2);
        if (streams == 1) {
            reference.put("b1_step_ms", BenchCommand.round(1000.0 / engineTps));
            reference.put("b1_tps", BenchCommand.round(engineTps));
        } else {
            reference.put("b" + streams + "_tps", BenchCommand.round(engineTps));
        }
        Collections.sort(rates);
        Collections.sort(gaps);
        Collections.sort(ttfts);
        Collections.sort(cached);
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("streams", streams);
        m.put("tokens_per_stream", cachedStreamTokens);
        m.put("tokens_per_s", rates.get(rates.size() / 2));
        m.put("itl_median_ms", gaps.isEmpty() ? 0.0 : gaps.get(gaps.size() / 2));
        m.put("itl_p90_ms", gaps.isEmpty() ? 0.0 : gaps.get((int) (gaps.size() * 0.9)));
        m.put("ttft_median_s", ttfts.get(ttfts.size() / 2));
        m.put("cached_prompt_tokens_median", cached.get(cached.size() / 2));
        m.put(
                streams == 1 ? "itl_over_engine_step" : "tps_over_engine",
                BenchCommand.round(ratios.get(ratios.size() / 2)));
        return m;
    }

    /** Streams every prompt at once, {@code tokens} each; their timings, in prompt order. */
    private List<CompletionStream.Timing> run(List<List<Integer>> prompts, String salt, int tokens) throws Exception {
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<CompletionStream.Timing>> runs = new ArrayList<>();
            for (List<Integer> p : prompts) {
                runs.add(pool.submit(() -> {
                    CompletionStream.Timing t =
                            CompletionStream.send(http, gateway.url, gateway.apiKey, streamBody(p, salt, tokens));
                    if (t.status() != 200) {
                        throw new IllegalStateException(
                                "HTTP " + t.status() + (t.error() == null ? "" : ": " + t.error()));
                    }
                    return t;
                }));
            }
            List<CompletionStream.Timing> out = new ArrayList<>();
            for (Future<CompletionStream.Timing> f : runs) {
                out.add(f.get());
            }
            return out;
        }
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
