package dev.goldfinch.service;

import io.grpc.protobuf.services.HealthStatusManager;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.context.ApplicationContext;
import org.springframework.context.ApplicationListener;
import org.springframework.context.annotation.Bean;
import org.springframework.context.event.ContextClosedEvent;
import org.springframework.grpc.server.GlobalServerInterceptor;
import org.springframework.grpc.server.lifecycle.GrpcServerStartedEvent;

/**
 * Every service drains on shutdown ({@link GracefulDrain}): {@link DrainProperties}' timeout for calls in progress
 * to finish, after its notice of NOT_SERVING while still taking calls. Spring publishes {@link ContextClosedEvent}
 * before it stops the gRPC server (whose {@code shutdown-grace-period} then has nothing left to wait for)
 * and the web server (graceful too: {@code server.shutdown=graceful}).
 */
@AutoConfiguration
@ConditionalOnClass(GrpcServerStartedEvent.class)
@EnableConfigurationProperties(DrainProperties.class)
public class GracefulDrainAutoConfiguration {
    @Bean
    @GlobalServerInterceptor
    GracefulDrain gracefulDrain(DrainProperties p, ObjectProvider<HealthStatusManager> health) {
        return new GracefulDrain(p.notice(), p.timeout(), health.getIfAvailable());
    }

    @Bean
    ApplicationListener<GrpcServerStartedEvent> gracefulDrainServer(GracefulDrain drain) {
        return e -> drain.serverStarted(e.getServer());
    }

    @Bean
    ApplicationListener<ContextClosedEvent> gracefulDrainOnClose(GracefulDrain drain, ApplicationContext context) {
        return e -> {
            if (e.getApplicationContext() == context) { // not a child's (the management server's) closing
                drain.drain();
            }
        };
    }
}
