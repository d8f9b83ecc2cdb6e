package dev.goldfinch.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.goldfinch.proto.v1.GenerateRequest;
import dev.goldfinch.proto.v1.SamplingParams;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * A rolling restart under steady load: each decode process of a two-replica process mesh in turn gets a real
 * SIGTERM ({@code kill -TERM}), drains (NOT_SERVING, finishes its streams), exits and is started again,
 * while clients keep a steady stream of seeded sampled requests going. Not one request fails, and every
 * answer is the undisturbed run's, token for token.
 */
@Tag("faults")
class RollingRestartTest {
    static final int CLIENTS = 4;
    static final int PROMPTS = 4;
    static final int MAX_TOKENS = 48;
    static final Pattern DRAIN_START = Pattern.compile("draining: health NOT_SERVING, (\\d+) calls in progress");
    static final Pattern DRAINED = Pattern.compile("drained in (\\d+) ms");

    @Test
    void restartingEachDecodeReplicaUnderLoadFailsNoRequest() throws Exception {
        Path logs = Files.createTempDirectory(
                Files.createDirectories(Path.of("target", "process-mesh-logs")), "rolling-restart-");
        try (ProcessMeshLauncher mesh = ProcessMeshLauncher.start(
                        MeshEndToEndTest.smallMesh(
                                2,
                                Map.of(
                                        "logging.level.root", "WARN",
                                        "logging.level.dev.goldfinch.service.GracefulDrain", "INFO",
                                        "logging.level.dev.goldfinch.gateway.GenerationPipeline", "INFO")),
                        logs);
                MeshClient client = new MeshClient(mesh.httpPort("gateway"), mesh.grpcPort("gateway"))) {
            List<GenerateRequest> requests = new ArrayList<>();
            List<MeshClient.Generation> undisturbed = new ArrayList<>();
            for (int i = 0; i < PROMPTS; i++) {
                GenerateRequest r = GenerateRequest.newBuilder()
                        .setPromptUtf8(ByteString.copyFromUtf8("Rolling restart, prompt " + i + ": the goldfinch"))
                        .setSampling(SamplingParams.newBuilder()
                                .setTemperature(1)
                                .setSeed(100 + i)
                                .setFrequencyPenalty(0.2)
                                .setMaxTokens(MAX_TOKENS))
                        .build();
                requests.add(r);
                undisturbed.add(client.grpcGenerate(r));
            }

            AtomicBoolean running = new AtomicBoolean(true);
            AtomicInteger done = new AtomicInteger();
            ConcurrentLinkedQueue<String> failures = new ConcurrentLinkedQueue<>();
            List<Thread> clients = new ArrayList<>();
            for (int c = 0; c < CLIENTS; c++) {
                int first = c;
                clients.add(Thread.ofPlatform().name("load-" + c).start(() -> {
                    for (int n = first; running.get(); n++) {
                        int i = n % PROMPTS;
                        try {
                            MeshClient.Generation g = client.grpcGenerate(requests.get(i));
                            if (!g.tokens().equals(undisturbed.get(i).tokens())
                                    || !g.text().equals(undisturbed.get(i).text())) {
                                failures.add("prompt " + i + ": " + g.tokens() + " instead of "
                                        + undisturbed.get(i).tokens());
                            }
                        } catch (RuntimeException e) {
                            failures.add("prompt " + i + ": " + e);
                        }
                        done.incrementAndGet();
                    }
                }));
            }

            List<String> figures = new ArrayList<>();
            for (String name : List.of("decode-1", "decode-2")) {
                awaitMore(done, CLIENTS * 2); // steady load before the signal
                ProcessMeshLauncher.Child c = mesh.child(name);
                awaitLiveSequences(client, c.service().grpcTarget()); // the drain has streams to finish
                long signalled = System.nanoTime();
                new ProcessBuilder("kill", "-TERM", Long.toString(c.pid()))
                        .inheritIO()
                        .start()
                        .waitFor();
                assertTrue(c.process().waitFor(3, TimeUnit.MINUTES), name + " exits after draining");
                long exitMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - signalled);
                String log = Files.readString(c.log());
                Matcher start = DRAIN_START.matcher(log);
                Matcher drained = DRAINED.matcher(log);
                assertTrue(start.find(), name + " logged its drain");
                assertTrue(drained.find(), name + " finished its streams within the drain timeout");
                figures.add(name + ": " + start.group(1) + " calls in progress at SIGTERM, drained in "
                        + drained.group(1) + " ms, exited " + exitMs + " ms after the signal (exit code "
                        + c.process().exitValue() + ")");
                mesh.restart(name, Duration.ofMinutes(10));
            }
            awaitMore(done, CLIENTS * 2); // the restarted replicas serve again
            running.set(false);
            for (Thread t : clients) {
                t.join(TimeUnit.MINUTES.toMillis(3));
            }
            figures.forEach(f -> System.out.println("RELIABILITY rolling restart " + f));
            System.out.println("RELIABILITY rolling restart: " + failures.size() + " of " + done.get()
                    + " requests failed or differed");
            assertEquals(List.of(), List.copyOf(failures), "no request failed or differed during the restarts");
            assertTrue(done.get() >= CLIENTS * 6, "a steady load ran throughout: " + done.get());
        }
    }

    /** Waits until the gateway has a sequence live on the replica at {@code target}. */
    private static void awaitLiveSequences(MeshClient client, String target) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(10);
        while (true) {
            MeshClient.Reply status = client.get("/v1/mesh/status");
            for (var r : status.body().get("decode_replicas")) {
                if (r.get("target").asString().equals(target)
                        && r.get("live_sequences").asInt() > 0) {
                    return;
                }
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("the load never reached " + target + ": " + status.body());
            }
            Thread.sleep(20);
        }
    }

    /** Waits until {@code n} more requests have completed. */
    private static void awaitMore(AtomicInteger done, int n) throws InterruptedException {
        int target = done.get() + n;
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(10);
        while (done.get() < target) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("the load stalled at " + done.get() + " requests");
            }
            Thread.sleep(100);
        }
    }
}
