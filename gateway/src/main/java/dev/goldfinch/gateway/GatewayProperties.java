package dev.goldfinch.gateway;

import java.time.Duration;
import java.util.List;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.util.unit.DataSize;

/**
 * {@code goldfinch.gateway.*}.
 *
 * @param vocab           {@code world} (the RWKV World vocabulary bundled in the jar), {@code bytes} (token id = byte)
 *                        or a World-format vocabulary file; absent: chosen from the served model's vocabulary size
 *                        (256: bytes, else World). It must not hold ids the model lacks: the gateway refuses to start
 * @param prefill         gRPC target of the prefill service, or several comma-separated replicas ({@code host:port},
 *                        or {@code dns:NAME:PORT} for every address NAME resolves to), balanced like decode
 * @param decodeTargets   decode replicas: {@code host:port} entries, or {@code dns:NAME:PORT} for every address NAME resolves to
 * @param maxInflight     requests in progress at once; beyond it, RESOURCE_EXHAUSTED / HTTP 429
 * @param requestTimeout  deadline of a whole generation
 * @param healthInterval  how often replicas' health and DNS names are refreshed
 * @param affinitySlack   how many more live sequences a replica holding the entry may have and still be preferred
 * @param apiKeysFile     {@code TENANT KEY} lines ({@link ApiKeys}); absent: the gateway serves anyone, as one anonymous tenant
 * @param cacheStore      gRPC target of the cache store, read only for the playground's mesh view (its bytes); optional
 * @param maxInflightPerTenant requests one tenant may have in progress; default: half of {@code maxInflight} (at
 *                        least 1) with API keys, all of it without (one anonymous tenant)
 * @param maxRequestBody  largest HTTP request body; beyond it, 413 (default 8 MB: a prompt of the longest
 *                        tokens at the default prompt limit, with room for JSON escapes)
 * @param maxChoices      largest {@code n} / {@code best_of} of a request (sequences decoded from its one prefill);
 *                        beyond it, 400 naming the field (default 8)
 * @param servedModelNames names clients may give as {@code model} (vLLM's {@code --served-model-name}); the first
 *                        is the default; absent: the model's own id
 */
@ConfigurationProperties("goldfinch.gateway")
public record GatewayProperties(
        String vocab,
        String prefill,
        List<String> decodeTargets,
        Integer maxInflight,
        Duration requestTimeout,
        Duration healthInterval,
        Integer affinitySlack,
        String apiKeysFile,
        Integer maxInflightPerTenant,
        DataSize maxRequestBody,
        String cacheStore,
        Integer maxChoices,
        List<String> servedModelNames) {
    public GatewayProperties {
        prefill = prefill == null ? "127.0.0.1:9091" : prefill;
        decodeTargets = decodeTargets == null || decodeTargets.isEmpty()
                ? List.of("127.0.0.1:9092")
                : List.copyOf(decodeTargets);
        maxInflight = maxInflight == null ? 256 : maxInflight;
        requestTimeout = requestTimeout == null ? Duration.ofMinutes(10) : requestTimeout;
        healthInterval = healthInterval == null ? Duration.ofSeconds(2) : healthInterval;
        affinitySlack = affinitySlack == null ? 2 : affinitySlack;
        apiKeysFile = apiKeysFile == null || apiKeysFile.isBlank() ? null : apiKeysFile;
        servedModelNames = servedModelNames == null
                ? List.of()
                : servedModelNames.stream()
                        .map(String::strip)
                        .filter(n -> !n.isEmpty())
                        .distinct()
                        .toList();
        maxRequestBody = maxRequestBody == null ? DataSize.ofMegabytes(8) : maxRequestBody;
        maxChoices = maxChoices == null ? 8 : maxChoices;
        if (maxInflightPerTenant == null) {
            maxInflightPerTenant = apiKeysFile == null ? maxInflight : Math.max(1, maxInflight / 2);
        }
    }

    /** The prefill replicas {@link #prefill} names. */
    public List<String> prefillTargets() {
        return java.util.Arrays.stream(prefill.split(","))
                .map(String::strip)
                .filter(t -> !t.isEmpty())
                .toList();
    }
}
