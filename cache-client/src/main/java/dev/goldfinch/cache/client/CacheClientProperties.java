package dev.goldfinch.cache.client;

import dev.goldfinch.cache.PrefixHasher;
import org.springframework.boot.context.properties.ConfigurationProperties;

/**
 * {@code goldfinch.cache.block-size} as the services that write and restore states read it: the same
 * property, with the same default, that the cache store reads, so a mesh configured in one place agrees
 * on its key blocks everywhere.
 *
 * @param blockSize tokens per key block
 */
@ConfigurationProperties("goldfinch.cache")
public record CacheClientProperties(Integer blockSize) {
    public CacheClientProperties {
        blockSize = blockSize == null ? PrefixHasher.DEFAULT_BLOCK_SIZE : blockSize;
    }

    public PrefixHasher hasher() {
        return new PrefixHasher(blockSize);
    }
}
