package dev.goldfinch.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.model.io.Npy;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The command line end to end, in process: exit codes, outputs, and one clear line per bad input. */
class GoldfinchCliTest {
    /** The project's own golden model and outputs (the model module's test resources): no ../shared needed. */
    static final Path GOLD = Path.of("..", "model", "src", "test", "resources", "golden", "goldfinch");

    @TempDir
    Path tmp;

    record Run(int exit, String out, String err) {}

    static Run run(String... args) {
        PrintStream oldOut = System.out;
        PrintStream oldErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            int code = GoldfinchCli.run(args);
            return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
    }

    static String goldenTokens() throws Exception {
        return Arrays.stream(Npy.read(GOLD.resolve("tokens.npy")).toInts())
                .mapToObj(Integer::toString)
                .collect(Collectors.joining(","));
    }

    @Test
    void logitsMatchTheReferenceInEveryMode() throws Exception {
        float[] want = Npy.read(GOLD.resolve("logits_full.npy")).toFloats();
        for (String[] extra : new String[][] {{}, {"--prefill", "16"}, {"--prefill", "16", "--chunk", "8"}}) {
            Path out = tmp.resolve("l.npy");
            String[] args = new String[6 + extra.length];
            System.arraycopy(
                    new String[] {
                        "logits",
                        "--model",
                        GOLD.resolve("weights.safetensors").toString(),
                        "--tokens",
                        goldenTokens(),
                        "--out"
                    },
                    0,
                    args,
                    0,
                    6);
            args[5] = "--out";
            String[] full = Arrays.copyOf(args, args.length + 1);
            full[6] = out.toString();
            System.arraycopy(extra, 0, full, 7, extra.length);
            Run r = run(full);
            assertEquals(0, r.exit(), r.err());
            Npy.Array got = Npy.read(out);
            assertEquals(24, got.shape()[0]);
            float max = 0;
            float[] g = got.toFloats();
            for (int i = 0; i < g.length; i++) {
                max = Math.max(max, Math.abs(g[i] - want[i]));
            }
            assertTrue(max <= 1e-4f, Arrays.toString(extra) + " differs by " + max);
        }
    }

