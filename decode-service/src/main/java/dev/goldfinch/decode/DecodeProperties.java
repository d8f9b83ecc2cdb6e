package dev.goldfinch.decode;

import java.time.Duration;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.util.unit.DataSize;

/**
 * {@code goldfinch.decode.*}.
 *
 * @param cacheStore    gRPC target of the cache store
 * @param maxSequences  sequences admitted at once (live + loading); beyond it, RESOURCE_EXHAUSTED
 * @param maxBatch      sequences advanced per step
 * @param localEntries  restored entries kept in this replica's LRU
 * @param stateDtype    float type of the checkpoints it writes ({@code f32} or {@code bf16})
 * @param storeTimeout  deadline of one cache-store call
 * @param vocab         vocabulary file structured outputs are masked over; empty = the model's (see
 *                      {@code WorldTokenizer.forModel}); must be the gateway's
 * @param schemaCache   compiled JSON schemas kept (each with its cached token masks)
 * @param kvBudget      live GOLD keys and values all admitted sequences may hold together, each counted at
 *                      (prompt + max_tokens) × the model's live bytes per token; beyond it, RESOURCE_EXHAUSTED.
 *                      Default: half the heap
 */
@ConfigurationProperties("goldfinch.decode")
public record DecodeProperties(
        String cacheStore,
        Integer maxSequences,
        Integer maxBatch,
        Integer localEntries,
        String stateDtype,
        Duration storeTimeout,
        String vocab,
        Integer schemaCache,
        DataSize kvBudget) {
    public DecodeProperties {
        cacheStore = cacheStore == null ? "127.0.0.1:9093" : cacheStore;
        maxSequences = maxSequences == null ? 64 : maxSequences;
        maxBatch = maxBatch == null ? 32 : maxBatch;
        localEntries = localEntries == null ? 16 : localEntries;
        stateDtype = stateDtype == null ? "f32" : stateDtype;
        storeTimeout = storeTimeout == null ? Duration.ofSeconds(10) : storeTimeout;
        schemaCache = schemaCache == null ? 16 : schemaCache;
        // Unset stays null: the default (half the heap) depends on the JVM it runs in, see kvBudgetBytes.
    }

    /** {@code kvBudget} in bytes, or half this JVM's heap when unset. */
    public long kvBudgetBytes() {
        return kvBudget == null ? DecodeEngine.defaultKvBudget() : kvBudget.toBytes();
    }
}
