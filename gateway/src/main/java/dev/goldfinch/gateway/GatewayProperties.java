package dev.goldfinch.gateway;

import java.time.Duration;
import java.util.List;
import org.springframework.boot.context.properties.ConfigurationProperties;

/**
 * {@code goldfinch.gateway.*}.
 *
 * @param vocab           the RWKV World vocabulary file (rwkv_vocab_v20230424.txt); a plain file path
 * @param prefill         gRPC target of the prefill service ({@code host:port} or {@code dns:///name:port})
 * @param decodeTargets   decode replicas: {@code host:port} entries, or {@code dns:NAME:PORT} for every address NAME resolves to
 * @param maxInflight     requests in progress at once; beyond it, RESOURCE_EXHAUSTED / HTTP 429
 * @param requestTimeout  deadline of a whole generation
 * @param healthInterval  how often replicas' health and DNS names are refreshed
 * @param affinitySlack   how many more live sequences a replica holding the entry may have and still be preferred
 */
@ConfigurationProperties("goldfinch.gateway")
public record GatewayProperties(
        String vocab,
        String prefill,
        List<String> decodeTargets,
        Integer maxInflight,
        Duration requestTimeout,
        Duration healthInterval,
        Integer affinitySlack) {
    public GatewayProperties {
        prefill = prefill == null ? "127.0.0.1:9091" : prefill;
        decodeTargets = decodeTargets == null || decodeTargets.isEmpty()
                ? List.of("127.0.0.1:9092")
                : List.copyOf(decodeTargets);
        maxInflight = maxInflight == null ? 256 : maxInflight;
        requestTimeout = requestTimeout == null ? Duration.ofMinutes(10) : requestTimeout;
        healthInterval = healthInterval == null ? Duration.ofSeconds(2) : healthInterval;
        affinitySlack = affinitySlack == null ? 2 : affinitySlack;
    }
}
