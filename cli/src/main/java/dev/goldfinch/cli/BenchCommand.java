package dev.goldfinch.cli;

import dev.goldfinch.model.GoldFinchModel;
import dev.goldfinch.model.ModelShapes;
import dev.goldfinch.model.RandomWeights;
import dev.goldfinch.model.state.KvFormat;
import dev.goldfinch.model.state.SequenceState;
import dev.goldfinch.model.tensor.DType;
import dev.goldfinch.model.tensor.Kernels;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.stream.IntStream;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import tools.jackson.databind.json.JsonMapper;

@Command(
        name = "bench",
        mixinStandardHelpOptions = true,
        footer = {"", "Example:", "  goldfinch bench engine --shape L12-D768 --quick"},
        description = "Reproducible benchmarks.",
        subcommands = {BenchCommand.Engine.class, BenchMeshCommand.class, BenchLoadCommand.class, BenchPlotCommand.class
        })
final class BenchCommand {

    @Command(
            name = "engine",
            mixinStandardHelpOptions = true,
            description =
                    "Engine speed on random weights built in memory: prefill tokens/s by prompt length, decode tokens/s by batch and context, against this machine's measured memory bandwidth and FMA peak.")
    static final class Engine implements Callable<Integer> {
        @Option(
                names = "--shape",
                defaultValue = "L12-D768",
                description = "Model shape (default: ${DEFAULT-VALUE}); e.g. finch-L12-D768, L24-D2048.")
        String shape;

        @Option(
                names = "--dtype",
                defaultValue = "f32",
                description = "Weights: f32, bf16, or q8_0 (f32 quantized at load) (default: ${DEFAULT-VALUE}).")
        String dtype;

        @Option(
                names = "--kv-format",
                split = ",",
                defaultValue = "f32",
                description =
                        "Live GOLD K/V formats to decode with, e.g. f32,bf16,int8: each decode figure per format, taken"
                                + " in turn in this one run (default: ${DEFAULT-VALUE}).")
        String[] kvFormats;

        @Option(names = "--prompt-lengths", split = ",", defaultValue = "128,1024,8192")
        int[] promptLengths;

        @Option(names = "--batches", split = ",", defaultValue = "1,4,16")
        int[] batches;

        @Option(names = "--contexts", split = ",", defaultValue = "128,4096")
        int[] contexts;

        @Option(
                names = "--decode-steps",
                defaultValue = "16",
                description = "Timed decode steps per figure (default: ${DEFAULT-VALUE}).")
        int steps;

        @Option(
                names = "--repeats",
                defaultValue = "3",
                description = "Runs per figure; the median is reported (default: ${DEFAULT-VALUE}).")
        int repeats;

        @Option(
                names = "--quick",
                description =
                        "The reduced set: L12-D768 f32, prompts 1024 and 8192, batch 1 and 16 at context 128, one run each.")
        boolean quick;

        @Option(names = "--json", description = "Print one JSON object instead of the table.")
        boolean json;

