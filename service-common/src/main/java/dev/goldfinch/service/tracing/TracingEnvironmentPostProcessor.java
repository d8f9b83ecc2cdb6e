package dev.goldfinch.service.tracing;

import java.util.Map;
import org.springframework.boot.EnvironmentPostProcessor;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.context.config.ConfigDataEnvironmentPostProcessor;
import org.springframework.core.Ordered;
import org.springframework.core.env.ConfigurableEnvironment;
import org.springframework.core.env.MapPropertySource;

/**
 * Tracing follows the OTLP endpoint: with {@value #ENDPOINT} set every request is sampled and exported; without
 * it none is (Boot's own default would sample a tenth and send them nowhere). Either way the trace context and
 * the request id still travel between services, so every service's log lines carry them. An explicit
 * {@value #PROBABILITY} wins.
 */
public class TracingEnvironmentPostProcessor implements EnvironmentPostProcessor, Ordered {
    public static final String ENDPOINT = "management.opentelemetry.tracing.export.otlp.endpoint";
    public static final String PROBABILITY = "management.tracing.sampling.probability";

    @Override
    public int getOrder() {
        return ConfigDataEnvironmentPostProcessor.ORDER + 1; // after application-<profile>.properties are read
    }

    @Override
    public void postProcessEnvironment(ConfigurableEnvironment env, SpringApplication application) {
        boolean exporting = !env.getProperty(ENDPOINT, "").isBlank();
        env.getPropertySources()
                .addLast(new MapPropertySource("goldfinch-tracing", Map.of(PROBABILITY, exporting ? "1.0" : "0.0")));
    }
}
