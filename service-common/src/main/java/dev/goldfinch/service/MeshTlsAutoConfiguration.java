package dev.goldfinch.service;

import dev.goldfinch.service.tls.TlsProperties;
import io.micrometer.observation.ObservationRegistry;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.context.annotation.Bean;

/** Every service's {@link MeshChannels}, from {@code goldfinch.tls.mesh.*}, observed when observation is on. */
@AutoConfiguration
@EnableConfigurationProperties(TlsProperties.class)
public class MeshTlsAutoConfiguration {
    private static final Logger LOG = LoggerFactory.getLogger(MeshTlsAutoConfiguration.class);

    @Bean
    MeshChannels meshChannels(TlsProperties tls, ObjectProvider<ObservationRegistry> observations) {
        MeshChannels channels =
                new MeshChannels(tls.mesh(), observations.getIfAvailable(() -> ObservationRegistry.NOOP));
        if (channels.tls()) {
            LOG.info("mesh: mutual TLS as {}", tls.mesh().certificate());
        } else {
            LOG.warn("mesh: no goldfinch.tls.mesh.* certificates, service-to-service traffic is plaintext");
        }
        return channels;
    }
}
