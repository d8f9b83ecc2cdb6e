package dev.goldfinch.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.goldfinch.proto.v1.GenerateRequest;
import dev.goldfinch.proto.v1.GenerateResponse;
import dev.goldfinch.proto.v1.GenerationGrpc;
import dev.goldfinch.proto.v1.SamplingParams;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The mesh as real processes ({@code serve --separate-processes}): the decode process serving a stream is
 * killed with SIGKILL after a few tokens, and the client's stream still completes with exactly the tokens
 * of an undisturbed run with the same seed — greedy, and sampled with penalties — counted once.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ProcessMeshFailoverTest {
    // Long enough that an unloaded machine is still generating when the kill lands (120 finished first once).
    static final int MAX_TOKENS = 1000;
    static final Pattern GAP = Pattern.compile("failover gap (\\d+) ms");

    ProcessMeshLauncher mesh;
    MeshClient client;
    final HttpClient http = HttpClient.newHttpClient();

    @BeforeAll
    void start() throws Exception {
        // Kept after the run (the gateway's holds the failover gaps).
        Path logs =
                Files.createTempDirectory(Files.createDirectories(Path.of("target", "process-mesh-logs")), "failover-");
        // Three decode replicas: each test kills one and still needs another to move to.
        mesh = ProcessMeshLauncher.start(
                new MeshLauncher.Options(
                        null,
                        "layers=4,width=128,head=32,vocab=65536",
                        7,
                        "f32",
                        null, // the bundled World vocabulary
                        null,
                        3,
                        0,
                        0,
                        2048,
                        MAX_TOKENS,
                        null,
                        Map.of(
                                "logging.level.root", "WARN",
                                "logging.level.dev.goldfinch.gateway.GenerationPipeline", "INFO")),
                logs);
        client = new MeshClient(mesh.httpPort("gateway"), mesh.grpcPort("gateway"));
    }

    @AfterAll
    void stop() {
        if (client != null) {
            client.close();
        }
        if (mesh != null) {
            mesh.close();
        }
    }

    @Test
    void everyServiceIsItsOwnProcessAndDescribesItself() {
        List<String> names =
                mesh.children().stream().map(ProcessMeshLauncher.Child::name).toList();
        assertEquals(List.of("cache-store", "prefill", "decode-1", "decode-2", "decode-3", "gateway"), names);
        for (ProcessMeshLauncher.Child c : mesh.children()) {
            assertTrue(c.process().isAlive(), c.name());
            assertFalse(c.pid() == ProcessHandle.current().pid());
            assertTrue(
                    c.describe().matches("service " + c.name() + " pid " + c.pid() + " grpc \\d+ http \\d+"),
                    c.describe());
        }
    }

    @Test
    void greedyStreamSurvivesItsDecodeProcessBeingKilled() throws Exception {
        survivesKill(SamplingParams.newBuilder()
                .setTemperature(0)
                .setMaxTokens(MAX_TOKENS)
                .build());
    }

    @Test
    void seededSampledStreamWithPenaltiesSurvivesItsDecodeProcessBeingKilled() throws Exception {
        survivesKill(SamplingParams.newBuilder()
                .setTemperature(1)
                .setSeed(1234)
                .setPresencePenalty(0.4)
                .setFrequencyPenalty(0.3)
                .setMaxTokens(MAX_TOKENS)
                .build());
    }

    private void survivesKill(SamplingParams sampling) throws Exception {
        GenerateRequest request = GenerateRequest.newBuilder()
                .setPromptUtf8(ByteString.copyFromUtf8(
                        "The goldfinch sings of failover number " + sampling.getTemperature() + " and keeps singing"))
                .setSampling(sampling)
                .build();
        MeshClient.Generation undisturbed = client.grpcGenerate(request);
        assertTrue(
                undisturbed.tokens().size() > 20,
                "a long enough run to cut: " + undisturbed.tokens().size());

        int gapsBefore = gaps().size();
        Iterator<GenerateResponse> stream = GenerationGrpc.newBlockingStub(client.grpc)
                .withDeadlineAfter(120, TimeUnit.SECONDS)
                .generate(request);
        List<Integer> tokens = new ArrayList<>();
        StringBuilder text = new StringBuilder();
        int completion = -1;
        String killed = null;
        while (stream.hasNext()) {
            GenerateResponse r = stream.next();
            tokens.addAll(r.getTokenIdsList());
            text.append(r.getText());
            if (r.hasUsage()) {
                completion = r.getUsage().getCompletionTokens();
            }
            if (killed == null && tokens.size() >= 5) {
                killed = killServingDecode();
            }
        }
        assertEquals(undisturbed.tokens(), tokens, "the stream after " + killed + " was killed");
        assertEquals(undisturbed.text(), text.toString());
        assertEquals(undisturbed.tokens().size(), completion, "usage counts every token once");
        List<Long> gaps = gaps();
        long logDeadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10); // the child's log may lag its stream
        while (gaps.size() <= gapsBefore && System.nanoTime() < logDeadline) {
            Thread.sleep(100);
            gaps = gaps();
        }
        assertTrue(gaps.size() > gapsBefore, "the gateway logged the move to another replica: " + gaps);
        System.out.println("failover after SIGKILL of " + killed + " (temperature " + sampling.getTemperature()
                + "): gap " + gaps.getLast() + " ms");
    }

    /** SIGKILLs the decode process holding a live sequence (its own metrics say which) and returns its name. */
    private String killServingDecode() throws Exception {
        for (ProcessMeshLauncher.Child c : mesh.children()) {
            if (!c.name().startsWith("decode-") || !c.process().isAlive()) {
                continue;
            }
            HttpResponse<String> metrics = http.send(
                    HttpRequest.newBuilder(
                                    URI.create("http://127.0.0.1:" + c.service().httpPort() + "/metrics"))
                            .timeout(Duration.ofSeconds(5))
                            .build(),
                    HttpResponse.BodyHandlers.ofString());
            if (metrics.body().lines().anyMatch(l -> l.matches("goldfinch_decode_live_sequences(\\{.*})? 1\\.0"))) {
                new ProcessBuilder("kill", "-9", Long.toString(c.pid()))
                        .inheritIO()
                        .start()
                        .waitFor();
                assertTrue(c.process().waitFor(10, TimeUnit.SECONDS), c.name() + " died");
                return c.name();
            }
        }
        throw new AssertionError("no decode process holds the live sequence (it ended before the kill)");
    }

    private List<Long> gaps() throws Exception {
        List<Long> gaps = new ArrayList<>();
        for (String line : Files.readAllLines(mesh.child("gateway").log())) {
            Matcher m = GAP.matcher(line);
            if (m.find()) {
                gaps.add(Long.parseLong(m.group(1)));
            }
        }
        return gaps;
    }
}
