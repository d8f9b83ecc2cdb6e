package dev.goldfinch.cache;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.error.TypedFailure;
import dev.goldfinch.model.fuzz.FuzzRun;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The Redis value header parser ({@link RedisCacheBackend.Header#parse}) under {@link FuzzRun}'s mutations of
 * {@code src/test/resources/fuzz/redis-header/}: it accepts a header or throws its typed failure, and an
 * accepted one names no more than the maximum value size, in exactly the chunks that size needs.
 */
class RedisHeaderFuzzTest {
    static final int CHUNK = 4096;
    static final long MAX_VALUE = 8L << 20;

    @Test
    void headersParseOrFailTyped() {
        var result = FuzzRun.run(
                "redis-header",
                FuzzRun.corpus("redis-header"),
                (m, seed) -> m.mutate(seed),
                input -> {
                    RedisCacheBackend.Header h = RedisCacheBackend.Header.parse(input, CHUNK, MAX_VALUE);
                    assertTrue(h.size() >= 0 && h.size() <= MAX_VALUE, "size " + h.size());
                    assertTrue(h.inline() ? h.chunks() == 0 : h.chunks() == Math.ceilDiv(h.size(), CHUNK));
                },
                Set.of(TypedFailure.class),
                input -> (1L << 20) + 4L * input.length); // the header is read in place; 1 MB: first-use class loading
        assertEquals(FuzzRun.validSeeds(result.target()), result.seedsAccepted(), "the valid seeds parse");
    }
}
