package dev.goldfinch.prefill;

import java.time.Duration;
import org.springframework.boot.context.properties.ConfigurationProperties;

/**
 * {@code goldfinch.prefill.*}.
 *
 * @param cacheStore   gRPC target of the cache store ({@code host:port} or {@code dns:///name:port})
 * @param concurrency  prefills computed at once (each already uses every core for its matrices)
 * @param maxQueue     prefills waiting beyond that before RESOURCE_EXHAUSTED
 * @param stateDtype   checkpoint float type: {@code f32} (lossless: cached and uncached answers are identical) or {@code bf16}
 * @param storeTimeout deadline of one cache-store call
 * @param writeQueue   checkpoint writes waiting for the background writer before new ones are dropped
 * @param initialStates named initial states a request may start from: {@code initial-states.NAME=PATH}, a
 *                      state-tuning file ({@code blocks.N.att.time_state}, .pth or .safetensors) or a saved state
 * @param initialStatesDir a directory of such files, each named after its file name without the extension
 */
@ConfigurationProperties("goldfinch.prefill")
public record PrefillProperties(
        String cacheStore,
        Integer concurrency,
        Integer maxQueue,
        String stateDtype,
        Duration storeTimeout,
        Integer writeQueue,
        java.util.Map<String, String> initialStates,
        String initialStatesDir) {
    public PrefillProperties {
        cacheStore = cacheStore == null ? "127.0.0.1:9093" : cacheStore;
        concurrency = concurrency == null ? 1 : concurrency;
        maxQueue = maxQueue == null ? 64 : maxQueue;
        stateDtype = stateDtype == null ? "f32" : stateDtype;
        storeTimeout = storeTimeout == null ? Duration.ofSeconds(10) : storeTimeout;
        writeQueue = writeQueue == null ? 8 : writeQueue;
        initialStates = initialStates == null ? java.util.Map.of() : java.util.Map.copyOf(initialStates);
    }
}
