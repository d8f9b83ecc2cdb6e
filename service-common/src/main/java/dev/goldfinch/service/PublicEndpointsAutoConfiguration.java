package dev.goldfinch.service;

import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnWebApplication;
import org.springframework.boot.health.actuate.endpoint.HealthEndpoint;
import org.springframework.context.annotation.Bean;

/** {@link PublicEndpoints} on every service's public HTTP port. */
@AutoConfiguration
@ConditionalOnWebApplication(type = ConditionalOnWebApplication.Type.SERVLET)
public class PublicEndpointsAutoConfiguration {
    @Bean
    PublicEndpoints goldfinchPublicEndpoints(
            ObjectProvider<PrometheusMeterRegistry> prometheus, ObjectProvider<HealthEndpoint> health) {
        return new PublicEndpoints(prometheus, health);
    }
}
