package dev.goldfinch.service;

import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.context.annotation.Bean;
import org.springframework.grpc.server.exception.GrpcExceptionHandler;

/**
 * Registers {@link GrpcErrors} as the gRPC server exception handler of every service (an auto-configuration,
 * so no service has to remember it): whatever a service method throws, or hands to {@code onError} as a
 * plain exception, reaches the caller as the status of the one {@link ErrorTable}.
 */
@AutoConfiguration
@ConditionalOnClass(GrpcExceptionHandler.class)
public class GrpcErrorsAutoConfiguration {
    @Bean
    GrpcExceptionHandler goldfinchGrpcExceptionHandler() {
        return t -> {
            var s = GrpcErrors.toStatus(t);
            return s.getStatus().asException(s.getTrailers());
        };
    }
}
