package dev.goldfinch.cli;

import java.net.http.HttpClient;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.Recorder;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import tools.jackson.databind.json.JsonMapper;

/**
 * An open-loop load test: requests arrive as a Poisson process at {@code --rate} whatever the mesh's
 * answers, so a slow server shows as queueing and errors rather than as a politely slower client (a closed
 * loop hides overload). Prompts are drawn from a mix that shares prefixes, as chat traffic does.
 */
@Command(
        name = "load",
        mixinStandardHelpOptions = true,
        footer = {"", "Example:", "  goldfinch bench load --url http://127.0.0.1:8080 --rate 4 --duration 60"},
        description = "Open-loop load against a running mesh: Poisson arrivals at a fixed rate, a prompt mix with"
                + " shared prefixes; reports TTFT and inter-token latency percentiles, goodput and errors by status.")
final class BenchLoadCommand implements Callable<Integer> {
    private static final JsonMapper JSON = JsonMapper.builder().build();

    @Option(
            names = "--url",
            defaultValue = "http://127.0.0.1:8080",
            description = "The gateway (default: ${DEFAULT-VALUE}).")
    String url;

    @Option(
            names = "--api-key",
            defaultValue = "${env:GOLDFINCH_API_KEY}",
            description = "Bearer key (default: the GOLDFINCH_API_KEY environment variable).")
    String apiKey;

    @Option(names = "--rate", required = true, description = "Mean arrivals per second.")
    double rate;

    @Option(names = "--duration", defaultValue = "60", description = "Seconds of arrivals (default: ${DEFAULT-VALUE}).")
    double duration;

    @Option(
            names = "--prefixes",
            defaultValue = "4",
            description = "Shared prefixes (system prompts) in the mix (default: ${DEFAULT-VALUE}).")
    int prefixes;

    @Option(names = "--prefix-tokens", defaultValue = "512", description = "Length of each shared prefix.")
    int prefixTokens;

    @Option(names = "--suffix-tokens", defaultValue = "64", description = "Unique tokens after the prefix.")
    int suffixTokens;

    @Option(names = "--max-tokens", defaultValue = "32", description = "Tokens generated per request.")
    int maxTokens;

    @Option(
            names = "--ttft-slo",
            defaultValue = "2.0",
            description = "A request counts toward goodput when it completes with TTFT under this many seconds.")
    double ttftSlo;

    @Option(names = "--seed", defaultValue = "1", description = "Seeds arrivals and prompts: runs are repeatable.")
    long seed;

    @Option(names = "--json", description = "Print one JSON object instead of the table.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        if (!(rate > 0) || !(duration > 0)) {
            throw new dev.goldfinch.model.GoldFinchException.InvalidInput("--rate and --duration must be positive");
        }
        Random random = new Random(seed);
        List<List<Integer>> shared = new ArrayList<>();
        for (int i = 0; i < prefixes; i++) {
            shared.add(random.ints(prefixTokens, 1, 65000).boxed().toList());
        }
        HttpClient http = HttpClient.newBuilder()
                .connectTimeout(Duration.ofSeconds(5))
                .executor(Executors.newVirtualThreadPerTaskExecutor())
                .build();
        Recorder ttft = new Recorder(3); // microseconds
        Recorder itl = new Recorder(3);
        Map<Integer, Integer> byStatus = new TreeMap<>();
        List<Future<CompletionStream.Timing>> pending = new ArrayList<>();
        long start = System.nanoTime();
        long end = start + (long) (duration * 1e9);
        long next = start;
        int sent = 0;
        try (ExecutorService clients = Executors.newVirtualThreadPerTaskExecutor()) {
            while (true) {
                next += (long) (-Math.log(1 - random.nextDouble()) / rate * 1e9); // exponential gaps: Poisson
                if (next >= end) {
                    break;
                }
                long wait = next - System.nanoTime();
                if (wait > 0) {
                    TimeUnit.NANOSECONDS.sleep(wait);
                }
                List<Integer> prompt = new ArrayList<>(shared.get(random.nextInt(prefixes)));
                random.ints(suffixTokens, 1, 65000).forEach(prompt::add);
                Map<String, Object> body = new LinkedHashMap<>();
                body.put("prompt", prompt);
                body.put("max_tokens", maxTokens);
                body.put("temperature", 0);
                body.put("stream", true);
                body.put("stream_options", Map.of("include_usage", true));
                sent++;
                pending.add(clients.submit(() -> {
                    try {
                        return CompletionStream.send(http, url, apiKey, body);
                    } catch (Exception e) {
                        return new CompletionStream.Timing(0, -1, List.of(), -1, 0); // 0: no HTTP answer
                    }
                }));
            }
            int good = 0;
            long generated = 0;
            for (Future<CompletionStream.Timing> f : pending) {
                CompletionStream.Timing t = f.get();
                byStatus.merge(t.status(), 1, Integer::sum);
                if (t.status() == 200 && t.ttft() >= 0) {
                    ttft.recordValue(Math.max(1, (long) (t.ttft() * 1e6)));
                    t.gaps().forEach(g -> itl.recordValue(Math.max(1, (long) (g * 1e3))));
                    generated += t.tokens();
                    if (t.ttft() <= ttftSlo && t.tokens() == maxTokens) {
                        good++;
                    }
                }
            }
            double elapsed = (System.nanoTime() - start) / 1e9;
            report(sent, good, generated, elapsed, ttft.getIntervalHistogram(), itl.getIntervalHistogram(), byStatus);
        }
        return 0;
    }

    private void report(
            int sent,
            int good,
            long generated,
            double elapsed,
            Histogram ttft,
            Histogram itl,
            Map<Integer, Integer> byStatus) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("rate", rate);
        out.put("duration_s", duration);
        out.put("requests", sent);
        out.put("by_status", byStatus);
        out.put("goodput_rps", good / elapsed);
        out.put("output_tokens_per_s", generated / elapsed);
        out.put("ttft_ms", percentiles(ttft, 1e3));
        out.put("itl_ms", percentiles(itl, 1e3));
        if (json) {
            System.out.println(JSON.writeValueAsString(out));
            return;
        }
        System.out.printf("rate %.2f/s for %.0f s: %d requests, by status %s%n", rate, duration, sent, byStatus);
        System.out.printf(
                "goodput %.2f req/s (TTFT <= %.1f s, all %d tokens), %.1f output tokens/s%n",
                good / elapsed, ttftSlo, maxTokens, generated / elapsed);
        System.out.println("            p50       p90       p99");
        System.out.println(row("TTFT ms", ttft));
        System.out.println(row("ITL ms ", itl));
    }

    private static Map<String, Double> percentiles(Histogram h, double unitsPerMs) {
        Map<String, Double> p = new LinkedHashMap<>();
        for (double q : new double[] {50, 90, 99}) {
            p.put("p" + (int) q, h.getTotalCount() == 0 ? null : h.getValueAtPercentile(q) / unitsPerMs);
        }
        return p;
    }

    private static String row(String name, Histogram h) {
        if (h.getTotalCount() == 0) {
            return name + "        -         -         -";
        }
        return String.format(
                "%s %9.1f %9.1f %9.1f",
                name,
                h.getValueAtPercentile(50) / 1e3,
                h.getValueAtPercentile(90) / 1e3,
                h.getValueAtPercentile(99) / 1e3);
    }
}
