package dev.goldfinch.service;

import java.time.Duration;
import org.springframework.boot.context.properties.ConfigurationProperties;

/**
 * How a service drains on shutdown ({@link GracefulDrain}).
 *
 * @param notice  how long it reports NOT_SERVING while still taking calls, so the gateway's health round (2 s)
 *                sees it before calls are refused (default 3 s)
 * @param timeout how long calls in progress then get to finish before they are cut (default 30 s)
 */
@ConfigurationProperties("goldfinch.drain")
public record DrainProperties(Duration notice, Duration timeout) {
    public DrainProperties {
        notice = notice == null ? Duration.ofSeconds(3) : notice;
        timeout = timeout == null ? Duration.ofSeconds(30) : timeout;
    }
}
