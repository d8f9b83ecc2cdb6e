package dev.goldfinch.model.fuzz;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

/**
 * A bounded mutation fuzz run over a seed corpus in {@code src/test/resources/fuzz/<target>/}: every
 * seed as is, then {@code fuzz.inputs} (default 12,000) seeded mutations of them through one target.
 * The target may throw only the listed typed errors; anything else, an {@link Error} included, fails the
 * test and leaves the input in {@code target/fuzz-crashes/} to add to the corpus as {@code reject-<what>}:
 * seeds so named must fail typed, all others must be accepted. No single input may
 * allocate more than {@code allocationLimit(input)} bytes on the heap, so a length field cannot make
 * the parser reserve memory the input does not back. {@code -Dfuzz.seed=N -Dfuzz.inputs=N} replay or
 * lengthen a run.
 */
public final class FuzzRun {
    public static final long DEFAULT_SEED = 0x60_1df1_4c4L;

    /** The code under test; receives one input. */
    @FunctionalInterface
    public interface Target {
        void run(byte[] input) throws Exception;
    }

    /** The heap bytes one input may cause to be allocated. */
    @FunctionalInterface
    public interface AllocationLimit {
        long bytes(byte[] input);
    }

    /** What a run did: inputs tried, how many the target accepted (of them seeds), and its speed. */
    public record Result(
            String target, int inputs, int accepted, int seedsAccepted, long maxAllocated, double inputsPerSecond) {}

    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    private FuzzRun() {}

    /** The corpus of a target, well-formed seeds first. */
    public static List<byte[]> corpus(String target) {
        Path dir = corpusDir(target);
        try (Stream<Path> files = Files.list(dir)) {
            List<byte[]> seeds = new ArrayList<>();
            for (Path p : files.sorted(java.util.Comparator.comparing((Path f) -> isReject(f))
                            .thenComparing(Path::getFileName))
                    .toList()) {
                seeds.add(Files.readAllBytes(p));
            }
            assertTrue(!seeds.isEmpty(), "empty corpus " + dir);
            return seeds;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The number of well-formed seeds (not {@code reject-*}) of a target, which must all be accepted. */
    public static int validSeeds(String target) {
        try (Stream<Path> files = Files.list(corpusDir(target))) {
            return (int) files.filter(f -> !isReject(f)).count();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static boolean isReject(Path f) {
        return f.getFileName().toString().startsWith("reject-");
    }

    /** The corpus folder as the test sees it (target/test-classes/fuzz/<target>, copied from src/test/resources). */
    public static Path corpusDir(String target) {
        java.net.URL url = FuzzRun.class.getResource("/fuzz/" + target);
        if (url == null) {
            throw new IllegalStateException("fuzz corpus /fuzz/" + target + " is missing");
        }
        try {
            return Path.of(url.toURI());
        } catch (java.net.URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    public static int inputs() {
        return Integer.getInteger("fuzz.inputs", 12_000);
    }

    public static long seed() {
        return Long.getLong("fuzz.seed", DEFAULT_SEED);
    }

    /**
     * Runs the corpus and then {@link #inputs()} mutations; {@code fixup} may repair an input after mutating
     * (e.g. recompute a checksum so the mutation reaches past it) and returns the input to use.
     */
    public static Result run(
            String name,
            List<byte[]> corpus,
            java.util.function.BiFunction<Mutator, byte[], byte[]> mutate,
            Target target,
            Set<Class<? extends Throwable>> typed,
            AllocationLimit limit) {
        Mutator mutator = new Mutator(seed() ^ name.hashCode());
        long thread = Thread.currentThread().threadId();
        int total = corpus.size() + inputs();
        int valid = Math.max(1, Math.min(corpus.size(), validSeeds(name)));
        int accepted = 0;
        int seedsAccepted = 0;
        long maxAllocated = 0;
        long start = System.nanoTime();
        for (int i = 0; i < total; i++) {
            byte[] input = i < corpus.size()
                    ? corpus.get(i)
                    : mutate.apply(mutator, corpus.get(base(mutator, corpus.size(), valid)));
            long before = THREADS.getThreadAllocatedBytes(thread);
            try {
                target.run(input);
                accepted++;
                if (i < corpus.size()) {
                    seedsAccepted++;
                }
            } catch (Throwable t) {
                if (!typed.contains(t.getClass())) {
                    fail(
                            name + " input " + i + " (seed " + seed() + ") threw " + t + "; saved as "
                                    + save(name, i, input),
                            t);
                }
            }
            long allocated = THREADS.getThreadAllocatedBytes(thread) - before;
            maxAllocated = Math.max(maxAllocated, allocated);
            if (allocated > limit.bytes(input)) {
                fail(name + " input " + i + " of " + input.length + " bytes allocated " + allocated + " bytes (limit "
                        + limit.bytes(input) + "); saved as " + save(name, i, input));
            }
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        Result r = new Result(name, total, accepted, seedsAccepted, maxAllocated, total / seconds);
        System.out.printf(
                "fuzz %s: %d inputs (%d accepted) in %.2f s, %.0f inputs/s, at most %d bytes allocated per input%n",
                name, total, accepted, seconds, r.inputsPerSecond(), maxAllocated);
        return r;
    }

    /** Mostly a well-formed seed (they come first), so mutations reach past the outer checks. */
    private static int base(Mutator m, int seeds, int valid) {
        return m.random().nextInt(4) != 0
                ? m.random().nextInt(valid)
                : m.random().nextInt(seeds);
    }

    private static Path save(String name, int i, byte[] input) {
        try {
            Path dir = Files.createDirectories(Path.of("target/fuzz-crashes", name));
            Path p = dir.resolve("crash-" + seed() + "-" + i + ".bin");
            Files.write(p, input);
            if (input.length <= 256) {
                System.out.println(name + " crash input: " + HexFormat.of().formatHex(input));
            }
            return p.toAbsolutePath();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
