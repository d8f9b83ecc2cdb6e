package dev.goldfinch.cache.client;

import dev.goldfinch.cache.PrefixHasher;
import io.micrometer.core.instrument.MeterRegistry;
import org.slf4j.LoggerFactory;
import org.springframework.boot.context.properties.ConfigurationProperties;

/**
 * {@code goldfinch.cache.*} as the services that write and restore states read it: the block size (the
 * same property, with the same default, that the cache store reads, so a mesh configured in one place
 * agrees on its key blocks everywhere) and the mesh key that signs every entry.
 *
 * @param blockSize tokens per key block
 * @param signingKey the mesh key, hex or base64, at least 32 bytes (env {@code GOLDFINCH_CACHE_SIGNINGKEY});
 *     every prefill and decode replica of one mesh needs the same one
 * @param allowUnsigned without a key, start anyway and neither sign nor verify (local use only)
 */
@ConfigurationProperties("goldfinch.cache")
public record CacheClientProperties(Integer blockSize, String signingKey, Boolean allowUnsigned) {
    public static final String SIGNING_KEY = "goldfinch.cache.signing-key";
    public static final String ALLOW_UNSIGNED = "goldfinch.cache.allow-unsigned";

    public CacheClientProperties {
        blockSize = blockSize == null ? PrefixHasher.DEFAULT_BLOCK_SIZE : blockSize;
        allowUnsigned = allowUnsigned != null && allowUnsigned;
    }

    public PrefixHasher hasher() {
        return new PrefixHasher(blockSize);
    }

    /**
     * The signer of this service's entries. No key: refuses to start unless {@link #ALLOW_UNSIGNED}, since
     * a service that trusts whatever the store holds serves whatever anyone who reaches the store planted.
     */
    public EntrySigner signer(MeterRegistry meters) {
        if (signingKey != null && !signingKey.isBlank()) {
            return EntrySigner.withKey(EntrySigner.parseKey(signingKey, SIGNING_KEY), meters);
        }
        if (!allowUnsigned) {
            throw new IllegalStateException("no cache signing key: set " + SIGNING_KEY
                    + " (env GOLDFINCH_CACHE_SIGNINGKEY; hex or base64, at least " + EntrySigner.MIN_KEY_BYTES
                    + " bytes, the same on every prefill and decode replica; e.g. openssl rand -base64 32), or "
                    + ALLOW_UNSIGNED + "=true to run without signed cache entries");
        }
        LoggerFactory.getLogger(CacheClientProperties.class)
                .warn(
                        "cache entries are NOT signed ({}=true): anyone who can reach the cache store can plant"
                                + " states this service will serve; for local use only",
                        ALLOW_UNSIGNED);
        return EntrySigner.unsigned(meters);
    }

    /** Never shows the key (a record's toString would). */
    @Override
    public String toString() {
        return "CacheClientProperties[blockSize=" + blockSize + ", signingKey="
                + (signingKey == null || signingKey.isBlank() ? "none" : "(set)") + ", allowUnsigned=" + allowUnsigned
                + "]";
    }
}