        @Override
        public Integer call() {
            if (quick) {
                shape = "L12-D768";
                dtype = "f32";
                promptLengths = new int[] {1024, 8192};
                batches = new int[] {1, 16};
                contexts = new int[] {128};
                repeats = 1;
            }
            DType type = "bf16".equalsIgnoreCase(dtype) ? DType.BF16 : DType.F32;
            dev.goldfinch.model.WeightFormat format = "q8_0".equalsIgnoreCase(dtype)
                    ? dev.goldfinch.model.WeightFormat.Q8_0
                    : dev.goldfinch.model.WeightFormat.AS_STORED;
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("shape", shape);
            out.put(
                    "dtype",
                    format == dev.goldfinch.model.WeightFormat.Q8_0
                            ? "q8_0"
                            : type.name().toLowerCase(Locale.ROOT));
            out.put("threads", Kernels.parallelism());
            out.put("cpu", cpuModel());
            double bandwidth = memoryReadGbps();
            double peak = peakGflops();
            out.put("memory_read_gbps", round(bandwidth));
            out.put("peak_gflops", round(peak));
            List<KvFormat> kvs =
                    Arrays.stream(kvFormats).map(KvFormat::parse).distinct().toList();
            try (GoldFinchModel model = RandomWeights.model(ModelShapes.parse(shape), 42, type, format)) {
                model.kvFormat(kvs.getFirst());
                Map<String, Long> live = new LinkedHashMap<>();
                kvs.forEach(k -> live.put(k.label(), k.liveBytesPerToken(model.config())));
                out.put("kv_formats", kvs.stream().map(KvFormat::label).toList());
                out.put("live_kv_bytes_per_token", live);
                long bytesPerToken = model.weights().bytesReadPerToken();
                // Prefill FLOPs per token: every weight once (multiply + add), but neither the embedding (a row
                // look-up)
                // nor the head (only for the last token).
                double flopsPerToken = 2.0
                        * (model.config().parameterCount()
                                - 2.0
                                        * model.config().vocabSize()
                                        * model.config().nEmbd());
                out.put("weight_bytes_per_token", bytesPerToken);
                Map<String, Double> prefill = new LinkedHashMap<>();
                Map<String, Double> prefillOfPeak = new LinkedHashMap<>();
                Random random = new Random(1);
                int vocab = model.config().vocabSize();
                // Warm-up, untimed: the JIT compiles the kernels on a chunk and on single and batched steps before any
                // figure is taken (with 8 steps, q8_0 decode was still partly interpreted in its timed steps).
                SequenceState warm = model.newState();
                model.forward(List.of(new GoldFinchModel.Segment(
                        warm, random.ints(512, 1, vocab).toArray(), 512)));
                step(model, List.of(warm), 64, new float[1][vocab]);
                step(model, List.of(warm.fork(), warm.fork(), warm.fork(), warm.fork()), 16, new float[4][vocab]);
                for (int length : promptLengths) {
                    int[] tokens = random.ints(length, 1, vocab).toArray();
                    double tps = median(repeats, () -> {
                        SequenceState s = model.newState();
                        long t0 = System.nanoTime();
                        for (int at = 0; at < length; at += 512) {
                            int[] chunk = Arrays.copyOfRange(tokens, at, Math.min(length, at + 512));
                            model.forward(List.of(new GoldFinchModel.Segment(
                                    s, chunk, at + chunk.length == length ? chunk.length - 1 : chunk.length)));
                        }
                        return length / ((System.nanoTime() - t0) / 1e9);
                    });
                    prefill.put(Integer.toString(length), round(tps));
                    prefillOfPeak.put(Integer.toString(length), round(tps * flopsPerToken / 1e9 / peak));
                }
                out.put("prefill_tps", prefill);
                out.put("prefill_fraction_of_peak", prefillOfPeak);
                Map<String, Double> decode = new LinkedHashMap<>();
                Map<String, Double> decodeOfBandwidth = new LinkedHashMap<>();
                Map<String, Long> decodeAllocation = new LinkedHashMap<>();
                for (int context : contexts) {
                    SequenceState base = model.newState();
                    int[] prompt = random.ints(context, 1, vocab).toArray();
                    for (int at = 0; at < context; at += 512) {
                        model.forward(List.of(new GoldFinchModel.Segment(
                                base,
                                Arrays.copyOfRange(prompt, at, Math.min(context, at + 512)),
                                Math.min(context, at + 512) - at)));
                    }
                    for (int batch : batches) {
                        for (KvFormat kv : kvs) { // formats in turn, so a loaded machine weighs on each alike
                            model.kvFormat(kv);
                            String key = "b" + batch + "_ctx" + context + (kvs.size() > 1 ? "_kv" + kv.label() : "");
                            double tps = median(repeats, () -> {
                                List<SequenceState> states = IntStream.range(0, batch)
                                        .mapToObj(i -> base.fork())
                                        .toList();
                                states.forEach(s -> s.reserve(context + steps + 1)); // as the decode service does
                                float[][] logits =
                                        new float[batch][vocab]; // one per sequence, as the decode service keeps
                                step(
                                        model, states, 1,
                                        logits); // warm: materialise GOLD keys and values of the restored context
                                long allocated = Kernels.allocatedBytesHereAndInGang();
                                long t0 = System.nanoTime();
                                step(model, states, steps, logits);
                                double rate = (double) batch * steps / ((System.nanoTime() - t0) / 1e9);
                                decodeAllocation.put(
                                        key,
                                        (Kernels.allocatedBytesHereAndInGang() - allocated) / ((long) batch * steps));
                                return rate;
                            });
                            decode.put(key, round(tps));
                            // Batch 1 is bound by reading the weights once per token.
                            decodeOfBandwidth.put(key, round(tps / batch * bytesPerToken / 1e9 / bandwidth));
                        }
                    }
                    model.kvFormat(kvs.getFirst());
                }
                out.put("decode_tps", decode);
                out.put("decode_weight_passes_fraction_of_bandwidth", decodeOfBandwidth);
                out.put("decode_allocated_bytes_per_token", decodeAllocation);
            }
            if (format == dev.goldfinch.model.WeightFormat.Q8_0) {
                // Quantization's cost in quality: perplexity of the same weights, f32 and q8_0, on one fixed token
                // stream.
                int[] stream = new Random(7)
                        .ints(512, 1, ModelShapes.parse(shape).vocabSize())
                        .toArray();
                double f32;
                double q8;
                try (GoldFinchModel reference = RandomWeights.model(ModelShapes.parse(shape), 42, type)) {
                    f32 = perplexity(reference, stream);
                }
                try (GoldFinchModel quantized = RandomWeights.model(ModelShapes.parse(shape), 42, type, format)) {
                    q8 = perplexity(quantized, stream);
                }
                out.put("perplexity_f32", round(f32));
                out.put("perplexity_q8_0", round(q8));
                out.put("perplexity_relative_difference", round((q8 - f32) / f32 * 1e4) / 1e4);
            }
            if (json) {
                System.out.println(JsonMapper.builder().build().writeValueAsString(out));
            } else {
                printTable(out);
            }
            return 0;
        }

