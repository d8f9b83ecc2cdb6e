package dev.goldfinch.gateway;

import dev.goldfinch.proto.internal.v1.CacheStoreGrpc;
import dev.goldfinch.proto.internal.v1.StatsRequest;
import dev.goldfinch.proto.internal.v1.StatsResponse;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.distribution.CountAtBucket;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.RestController;

/**
 * {@code GET /v1/mesh/status}: what the playground's mesh view draws — the decode replicas with their health
 * and live sequences, requests in progress, prompt and cached tokens, the cache store's bytes, and the TTFT
 * and inter-token latency histograms as cumulative buckets (a client takes the difference of two polls for
 * recent percentiles, as Prometheus' {@code rate} does). Behind the API key like every route but health.
 */
@RestController
public class MeshStatusController {
    private final ReplicaRouter router;
    private final MeterRegistry meters;
    private final Optional<ManagedChannel> cacheStore;

    /** The cache store the status reads its bytes from ({@code goldfinch.gateway.cache-store}), when set. */
    public record CacheStoreChannel(ManagedChannel channel) implements AutoCloseable {
        @Override
        public void close() {
            channel.shutdownNow();
        }
    }

    public MeshStatusController(
            ReplicaRouter router, MeterRegistry meters, ObjectProvider<CacheStoreChannel> cacheStore) {
        this.router = router;
        this.meters = meters;
        this.cacheStore = Optional.ofNullable(cacheStore.getIfAvailable()).map(CacheStoreChannel::channel);
    }

    @GetMapping("/v1/mesh/status")
    public Map<String, Object> status() {
        Map<String, Object> out = new LinkedHashMap<>();
        List<Map<String, Object>> replicas = new ArrayList<>();
        for (ReplicaRouter.Replica r : router.replicas()) {
            replicas.add(Map.of("target", r.target(), "healthy", r.healthy, "live_sequences", r.live()));
        }
        out.put("decode_replicas", replicas);
        out.put("requests_running", gauge("goldfinch.requests_running"));
        out.put("prompt_tokens", counter("goldfinch.prompt_tokens"));
        out.put("cached_tokens", counter("goldfinch.prefix_cache.cached_tokens"));
        out.put("generation_tokens", counter("goldfinch.generation_tokens"));
        out.put("time_to_first_token", histogram("goldfinch.time_to_first_token"));
        out.put("inter_token_latency", histogram("goldfinch.inter_token_latency"));
        cacheStore.ifPresent(channel -> out.put("cache_store", cacheStats(channel)));
        return out;
    }

    private long counter(String name) {
        Counter c = meters.find(name).counter();
        return c == null ? 0 : (long) c.count();
    }

    private long gauge(String name) {
        var g = meters.find(name).gauge();
        return g == null ? 0 : (long) g.value();
    }

    /** Cumulative bucket counts in milliseconds: {@code [[le_ms, count], …]}. */
    private Map<String, Object> histogram(String name) {
        Timer t = meters.find(name).timer();
        Map<String, Object> h = new LinkedHashMap<>();
        if (t == null) {
            h.put("count", 0);
            h.put("buckets", List.of());
            return h;
        }
        var snapshot = t.takeSnapshot();
        List<double[]> buckets = new ArrayList<>();
        for (CountAtBucket b : snapshot.histogramCounts()) {
            buckets.add(new double[] {b.bucket(TimeUnit.MILLISECONDS), b.count()});
        }
        h.put("count", snapshot.count());
        h.put("sum_ms", snapshot.total(TimeUnit.MILLISECONDS));
        h.put("buckets", buckets);
        return h;
    }

    private static Map<String, Object> cacheStats(ManagedChannel channel) {
        try {
            StatsResponse s = CacheStoreGrpc.newBlockingStub(channel)
                    .withDeadlineAfter(1, TimeUnit.SECONDS)
                    .stats(StatsRequest.getDefaultInstance());
            return Map.of(
                    "backend", s.getBackend(),
                    "bytes", s.getBytes(),
                    "hits", s.getHits(),
                    "misses", s.getMisses());
        } catch (StatusRuntimeException e) {
            return Map.of("error", e.getStatus().getCode().name());
        }
    }
}
