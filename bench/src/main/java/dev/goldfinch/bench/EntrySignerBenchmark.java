package dev.goldfinch.bench;

import dev.goldfinch.cache.client.EntrySigner;
import dev.goldfinch.proto.internal.v1.EntryKind;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32C;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * What a cache entry's signature costs next to its checksum, on a 4 MiB checkpoint: sealing (HMAC-SHA256
 * and the envelope's copy) on write, opening (the same HMAC, the constant-time compare and the payload's
 * copy) on read, and the CRC32C the store computes over the same bytes. Sampled, so JMH reports the median.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 2)
@Fork(1)
public class EntrySignerBenchmark {
    static final int CHECKPOINT_BYTES = 4 << 20;
    static final byte[] HASH = new byte[16];

    EntrySigner signer;
    byte[] payload;
    byte[] sealed;

    @Setup
    public void setUp() {
        payload = new byte[CHECKPOINT_BYTES];
        new Random(1).nextBytes(payload);
        signer = EntrySigner.withRandomKey(new SimpleMeterRegistry());
        sealed = signer.seal("0123456789abcdef", EntryKind.ENTRY_KIND_CHECKPOINT, HASH, 4096, payload);
    }

    @Benchmark
    public byte[] seal() {
        return signer.seal("0123456789abcdef", EntryKind.ENTRY_KIND_CHECKPOINT, HASH, 4096, payload);
    }

    @Benchmark
    public byte[] open() {
        return signer.open("0123456789abcdef", EntryKind.ENTRY_KIND_CHECKPOINT, HASH, 4096, sealed)
                .orElseThrow();
    }

    @Benchmark
    public long crc32c() {
        CRC32C crc = new CRC32C();
        crc.update(sealed);
        return crc.getValue();
    }
}