    @Test
    void inspectReportsTheSpecFormula() {
        Run r = run("inspect", "--shape", "L24-D2048");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("\"cache_fixed_bytes\" : 4390912"), r.out());
        assertTrue(r.out().contains("\"cache_bytes_per_token\" : 260"), r.out());
        assertTrue(r.out().contains("\"compression_ratio\" : 756.2"), r.out());
        assertTrue(r.out().contains("\"params\" : 1445257216"), r.out());
    }

    @Test
    void tokenizeAndDetokenizeRoundTrip() throws Exception {
        Run t = run("tokenize", "--text", "Today is a beautiful day. 今天是美好的一天。");
        assertEquals(
                "33520 4600 332 59219 21509 47 33 10381 11639 13091 15597 11685 14734 10250 11639 10080",
                t.out().strip());
        Path raw = tmp.resolve("raw.bin");
        Files.write(raw, new byte[] {(byte) 0xc3, 0x28});
        assertEquals("196 41", run("tokenize", "--file", raw.toString()).out().strip());
        Run d = run("detokenize", "--ids", "33520 4600 332 59219 21509");
        assertEquals("Today is a beautiful day", d.out().strip());
        Path own = tmp.resolve("own-vocab.txt");
        Files.writeString(own, "1 'Tod' 3\n2 'ay' 2\n");
        assertEquals(
                "1 2",
                run("tokenize", "--vocab", own.toString(), "--text", "Today")
                        .out()
                        .strip(),
                "--vocab overrides");
    }

    @Test
    void generateStreamsReproducibly() {
        String[] args = {
            "generate",
            "--shape",
            "layers=2,width=64,head=32,vocab=65536",
            "--prompt",
            "Hello",
            "--max-tokens",
            "8",
            "--temperature",
            "0.8",
            "--sample-seed",
            "3"
        };
        Run a = run(args);
        Run b = run(args);
        assertEquals(0, a.exit(), a.err());
        assertTrue(a.out().strip().length() > 0);
        assertEquals(a.out(), b.out());
    }

    private static void assertBadInput(Run r, String needle) {
        assertEquals(GoldfinchCli.EXIT_BAD_INPUT, r.exit(), "exit code; stderr: " + r.err());
        assertTrue(r.err().startsWith("error: ") && r.err().contains(needle), r.err());
        assertTrue(!r.err().contains("\tat "), "a stack trace instead of a message: " + r.err());
    }

    @Test
    void badInputsAreOneClearLine() throws Exception {
        String model = GOLD.resolve("weights.safetensors").toString();
        assertBadInput(
                run(
                        "logits",
                        "--model",
                        model,
                        "--tokens",
                        "1,2,512",
                        "--out",
                        tmp.resolve("x.npy").toString()),
                "512");
        assertBadInput(
                run(
                        "logits",
                        "--model",
                        model,
                        "--tokens",
                        "1,x",
                        "--out",
                        tmp.resolve("x.npy").toString()),
                "'x'");
        Path cut = tmp.resolve("cut.safetensors");
        Files.write(cut, Arrays.copyOf(Files.readAllBytes(GOLD.resolve("weights.safetensors")), 4000));
        assertBadInput(
                run(
                        "logits",
                        "--model",
                        cut.toString(),
                        "--tokens",
                        "1",
                        "--out",
                        tmp.resolve("x.npy").toString()),
                "cut.safetensors");
        assertBadInput(run("inspect", "--shape", "L0-D1"), "shape");
        // The golden model has 512 ids; the World tokenizer's go to 65529.
        assertBadInput(run("generate", "--model", model, "--prompt", "hi"), "vocabulary");
        assertBadInput(run("generate", "--shape", "layers=2,width=64,head=32,vocab=65536", "--prompt", ""), "empty");
        assertBadInput(
                run("generate", "--shape", "layers=2,width=64,head=32,vocab=65536", "--prompt", "a", "--top-p", "1.5"),
                "top_p");
        assertBadInput(
                run(
                        "convert",
                        GOLD.resolve("weights.safetensors").toString(),
                        tmp.resolve("o").toString()),
                "zip");
    }

    @Test
    void everySubcommandHasHelpWithAnExample() {
        for (String command :
                List.of("generate", "tokenize", "detokenize", "logits", "convert", "inspect", "serve", "bench")) {
            Run r = run(command, "--help");
            assertEquals(0, r.exit(), command + " --help: " + r.err());
            assertTrue(r.out().startsWith("Usage: goldfinch " + command), r.out());
            assertTrue(r.out().contains("Example:\n  goldfinch " + command), command + " shows an example: " + r.out());
        }
    }

    @Test
    void environmentTroubleIsOneLineWithItsFixAndAStackOnlyWhenVerbose() throws Exception {
        try (var busy = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            int port = busy.getLocalPort();
            Run r = run("serve", "--shape", "layers=2,width=64,head=32,vocab=65536", "--port", Integer.toString(port));
            assertBadInput(r, "port " + port + " (--port) is already in use");
            assertEquals(1, r.err().strip().lines().count(), "one line: " + r.err());
        }
        Path missing = tmp.resolve("absent.safetensors");
        Run quiet = run("inspect", "--model", missing.toString());
        assertEquals(GoldfinchCli.EXIT_BAD_INPUT, quiet.exit(), quiet.err());
        assertTrue(quiet.err().startsWith("error: ") && quiet.err().contains("absent.safetensors"), quiet.err());
        assertFalse(quiet.err().contains("\tat "), quiet.err());
        Run verbose = run("inspect", "--model", missing.toString(), "--verbose");
        assertTrue(verbose.err().contains("\tat "), "--verbose prints the stack: " + verbose.err());
    }

    /**
     * bench engine with two dtypes: each measured in a child JVM of its own, the parent's JSON holding both and the
     * q8_0 ÷ f32 decode ratio; the children's processes are real, so their flags and class path must carry over.
     */
    @Test
    void benchEngineMeasuresEachDtypeInItsOwnJvm() throws Exception {
        Run r = run(
                "bench",
                "engine",
                "--shape",
                "layers=2,width=128,head=64,vocab=512",
                "--dtype",
                "f32,q8_0",
                "--prompt-lengths",
                "64",
                "--batches",
                "1,2",
                "--contexts",
                "16",
                "--repeats",
                "1",
                "--decode-steps",
                "2",
                "--skip-perplexity",
                "--json");
        assertEquals(0, r.exit(), r.err());
        tools.jackson.databind.JsonNode json =
                tools.jackson.databind.json.JsonMapper.builder().build().readTree(r.out());
        assertEquals("[\"f32\",\"q8_0\"]", json.get("dtypes").toString());
        for (String dtype : List.of("f32", "q8_0")) {
            tools.jackson.databind.JsonNode figures = json.get("by_dtype").get(dtype);
            assertEquals(dtype, figures.get("dtype").asString());
            assertTrue(figures.get("prefill_tps").get("64").asDouble() > 0, figures.toString());
            assertTrue(figures.get("decode_tps").get("b2_ctx16").asDouble() > 0, figures.toString());
            assertTrue(figures.get("memory_read_gbps").asDouble() > 0, "each child measures its own bandwidth");
            assertFalse(figures.has("shape"), "the run's own keys stay with the parent");
        }
        assertTrue(
                json.get("by_dtype").get("q8_0").get("weight_bytes").asLong()
                        < json.get("by_dtype").get("f32").get("weight_bytes").asLong(),
                "the q8_0 child really quantized");
        assertTrue(json.get("q8_0_b1_over_f32_b1").get("b1_ctx16").asDouble() > 0, r.out());

        Run badShape = run("bench", "engine", "--shape", "L0-Dx", "--dtype", "f32,q8_0", "--json");
        assertEquals(GoldfinchCli.EXIT_BAD_INPUT, badShape.exit(), badShape.err());
        assertTrue(badShape.err().contains("L0-Dx") && badShape.out().isEmpty(), badShape.err());
    }

    /** bench load against a real mesh: open-loop arrivals, every request answered, percentiles printed. */
    @Test
    void benchLoadRunsAgainstAMesh() throws Exception {
        try (dev.goldfinch.mesh.MeshLauncher mesh =
                dev.goldfinch.mesh.MeshLauncher.start(new dev.goldfinch.mesh.MeshLauncher.Options(
                        null,
                        "layers=2,width=64,head=32,vocab=65536",
                        3,
                        "f32",
                        null,
                        null,
                        1,
                        0,
                        0,
                        4096,
                        256,
                        null,
                        java.util.Map.of("logging.level.root", "WARN")))) {
            Run r = run(
                    "bench",
                    "load",
                    "--url",
                    "http://127.0.0.1:" + mesh.httpPort("gateway"),
                    "--rate",
                    "2",
                    "--duration",
                    "4",
                    "--prefix-tokens",
                    "64",
                    "--suffix-tokens",
                    "8",
                    "--max-tokens",
                    "4",
                    "--ttft-slo",
                    "60",
                    "--json");
            assertEquals(0, r.exit(), r.err());
            var report =
                    tools.jackson.databind.json.JsonMapper.builder().build().readTree(r.out());
            int requests = report.get("requests").asInt();
            assertTrue(requests > 0, r.out());
            assertEquals(requests, report.get("by_status").get("200").asInt(), "every request answered: " + r.out());
            assertTrue(report.get("ttft_ms").get("p50").asDouble() > 0, r.out());
            assertTrue(report.get("goodput_rps").asDouble() > 0, r.out());
        }
        assertBadInput(run("bench", "load", "--rate", "0"), "--rate");
    }

    /**
     * bench load against a gateway that answers in every way a real one may: a 429, a whole stream whose last text
     * chunk carries no token (a held-back tail) and which stops before max_tokens, a stream cut short, an error event after tokens, and no
     * answer at all. Each is counted as what it is, goodput counts only the whole streams, and the run ends within its
     * timeout instead of waiting on the silent request.
     */
    @Test
    void benchLoadCountsEachKindOfAnswerAndGivesUpOnSilence() throws Exception {
        java.util.concurrent.atomic.AtomicInteger served = new java.util.concurrent.atomic.AtomicInteger();
        int[] kinds = new int[5];
        java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
        com.sun.net.httpserver.HttpServer server =
                com.sun.net.httpserver.HttpServer.create(new java.net.InetSocketAddress("127.0.0.1", 0), 0);
        server.setExecutor(java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor());
        server.createContext("/v1/completions", exchange -> {
            exchange.getRequestBody().readAllBytes();
            int kind = served.getAndIncrement() % 5;
            synchronized (kinds) {
                kinds[kind]++;
            }
            try (exchange) {
                if (kind == 0) {
                    byte[] error =
                            "{\"error\":{\"message\":\"busy\",\"type\":\"rate_limit_error\",\"param\":null,\"code\":null}}"
                                    .getBytes(StandardCharsets.UTF_8);
                    exchange.sendResponseHeaders(429, error.length);
                    exchange.getResponseBody().write(error);
                    return;
                }
                if (kind == 3) {
                    release.await(); // never answers while the run lasts
                    return;
                }
                exchange.getResponseHeaders().add("Content-Type", "text/event-stream");
                exchange.sendResponseHeaders(200, 0);
                var out = exchange.getResponseBody();
                for (String text : new String[] {"a", "b", "c"}) { // the third a held-back tail, no token of its own
                    out.write(
                            ("data: {\"choices\":[{\"index\":0,\"text\":\"" + text + "\",\"finish_reason\":null}]}\n\n")
                                    .getBytes(StandardCharsets.UTF_8));
                    out.flush();
                }
                if (kind == 2) {
                    return; // cut short: no finish reason
                }
                if (kind == 4) {
                    out.write(("data: {\"error\":{\"message\":\"m\",\"type\":\"server_error\",\"param\":null,"
                                    + "\"code\":\"model_mismatch\"}}\n\ndata: [DONE]\n\n")
                            .getBytes(StandardCharsets.UTF_8));
                    return;
                }
                out.write(("data: {\"choices\":[{\"index\":0,\"text\":\"\",\"finish_reason\":\"stop\"}]}\n\n"
                                + "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,"
                                + "\"prompt_tokens_details\":{\"cached_tokens\":0}}}\n\ndata: [DONE]\n\n")
                        .getBytes(StandardCharsets.UTF_8));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        server.start();
        try {
            Run r = run(
                    "bench",
                    "load",
                    "--url",
                    "http://127.0.0.1:" + server.getAddress().getPort(),
                    "--rate",
                    "8",
                    "--duration",
                    "2",
                    "--max-tokens",
                    "8",
                    "--ttft-slo",
                    "60",
                    "--timeout",
                    "10",
                    "--json");
            assertEquals(0, r.exit(), r.err());
            var report =
                    tools.jackson.databind.json.JsonMapper.builder().build().readTree(r.out());
            int requests = report.get("requests").asInt();
            assertEquals(served.get(), requests, r.out());
            var byStatus = report.get("by_status");
            assertEquals(kinds[0], byStatus.path("429").asInt(), r.out());
            assertEquals(kinds[1], byStatus.path("200").asInt(), r.out());
            assertEquals(kinds[2], byStatus.path("cut short").asInt(), r.out());
            assertEquals(kinds[3], byStatus.path("timeout").asInt(), r.out());
            assertEquals(
                    kinds[4], byStatus.path("error mid-stream: model_mismatch").asInt(), r.out());
            assertEquals(kinds[1], report.get("completed").asInt(), r.out());
            assertEquals(
                    kinds[1], report.get("good").asInt(), "whole streams are good, whatever their length: " + r.out());
            assertEquals(requests / 2.0, report.get("offered_rps").asDouble(), 1e-9, r.out());
            assertTrue(report.get("completed_rps").asDouble() > 0, r.out());
        } finally {
            release.countDown();
            server.stop(0);
        }
    }
}
