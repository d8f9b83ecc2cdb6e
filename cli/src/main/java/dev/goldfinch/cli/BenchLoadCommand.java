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
import java.util.concurrent.TimeoutException;
import org.HdrHistogram.Histogram;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
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

    @Mixin
    GatewayTarget gateway;

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

    @Option(
            names = "--timeout",
            defaultValue = "300",
            description = "Seconds a request may take, from its arrival to its last byte; a slower one counts as"
                    + " 'timeout' (default: ${DEFAULT-VALUE}).")
    double timeout;

    @Option(names = "--json", description = "Print one JSON object instead of the table.")
    boolean json;

    /** A request sent, and when it was due. */
    private record Sent(long due, Future<CompletionStream.Timing> answer) {}

    @Override
    public Integer call() throws Exception {
        if (!(rate > 0) || !(duration > 0) || !(timeout > 0)) {
            throw new dev.goldfinch.model.GoldFinchException.InvalidInput(
                    "--rate, --duration and --timeout must be positive");
        }
        Random random = new Random(seed);
        List<List<Integer>> shared = new ArrayList<>();
        for (int i = 0; i < prefixes; i++) {
            shared.add(random.ints(prefixTokens, 1, 65000).boxed().toList());
        }
        Duration perRequest = Duration.ofMillis((long) (timeout * 1e3));
        ExecutorService clients = Executors.newVirtualThreadPerTaskExecutor();
        HttpClient http = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1) // one connection per stream, as OpenAI clients do
                .connectTimeout(Duration.ofSeconds(5))
                .executor(clients)
                .build();
        Histogram ttft = new Histogram(3); // microseconds
        Histogram itl = new Histogram(3);
        Map<String, Integer> byStatus = new TreeMap<>();
        List<Sent> pending = new ArrayList<>();
        long start = System.nanoTime();
        long end = start + (long) (duration * 1e9);
        long next = start;
        try {
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
                long due = next;
                pending.add(new Sent(due, clients.submit(() -> {
                    try {
                        return CompletionStream.send(http, gateway.url, gateway.apiKey, body, due, perRequest);
                    } catch (Exception e) {
                        return new CompletionStream.Timing(0, -1, List.of(), -1, 0, false); // 0: no HTTP answer
                    }
                })));
            }
            int completed = 0;
            int good = 0;
            long generated = 0;
            long lastAnswer = start;
            for (Sent s : pending) {
                CompletionStream.Timing t;
                try {
                    t = s.answer()
                            .get(Math.max(0, s.due() + perRequest.toNanos() - System.nanoTime()), TimeUnit.NANOSECONDS);
                } catch (TimeoutException e) {
                    s.answer().cancel(true);
                    byStatus.merge("timeout", 1, Integer::sum);
                    continue;
                }
                lastAnswer = Math.max(lastAnswer, System.nanoTime());
                byStatus.merge(statusName(t), 1, Integer::sum);
                if (t.status() == 200 && t.ttft() >= 0) {
                    ttft.recordValue(Math.max(1, (long) (t.ttft() * 1e6)));
                    t.gaps().forEach(g -> itl.recordValue(Math.max(1, (long) (g * 1e3))));
                    generated += t.tokens();
                }
                if (t.status() == 200 && t.finished()) {
                    completed++;
                    if (t.ttft() >= 0 && t.ttft() <= ttftSlo) {
                        good++;
                    }
                }
            }
            double elapsed = (lastAnswer - start) / 1e9;
            report(pending.size(), completed, good, generated, Math.max(duration, elapsed), ttft, itl, byStatus);
        } finally {
            http.shutdownNow(); // ends the reads of streams given up on, so no client thread outlives the run
            clients.shutdownNow();
        }
        return 0;
    }

    /** The HTTP status, or what else became of the request. */
    private static String statusName(CompletionStream.Timing t) {
        if (t.status() == 0) {
            return "no answer";
        }
        if (t.error() != null && t.ttft() >= 0) {
            return "error mid-stream: " + t.error();
        }
        if (t.status() == 200 && !t.finished()) {
            return "cut short";
        }
        return Integer.toString(t.status());
    }

    private void report(
            int sent,
            int completed,
            int good,
            long generated,
            double elapsed,
            Histogram ttft,
            Histogram itl,
            Map<String, Integer> byStatus) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("rate", rate);
        out.put("duration_s", duration);
        out.put("elapsed_s", elapsed);
        out.put("requests", sent);
        out.put("offered_rps", sent / duration);
        out.put("completed", completed);
        out.put("completed_rps", completed / elapsed);
        out.put("good", good);
        out.put("goodput_rps", good / elapsed);
        out.put("by_status", byStatus);
        out.put("output_tokens_per_s", generated / elapsed);
        out.put("ttft_ms", percentiles(ttft, 1e3));
        out.put("itl_ms", percentiles(itl, 1e3));
        if (json) {
            System.out.println(JSON.writeValueAsString(out));
            return;
        }
        System.out.printf(
                "rate %.2f/s for %.0f s: %d requests (offered %.2f/s), by status %s%n",
                rate, duration, sent, sent / duration, byStatus);
        System.out.printf(
                "completed %.2f req/s, goodput %.2f req/s (finished, TTFT <= %.1f s), %.1f output tokens/s"
                        + " over %.1f s%n",
                completed / elapsed, good / elapsed, ttftSlo, generated / elapsed, elapsed);
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