        /** exp(mean negative log-likelihood) of each next token of {@code tokens}. */
        static double perplexity(GoldFinchModel model, int[] tokens) {
            int v = model.config().vocabSize();
            float[] logits = model.forward(List.of(new GoldFinchModel.Segment(model.newState(), tokens, 0)))[0];
            double nll = 0;
            for (int t = 0; t + 1 < tokens.length; t++) {
                double max = Double.NEGATIVE_INFINITY;
                for (int i = 0; i < v; i++) {
                    max = Math.max(max, logits[t * v + i]);
                }
                double sum = 0;
                for (int i = 0; i < v; i++) {
                    sum += Math.exp(logits[t * v + i] - max);
                }
                nll += max + Math.log(sum) - logits[t * v + tokens[t + 1]];
            }
            return Math.exp(nll / (tokens.length - 1));
        }

        /** {@code steps} decode steps of every state at once, each sequence's logits rewritten in place (as in the decode service). */
        private static void step(GoldFinchModel model, List<SequenceState> states, int steps, float[][] logits) {
            int[] token = {17};
            List<GoldFinchModel.Segment> segments = new ArrayList<>(states.size());
            for (SequenceState s : states) {
                segments.add(new GoldFinchModel.Segment(s, token, 0));
            }
            for (int i = 0; i < steps; i++) {
                model.forward(segments, logits);
            }
        }

        @SuppressWarnings("unchecked")
        private static void printTable(Map<String, Object> out) {
            System.out.printf(
                    "shape %s, %s weights, %s threads, %s%n",
                    out.get("shape"), out.get("dtype"), out.get("threads"), out.get("cpu"));
            System.out.printf(
                    "memory read bandwidth %.1f GB/s, FMA peak %.1f GFLOP/s, weight bytes per decode token %,d%n",
                    out.get("memory_read_gbps"), out.get("peak_gflops"), out.get("weight_bytes_per_token"));
            System.out.println();
            System.out.printf("%-22s %12s %12s%n", "prefill (prompt)", "tokens/s", "of peak");
            Map<String, Double> p = (Map<String, Double>) out.get("prefill_tps");
            Map<String, Double> pf = (Map<String, Double>) out.get("prefill_fraction_of_peak");
            p.forEach((k, v) -> System.out.printf("%-22s %12.1f %11.0f%%%n", k, v, 100 * pf.get(k)));
            System.out.println();
            Map<String, Double> d = (Map<String, Double>) out.get("decode_tps");
            Map<String, Double> df = (Map<String, Double>) out.get("decode_weight_passes_fraction_of_bandwidth");
            System.out.printf(
                    "%-22s %12s %12s %16s%n", "decode (batch, ctx)", "tokens/s", "of bandwidth", "allocated B/tok");
            Map<String, Long> da = (Map<String, Long>) out.get("decode_allocated_bytes_per_token");
            d.forEach((k, v) -> System.out.printf("%-22s %12.1f %11.0f%% %16d%n", k, v, 100 * df.get(k), da.get(k)));
            if (out.containsKey("perplexity_f32")) {
                System.out.printf(
                        "%nperplexity on a fixed 512-token stream: f32 %.3f, q8_0 %.3f (%+.2f%%)%n",
                        out.get("perplexity_f32"),
                        out.get("perplexity_q8_0"),
                        100 * (double) out.get("perplexity_relative_difference"));
            }
        }
    }

    interface Measurement {
        double run();
    }

    static double median(int repeats, Measurement m) {
        double[] r = new double[Math.max(1, repeats)];
        for (int i = 0; i < r.length; i++) {
            r[i] = m.run();
        }
        Arrays.sort(r);
        return r[r.length / 2];
    }

    static double round(double v) {
        return Math.round(v * 1000) / 1000.0;
    }

    static String cpuModel() {
        try {
            return java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/cpuinfo")).stream()
                    .filter(l -> l.startsWith("model name"))
                    .map(l -> l.substring(l.indexOf(':') + 1).strip())
                    .findFirst()
                    .orElse("unknown");
        } catch (java.io.IOException e) {
            return "unknown";
        }
    }

    private static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;

