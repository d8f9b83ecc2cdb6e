package dev.goldfinch.service;

import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.util.Map;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.health.actuate.endpoint.HealthEndpoint;
import org.springframework.boot.health.contributor.Status;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.RestController;

/**
 * What a service's public HTTP port serves of its operation, as vLLM does: {@code /health} (200 when up,
 * else 503) and {@code /metrics} (Prometheus text). Everything else of Actuator lives on the management
 * port ({@code management.server.port}), which binds to loopback unless configured otherwise.
 */
@RestController
public class PublicEndpoints {
    /** Prometheus' text exposition format, the one {@code /actuator/prometheus} answers by default. */
    static final String PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8";

    private final ObjectProvider<PrometheusMeterRegistry> prometheus;
    private final ObjectProvider<HealthEndpoint> health;

    public PublicEndpoints(ObjectProvider<PrometheusMeterRegistry> prometheus, ObjectProvider<HealthEndpoint> health) {
        this.prometheus = prometheus;
        this.health = health;
    }

    @GetMapping(value = "/metrics", produces = PROMETHEUS_TEXT)
    public ResponseEntity<String> metrics() {
        PrometheusMeterRegistry registry = prometheus.getIfAvailable();
        return registry == null ? ResponseEntity.notFound().build() : ResponseEntity.ok(registry.scrape());
    }

    @GetMapping("/health")
    public ResponseEntity<Map<String, String>> health() {
        HealthEndpoint endpoint = health.getIfAvailable();
        Status status = endpoint == null ? Status.UP : endpoint.health().getStatus();
        return ResponseEntity.status(Status.UP.equals(status) ? 200 : 503).body(Map.of("status", status.getCode()));
    }
}
