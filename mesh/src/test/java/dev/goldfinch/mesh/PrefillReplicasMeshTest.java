package dev.goldfinch.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.goldfinch.proto.v1.GenerateRequest;
import dev.goldfinch.proto.v1.SamplingParams;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * {@code serve --prefill-replicas 2}: the gateway spreads a burst of long prompts over both prefill replicas
 * (least loaded), and with one stopped the other serves every request.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class PrefillReplicasMeshTest {
    static final int BURST = 6;

    MeshLauncher mesh;
    MeshClient client;

    @BeforeAll
    void start() {
        mesh = MeshLauncher.start(MeshEndToEndTest.smallMesh(1, Map.of("logging.level.root", "WARN"))
                .withPrefillReplicas(2));
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
    void aBurstSpreadsOverPrefillReplicasAndOneDownStillServes() throws Exception {
        assertTrue(mesh.grpcPorts().keySet().containsAll(List.of("prefill-1", "prefill-2")), mesh.grpcPorts() + "");
        double before1 = prefills("prefill-1");
        double before2 = prefills("prefill-2");
        List<MeshClient.Generation> answers = new ArrayList<>();
        try (ExecutorService pool = Executors.newFixedThreadPool(BURST)) {
            List<Future<MeshClient.Generation>> burst = new ArrayList<>();
            for (int i = 0; i < BURST; i++) {
                String prompt = ("burst " + i + ": a long prompt about goldfinches and their songs. ").repeat(40);
                burst.add(pool.submit(() -> client.grpcGenerate(request(prompt))));
            }
            for (Future<MeshClient.Generation> f : burst) {
                answers.add(f.get());
            }
        }
        answers.forEach(a -> assertNotNull(a.finishReason(), "every request of the burst answered"));
        double on1 = prefills("prefill-1") - before1;
        double on2 = prefills("prefill-2") - before2;
        System.out.println("prefill burst of " + BURST + ": " + on1 + " on prefill-1, " + on2 + " on prefill-2");
        assertEquals(BURST, on1 + on2, 0.0, "each request prefilled once");
        assertTrue(on1 >= 1 && on2 >= 1, "both replicas took part of the burst: " + on1 + " and " + on2);

        mesh.stop("prefill-1");
        double on2Before = prefills("prefill-2");
        for (int i = 0; i < 4; i++) {
            MeshClient.Generation g = client.grpcGenerate(request("after prefill-1 stopped, request " + i));
            assertNotNull(g.finishReason(), "answered with prefill-1 gone");
        }
        assertEquals(4, prefills("prefill-2") - on2Before, 0.0, "the remaining replica prefilled them all");
    }

    private static GenerateRequest request(String prompt) {
        return GenerateRequest.newBuilder()
                .setPromptUtf8(ByteString.copyFromUtf8(prompt))
                .setSampling(SamplingParams.newBuilder().setTemperature(0).setMaxTokens(4))
                .build();
    }

    /** Prefill requests the replica has finished (its own metrics). */
    private double prefills(String service) {
        return mesh.bean(service, MeterRegistry.class)
                .get("goldfinch.prefill.duration")
                .timer()
                .count();
    }
}