    /** Reads 1 GiB off-heap with every core, vectorised; best of 5 passes. */
    static double memoryReadGbps() {
        long bytes = 1L << 30;
        try (Arena arena = Arena.ofShared()) {
            MemorySegment seg = arena.allocate(bytes, 64);
            seg.fill((byte) 1);
            int threads = Kernels.parallelism();
            double best = 0;
            for (int pass = 0; pass < 5; pass++) {
                long t0 = System.nanoTime();
                double sink = onEveryThread(threads, th -> {
                    long from = bytes / threads * th;
                    long to = from + bytes / threads;
                    // Eight streams per thread, as the decode kernels read eight panels at once: one sequential
                    // stream per core measured ~30 GB/s here while decode itself streamed weights at ~45.
                    long step = SPECIES.vectorByteSize();
                    long part = (to - from) / 8 / step * step;
                    FloatVector a0 = FloatVector.zero(SPECIES);
                    FloatVector a1 = a0;
                    FloatVector a2 = a0;
                    FloatVector a3 = a0;
                    for (long off = from; off < from + part; off += step) {
                        a0 = a0.add(FloatVector.fromMemorySegment(SPECIES, seg, off, ByteOrder.LITTLE_ENDIAN))
                                .add(FloatVector.fromMemorySegment(SPECIES, seg, off + part, ByteOrder.LITTLE_ENDIAN));
                        a1 = a1.add(FloatVector.fromMemorySegment(
                                        SPECIES, seg, off + 2 * part, ByteOrder.LITTLE_ENDIAN))
                                .add(FloatVector.fromMemorySegment(
                                        SPECIES, seg, off + 3 * part, ByteOrder.LITTLE_ENDIAN));
                        a2 = a2.add(FloatVector.fromMemorySegment(
                                        SPECIES, seg, off + 4 * part, ByteOrder.LITTLE_ENDIAN))
                                .add(FloatVector.fromMemorySegment(
                                        SPECIES, seg, off + 5 * part, ByteOrder.LITTLE_ENDIAN));
                        a3 = a3.add(FloatVector.fromMemorySegment(
                                        SPECIES, seg, off + 6 * part, ByteOrder.LITTLE_ENDIAN))
                                .add(FloatVector.fromMemorySegment(
                                        SPECIES, seg, off + 7 * part, ByteOrder.LITTLE_ENDIAN));
                    }
                    return a0.add(a1).add(a2.add(a3)).reduceLanes(VectorOperators.ADD);
                });
                double seconds = (System.nanoTime() - t0) / 1e9;
                if (sink == 42) {
                    System.out.print("");
                }
                best = Math.max(best, bytes / seconds / 1e9);
            }
            return best;
        }
    }

    /**
     * Runs {@code work} once on every thread of the engine's gang, all at the same time, and sums the results. (A
     * parallel stream of two items sometimes ran both on one thread, halving the figure.)
     */
    private static double onEveryThread(int threads, java.util.function.IntToDoubleFunction work) {
        double[] results = new double[threads];
        Kernels.parallel(threads, th -> results[th] = work.applyAsDouble(th));
        return Arrays.stream(results).sum();
    }

    /** Vector FMAs on 8 independent accumulators per core; best of 5. */
    static double peakGflops() {
        int threads = Kernels.parallelism();
        long iterations = 20_000_000L;
        double best = 0;
        for (int pass = 0; pass < 5; pass++) {
            long t0 = System.nanoTime();
            double sink = onEveryThread(threads, th -> {
                FloatVector a = FloatVector.broadcast(SPECIES, 1.0f);
                FloatVector m = FloatVector.broadcast(SPECIES, 0.9999999f);
                FloatVector c0 = FloatVector.broadcast(SPECIES, 1e-7f),
                        c1 = c0,
                        c2 = c0,
                        c3 = c0,
                        c4 = c0,
                        c5 = c0,
                        c6 = c0,
                        c7 = c0;
                for (long i = 0; i < iterations; i++) {
                    c0 = c0.fma(m, a);
                    c1 = c1.fma(m, a);
                    c2 = c2.fma(m, a);
                    c3 = c3.fma(m, a);
                    c4 = c4.fma(m, a);
                    c5 = c5.fma(m, a);
                    c6 = c6.fma(m, a);
                    c7 = c7.fma(m, a);
                }
                return c0.add(c1)
                        .add(c2)
                        .add(c3)
                        .add(c4)
                        .add(c5)
                        .add(c6)
                        .add(c7)
                        .reduceLanes(VectorOperators.ADD);
            });
            double seconds = (System.nanoTime() - t0) / 1e9;
            if (sink == 42) {
                System.out.print("");
            }
            best = Math.max(best, 2.0 * SPECIES.length() * 8 * iterations * threads / seconds / 1e9);
        }
        return best;
    }
}
