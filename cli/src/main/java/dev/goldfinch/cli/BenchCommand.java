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
        footer = {
            "",
            "Example:",
            "  goldfinch bench engine --shape L12-D768 --quick",
            "  goldfinch bench engine --shape L24-D2048 --dtype f32,q8_0 --contexts 128,4096 --long-prompt 131072"
        },
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
                split = ",",
                defaultValue = "f32",
                description =
                        "Weights, one or a list run in turn, each in a JVM of its own (as JMH forks): f32, bf16, or"
                                + " q8_0 (f32 quantized at load) (default: ${DEFAULT-VALUE}).")
        String[] dtypes;

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
                names = "--context-source",
                defaultValue = "restore",
                description =
                        "How a decode context is made: restore (random compressed keys and ids, the K/V rebuilt as after"
                                + " a cache restore: seconds, not minutes, at long contexts) or prefill (a real prefill"
                                + " of the context) (default: ${DEFAULT-VALUE}).")
        String contextSource;

        @Option(
                names = "--long-prompt",
                defaultValue = "0",
                description =
                        "Tokens of one keys-only prefill (no live K/V) measured with the process's peak memory and"
                                + " compared with a keys-only 8,192-token prefill; 0 for none (first dtype only).")
        int longPrompt;

        @Option(
                names = "--replica-gib",
                defaultValue = "24",
                description = "Memory of the replica the capacity table fills (default: ${DEFAULT-VALUE} GiB).")
        double replicaGib;

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
                names = "--skip-perplexity",
                description = "Skip q8_0's perplexity against f32 (it builds both models once more).")
        boolean skipPerplexity;

        @Option(
                names = "--quick",
                description =
                        "The reduced set: L12-D768 f32, prompts 1024 and 8192, batch 1 and 16 at context 128, one run each.")
        boolean quick;

        @Option(names = "--json", description = "Print one JSON object instead of the table.")
        boolean json;

        /** Prefill chunk, as the prefill service's. */
        static final int CHUNK = 512;

        /** Memory a replica keeps for the JVM, code, scratch and buffers besides weights and sequences. */
        static final long RUNTIME_RESERVE_BYTES = 1L << 30;

        @Override
        public Integer call() {
            if (quick) {
                shape = "L12-D768";
                dtypes = new String[] {"f32"};
                promptLengths = new int[] {1024, 8192};
                batches = new int[] {1, 16};
                contexts = new int[] {128};
                repeats = 1;
            }
            if (!contextSource.equals("restore") && !contextSource.equals("prefill")) {
                throw new picocli.CommandLine.ParameterException(
                        new picocli.CommandLine(this), "--context-source must be restore or prefill");
            }
            List<String> types = Arrays.stream(dtypes)
                    .map(d -> d.strip().toLowerCase(Locale.ROOT))
                    .distinct()
                    .toList();
            for (String t : types) {
                if (!List.of("f32", "bf16", "q8_0").contains(t)) {
                    throw new picocli.CommandLine.ParameterException(
                            new picocli.CommandLine(this), "--dtype must be f32, bf16 or q8_0, got " + t);
                }
            }
            ModelShapes.parse(shape); // a bad shape is the user's error, here, not each child's
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("shape", shape);
            out.put("threads", Kernels.parallelism());
            out.put("cpu", cpuModel());
            out.put("load_average", loadAverage());
            out.put("max_heap_bytes", Runtime.getRuntime().maxMemory());
            double bandwidth = memoryReadGbps();
            double peak = peakGflops();
            out.put("memory_read_gbps", round(bandwidth));
            out.put("peak_gflops", round(peak));
            out.put("context_source", contextSource);
            Map<String, Map<String, Object>> byType = new LinkedHashMap<>();
            if (types.size() == 1) {
                byType.put(types.getFirst(), runOne(types.getFirst(), bandwidth, peak, longPrompt));
                out.putAll(byType.get(types.getFirst())); // the flat layout of one dtype, as before
            } else {
                for (String t : types) {
                    byType.put(t, inFreshJvm(t, t.equals(types.getFirst()) ? longPrompt : 0));
                }
                out.put("dtypes", types);
                out.put("by_dtype", byType);
            }
            if (measured(byType.get("f32")) && measured(byType.get("q8_0"))) {
                out.put("q8_0_b1_over_f32_b1", ratios(byType.get("q8_0"), byType.get("f32")));
            }
            out.put("load_average_after", loadAverage());
            if (json) {
                System.out.println(JsonMapper.builder().build().writeValueAsString(out));
            } else {
                printTable(out, byType);
            }
            return byType.values().stream().allMatch(Engine::measured) ? 0 : 1;
        }

        /** A dtype's figures were taken: present, and not a child's {@code "failed"} entry. */
        private static boolean measured(Map<String, Object> figures) {
            return figures != null && !figures.containsKey("failed");
        }

        /** What a child's flat JSON holds that describes the run, not its dtype: the parent reports it once. */
        private static final List<String> RUN_KEYS =
                List.of("shape", "threads", "cpu", "max_heap_bytes", "context_source");

        /**
         * One dtype's figures from a JVM of its own (this JVM's flags and class path), as JMH forks each benchmark: run in
         * turn in one JVM, the second dtype's prefill measured 20–40 % below its own first-in-JVM figure (f32 1,510 →
         * 1,195 tok/s, q8_0 1,592 → 961 at 8,192 tokens, one machine, one sitting), whichever came second: the JIT's
         * profiles of the shared forward pass were the first model's.
         */
        @SuppressWarnings("unchecked")
        private Map<String, Object> inFreshJvm(String dtype, int longTokens) {
            List<String> command = new ArrayList<>();
            command.add(ProcessHandle.current().info().command().orElse("java"));
            command.addAll(
                    java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments());
            command.addAll(List.of("-cp", System.getProperty("java.class.path"), GoldfinchCli.class.getName()));
            command.addAll(List.of("bench", "engine", "--json", "--shape", shape, "--dtype", dtype));
            command.addAll(List.of("--kv-format", String.join(",", kvFormats)));
            command.addAll(List.of("--prompt-lengths", joined(promptLengths), "--batches", joined(batches)));
            command.addAll(List.of("--contexts", joined(contexts), "--context-source", contextSource));
            command.addAll(List.of("--decode-steps", Integer.toString(steps), "--repeats", Integer.toString(repeats)));
            command.addAll(List.of(
                    "--replica-gib", Double.toString(replicaGib), "--long-prompt", Integer.toString(longTokens)));
            if (skipPerplexity) {
                command.add("--skip-perplexity");
            }
            try {
                Process child = new ProcessBuilder(command)
                        .redirectError(ProcessBuilder.Redirect.INHERIT)
                        .start();
                child.getOutputStream().close();
                String json =
                        new String(child.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
                int exit = child.waitFor();
                if (exit != 0) {
                    // The other dtypes' figures stand: one child killed for memory (exit 137) must not lose them.
                    String failure = "its JVM exited with " + exit + (exit == 137 ? " (killed: out of memory?)" : "");
                    System.err.println("bench engine --dtype " + dtype + ": " + failure);
                    Map<String, Object> failed = new LinkedHashMap<>();
                    failed.put("dtype", dtype);
                    failed.put("failed", failure);
                    return failed;
                }
                Map<String, Object> figures =
                        new LinkedHashMap<>(JsonMapper.builder().build().readValue(json, Map.class));
                RUN_KEYS.forEach(figures::remove);
                return figures;
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted waiting for bench engine --dtype " + dtype, e);
            }
        }

        private static String joined(int[] values) {
            return Arrays.stream(values).mapToObj(Integer::toString).collect(java.util.stream.Collectors.joining(","));
        }

        /** Per context: decode b1 tok/s of {@code a} over {@code b}'s, for the keys both hold. */
        @SuppressWarnings("unchecked")
        private static Map<String, Double> ratios(Map<String, Object> a, Map<String, Object> b) {
            Map<String, Double> da = (Map<String, Double>) a.get("decode_tps");
            Map<String, Double> db = (Map<String, Double>) b.get("decode_tps");
            Map<String, Double> r = new LinkedHashMap<>();
            da.forEach((k, v) -> {
                if (k.startsWith("b1_") && db.containsKey(k)) {
                    r.put(k, round(v / db.get(k)));
                }
            });
            return r;
        }

        private Map<String, Object> runOne(String dtype, double bandwidth, double peak, int longTokens) {
            DType type = "bf16".equals(dtype) ? DType.BF16 : DType.F32;
            dev.goldfinch.model.WeightFormat format = "q8_0".equals(dtype)
                    ? dev.goldfinch.model.WeightFormat.Q8_0
                    : dev.goldfinch.model.WeightFormat.AS_STORED;
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("dtype", dtype);
            List<KvFormat> kvs =
                    Arrays.stream(kvFormats).map(KvFormat::parse).distinct().toList();
            long built = System.nanoTime();
            try (GoldFinchModel model = RandomWeights.model(ModelShapes.parse(shape), 42, type, format)) {
                out.put("build_seconds", round((System.nanoTime() - built) / 1e9));
                model.kvFormat(kvs.getFirst());
                Map<String, Long> live = new LinkedHashMap<>();
                kvs.forEach(k -> live.put(k.label(), k.liveBytesPerToken(model.config())));
                out.put("kv_formats", kvs.stream().map(KvFormat::label).toList());
                out.put("live_kv_bytes_per_token", live);
                out.put("weight_bytes", model.weights().weightBytes());
                long bytesPerToken = model.weights().bytesReadPerToken();
                // Prefill FLOPs per token: every weight once (multiply + add), but neither the embedding (a row
                // look-up) nor the head (only for the last token).
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
                        warm, random.ints(CHUNK, 1, vocab).toArray(), CHUNK)));
                step(model, List.of(warm), 64, new float[1][vocab]);
                step(model, List.of(warm.fork(), warm.fork(), warm.fork(), warm.fork()), 16, new float[4][vocab]);
                for (int length : promptLengths) {
                    int[] tokens = random.ints(length, 1, vocab).toArray();
                    double tps = median(repeats, () -> {
                        SequenceState s = model.newState();
                        long t0 = System.nanoTime();
                        prefill(model, s, tokens);
                        return length / ((System.nanoTime() - t0) / 1e9);
                    });
                    prefill.put(Integer.toString(length), round(tps));
                    prefillOfPeak.put(Integer.toString(length), round(tps * flopsPerToken / 1e9 / peak));
                }
                out.put("prefill_tps", prefill);
                out.put("prefill_fraction_of_peak", prefillOfPeak);
                decode(model, kvs, random, bytesPerToken, bandwidth, out);
                out.put("capacity", capacity(model));
                if (longTokens > 0) {
                    out.put("long_prompt", longPrompt(model, longTokens, random));
                }
            }
            if (format == dev.goldfinch.model.WeightFormat.Q8_0 && !skipPerplexity) {
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
            return out;
        }

        /** A prompt as the prefill service feeds one: chunks of {@link #CHUNK}, live K/V, the last token's logits. */
        private static void prefill(GoldFinchModel model, SequenceState s, int[] tokens) {
            int length = tokens.length;
            for (int at = 0; at < length; at += CHUNK) {
                int[] chunk = Arrays.copyOfRange(tokens, at, Math.min(length, at + CHUNK));
                model.forward(List.of(new GoldFinchModel.Segment(
                        s, chunk, at + chunk.length == length ? chunk.length - 1 : chunk.length)));
            }
        }

        /** A decode context of {@code context} positions, its K/V not yet materialised (the first step rebuilds it). */
        private SequenceState context(GoldFinchModel model, int context, Random random) {
            int vocab = model.config().vocabSize();
            int[] ids = random.ints(context, 1, vocab).toArray();
            if (contextSource.equals("prefill")) {
                SequenceState s = model.newState();
                model.prefillKeysOnly(s, ids, CHUNK);
                return s;
            }
            float[] keys = new float[context * model.config().compressedDim()];
            for (int i = 0; i < keys.length; i++) {
                keys[i] = (float) random.nextGaussian();
            }
            return SequenceState.withKeys(model.config(), model.fingerprint(), ids, keys);
        }

        private void decode(
                GoldFinchModel model,
                List<KvFormat> kvs,
                Random random,
                long bytesPerToken,
                double bandwidth,
                Map<String, Object> out) {
            int vocab = model.config().vocabSize();
            Map<String, Double> decode = new LinkedHashMap<>();
            Map<String, Double> decodeOfBandwidth = new LinkedHashMap<>();
            Map<String, Long> decodeAllocation = new LinkedHashMap<>();
            Map<String, Double> rebuild = new LinkedHashMap<>();
            Map<String, Map<String, Long>> skipped = new LinkedHashMap<>();
            for (int context : contexts) {
                for (KvFormat kv : kvs) { // formats in turn, so a loaded machine weighs on each alike
                    model.kvFormat(kv);
                    String suffix = "_ctx" + context + (kvs.size() > 1 ? "_kv" + kv.label() : "");
                    long perSequence = (long) (context + steps + 2) * kv.liveBytesPerToken(model.config());
                    SequenceState base = null;
                    for (int batch : batches) {
                        String key = "b" + batch + suffix;
                        long needed = (batch + 1L) * perSequence; // the base and its forks, each its own copy
                        if (needed > freeHeap() * 0.8) {
                            skipped.put(key, Map.of("does not fit", needed));
                            continue;
                        }
                        if (base == null) {
                            base = context(model, context - 1, random);
                            long t0 = System.nanoTime();
                            step(model, List.of(base), 1, new float[1][vocab]); // rebuilds the K/V: a restore's cost
                            rebuild.put("ctx" + context + "_kv" + kv.label(), round((System.nanoTime() - t0) / 1e9));
                        }
                        SequenceState from = base;
                        double tps = median(repeats, () -> {
                            List<SequenceState> states = IntStream.range(0, batch)
                                    .mapToObj(i -> from.fork())
                                    .toList();
                            states.forEach(s -> s.reserve(context + steps + 1)); // as the decode service does
                            float[][] logits = new float[batch][vocab]; // one per sequence, as the decode service keeps
                            step(model, states, 1, logits); // warm: each sequence's first own step
                            long allocated = Kernels.allocatedBytesHereAndInGang();
                            long t0 = System.nanoTime();
                            step(model, states, steps, logits);
                            double rate = (double) batch * steps / ((System.nanoTime() - t0) / 1e9);
                            decodeAllocation.put(
                                    key, (Kernels.allocatedBytesHereAndInGang() - allocated) / ((long) batch * steps));
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
            out.put("context_rebuild_seconds", rebuild);
            if (!skipped.isEmpty()) {
                out.put("decode_skipped", skipped);
            }
        }

        /** Heap the JVM may still give: its maximum less what is in use now. */
        private static long freeHeap() {
            Runtime r = Runtime.getRuntime();
            return r.maxMemory() - (r.totalMemory() - r.freeMemory());
        }

        /**
         * One keys-only prefill of {@code tokens} (chunks skip GOLD, the last streams its K/V), its tokens/s against a
         * keys-only 8,192-token prefill's, and the process's peak resident memory and heap during it.
         */
        private Map<String, Object> longPrompt(GoldFinchModel model, int tokens, Random random) {
            int vocab = model.config().vocabSize();
            Map<String, Object> out = new LinkedHashMap<>();
            int[] reference = random.ints(8192, 1, vocab).toArray();
            double referenceTps = median(repeats, () -> {
                long t0 = System.nanoTime();
                model.prefillKeysOnly(model.newState(), reference, CHUNK);
                return reference.length / ((System.nanoTime() - t0) / 1e9);
            });
            int[] ids = random.ints(tokens, 1, vocab).toArray();
            System.gc();
            long rssBefore = procStatusBytes("VmRSS");
            boolean reset = resetPeakRss();
            List<java.lang.management.MemoryPoolMXBean> heap =
                    java.lang.management.ManagementFactory.getMemoryPoolMXBeans().stream()
                            .filter(p -> p.getType() == java.lang.management.MemoryType.HEAP)
                            .toList();
            heap.forEach(java.lang.management.MemoryPoolMXBean::resetPeakUsage);
            SequenceState state = model.newState();
            long t0 = System.nanoTime();
            model.prefillKeysOnly(state, ids, CHUNK);
            double seconds = (System.nanoTime() - t0) / 1e9;
            out.put("tokens", tokens);
            out.put("chunk", CHUNK);
            out.put("seconds", round(seconds));
            out.put("tps", round(tokens / seconds));
            out.put("keys_only_8192_tps", round(referenceTps));
            out.put("ratio_to_8192", round(tokens / seconds / referenceTps));
            out.put("rss_before_bytes", rssBefore);
            out.put("peak_rss_bytes", procStatusBytes("VmHWM"));
            out.put("peak_rss_reset_before", reset);
            out.put(
                    "heap_peak_bytes",
                    heap.stream().mapToLong(p -> p.getPeakUsage().getUsed()).sum());
            out.put("state_held_gold_kv_rows", state.goldKeys(0).rows()); // 0: keys and ids only
            out.put(
                    "state_key_and_id_bytes",
                    (long) state.length()
                            * (4L * model.config().compressedDim() + dev.goldfinch.model.CacheSizes.ID_BYTES));
            out.put(
                    "f32_live_kv_bytes_it_did_not_hold",
                    (long) tokens * KvFormat.F32.liveBytesPerToken(model.config()));
            return out;
        }

        /**
         * How many sequences of each context one replica of {@link #replicaGib} holds: its memory less the weights and
         * a runtime reserve, over a live sequence's bytes (its f32 recurrent state and keys, plus GOLD K/V per format).
         */
        private Map<String, Object> capacity(GoldFinchModel model) {
            dev.goldfinch.model.CacheSizes sizes = dev.goldfinch.model.CacheSizes.of(model.config());
            long replica = (long) (replicaGib * (1L << 30));
            long room = replica - model.weights().weightBytes() - RUNTIME_RESERVE_BYTES;
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("replica_bytes", replica);
            out.put("weight_bytes", model.weights().weightBytes());
            out.put("runtime_reserve_bytes", RUNTIME_RESERVE_BYTES);
            out.put("sequence_fixed_bytes", sizes.fixedBytesF32());
            out.put("sequence_bytes_per_token_without_kv", sizes.bytesPerTokenF32());
            Map<String, Map<String, Long>> table = new LinkedHashMap<>();
            for (int context : new int[] {4096, 32768, 131072}) {
                Map<String, Long> row = new LinkedHashMap<>();
                for (KvFormat kv : KvFormat.values()) {
                    long perSequence = sizes.fixedBytesF32()
                            + (long) context * (sizes.bytesPerTokenF32() + kv.liveBytesPerToken(model.config()));
                    row.put(kv.label(), Math.max(0, room / perSequence));
                }
                table.put(Integer.toString(context), row);
            }
            out.put("sequences_by_context_and_kv", table);
            return out;
        }

        static double loadAverage() {
            return round(java.lang.management.ManagementFactory.getOperatingSystemMXBean()
                    .getSystemLoadAverage());
        }

        /** A size field of /proc/self/status ({@code VmRSS}, {@code VmHWM}) in bytes; -1 where there is none. */
        static long procStatusBytes(String field) {
            try {
                for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/self/status"))) {
                    if (line.startsWith(field + ":")) {
                        return 1024
                                * Long.parseLong(line.substring(field.length() + 1)
                                        .strip()
                                        .split("\\s+")[0]);
                    }
                }
            } catch (java.io.IOException | RuntimeException e) {
                return -1;
            }
            return -1;
        }

        /** Resets the peak resident size the kernel reports (VmHWM) to the current one; false where it cannot. */
        static boolean resetPeakRss() {
            try {
                java.nio.file.Files.writeString(java.nio.file.Path.of("/proc/self/clear_refs"), "5");
                return true;
            } catch (java.io.IOException | RuntimeException e) {
                return false;
            }
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
        static void step(GoldFinchModel model, List<SequenceState> states, int steps, float[][] logits) {
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
        private static void printTable(Map<String, Object> out, Map<String, Map<String, Object>> byType) {
            System.out.printf(
                    "shape %s, %s threads, %s, load average %s; decode contexts by %s%n",
                    out.get("shape"),
                    out.get("threads"),
                    out.get("cpu"),
                    out.get("load_average"),
                    out.get("context_source"));
            System.out.printf(
                    "memory read bandwidth %.1f GB/s, FMA peak %.1f GFLOP/s%n",
                    out.get("memory_read_gbps"), out.get("peak_gflops"));
            byType.forEach((dtype, r) -> {
                if (!measured(r)) {
                    System.out.printf("%n== %s weights: not measured, %s%n", dtype, r.get("failed"));
                    return;
                }
                System.out.printf(
                        "%n== %s weights: %,d bytes, %,d read per decode token%n",
                        dtype, r.get("weight_bytes"), r.get("weight_bytes_per_token"));
                System.out.printf("%-22s %12s %12s%n", "prefill (prompt)", "tokens/s", "of peak");
                Map<String, Double> p = (Map<String, Double>) r.get("prefill_tps");
                Map<String, Double> pf = (Map<String, Double>) r.get("prefill_fraction_of_peak");
                p.forEach((k, v) -> System.out.printf("%-22s %12.1f %11.0f%%%n", k, v, 100 * pf.get(k)));
                System.out.println();
                Map<String, Double> d = (Map<String, Double>) r.get("decode_tps");
                Map<String, Double> df = (Map<String, Double>) r.get("decode_weight_passes_fraction_of_bandwidth");
                System.out.printf(
                        "%-22s %12s %12s %16s%n", "decode (batch, ctx)", "tokens/s", "of bandwidth", "allocated B/tok");
                Map<String, Long> da = (Map<String, Long>) r.get("decode_allocated_bytes_per_token");
                d.forEach(
                        (k, v) -> System.out.printf("%-22s %12.1f %11.0f%% %16d%n", k, v, 100 * df.get(k), da.get(k)));
                if (r.containsKey("decode_skipped")) {
                    System.out.println("not run (live K/V would not fit the heap): " + r.get("decode_skipped"));
                }
                System.out.println("context rebuild seconds: " + r.get("context_rebuild_seconds"));
                Map<String, Object> cap = (Map<String, Object>) r.get("capacity");
                System.out.printf(
                        "%nsequences one %,d-byte replica holds (weights %,d, reserve %,d)%n",
                        cap.get("replica_bytes"), cap.get("weight_bytes"), cap.get("runtime_reserve_bytes"));
                System.out.printf("%-10s %10s %10s %10s%n", "context", "f32 K/V", "bf16 K/V", "int8 K/V");
                ((Map<String, Map<String, Long>>) cap.get("sequences_by_context_and_kv"))
                        .forEach((ctx, row) -> System.out.printf(
                                "%-10s %10d %10d %10d%n", ctx, row.get("f32"), row.get("bf16"), row.get("int8")));
                if (r.containsKey("long_prompt")) {
                    System.out.println("\nlong keys-only prefill: " + r.get("long_prompt"));
                }
                if (r.containsKey("perplexity_f32")) {
                    System.out.printf(
                            "%nperplexity on a fixed 512-token stream: f32 %.3f, q8_0 %.3f (%+.2f%%)%n",
                            r.get("perplexity_f32"),
                            r.get("perplexity_q8_0"),
                            100 * (double) r.get("perplexity_relative_difference"));
                }
            });
            if (out.containsKey("q8_0_b1_over_f32_b1")) {
                System.out.println("\nq8_0 b1 / f32 b1: " + out.get("q8_0_b1_over_f32_b1"));
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
