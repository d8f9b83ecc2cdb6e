package dev.goldfinch.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.model.GoldFinchModel;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import tools.jackson.databind.JsonNode;

/**
 * n from one prefill and prompt logprobs through the real mesh (embedded store, random weights): four seeded
 * choices from one prefill call, and echo's logprobs equal to the model's own logits over the prompt.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ChoicesMeshTest {
    MeshLauncher mesh;
    MeshClient client;

    @BeforeAll
    void startMesh() {
        mesh = MeshLauncher.start(MeshEndToEndTest.smallMesh(1, Map.of("logging.level.root", "WARN")));
        client = new MeshClient(mesh.httpPort("gateway"), mesh.grpcPort("gateway"));
    }

    @AfterAll
    void stopMesh() {
        if (client != null) {
            client.close();
        }
        if (mesh != null) {
            mesh.close();
        }
    }

    private double prefillCalls() {
        return mesh.bean("gateway", MeterRegistry.class)
                .get("goldfinch.gateway.prefill_calls")
                .counter()
                .count();
    }

    @Test
    void fourChoicesFromOnePrefillAreSeededAndDistinct() throws Exception {
        Map<String, Object> request = MeshEndToEndTest.body(
                "prompt", "The quick brown fox", "n", 4, "seed", 11, "max_tokens", 8, "cache_salt", "choices");
        double before = prefillCalls();
        MeshClient.Reply first = client.post("/v1/completions", request);
        assertEquals(200, first.status(), first.body().toString());
        assertEquals(1, prefillCalls() - before, "four choices, one prefill");
        List<String> texts = texts(first.body());
        assertEquals(4, new HashSet<>(texts).size(), "four distinct choices: " + texts);
        assertEquals(8 * 4, first.body().at("/usage/completion_tokens").asInt());
        MeshClient.Reply again = client.post("/v1/completions", request);
        assertEquals(texts, texts(again.body()), "same seed, same four choices");
    }

    private static List<String> texts(JsonNode body) {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < body.get("choices").size(); i++) {
            assertEquals(i, body.at("/choices/" + i + "/index").asInt());
            out.add(body.at("/choices/" + i + "/text").asString());
        }
        return out;
    }

    @Test
    void echoedPromptLogprobsAreTheModelsOwn() throws Exception {
        int[] prompt = new Random(5).ints(40, 1, 65000).toArray();
        List<Integer> ids = new ArrayList<>();
        for (int t : prompt) {
            ids.add(t);
        }
        MeshClient.Reply r = client.post(
                "/v1/completions", MeshEndToEndTest.body("prompt", ids, "echo", true, "logprobs", 3, "max_tokens", 0));
        assertEquals(200, r.status(), r.body().toString());
        JsonNode lp = r.body().at("/choices/0/logprobs");
        assertEquals(prompt.length, lp.get("token_logprobs").size());
        assertTrue(lp.at("/token_logprobs/0").isNull());

        GoldFinchModel model = mesh.bean("prefill", GoldFinchModel.class);
        int vocab = model.config().vocabSize();
        float[] logits = model.forward(List.of(
                new GoldFinchModel.Segment(model.newState(), java.util.Arrays.copyOf(prompt, prompt.length - 1), 0)))[
                0];
        for (int i = 1; i < prompt.length; i++) {
            int row = (i - 1) * vocab;
            double max = Double.NEGATIVE_INFINITY;
            for (int v = 0; v < vocab; v++) {
                max = Math.max(max, logits[row + v]);
            }
            double sum = 0;
            for (int v = 0; v < vocab; v++) {
                sum += Math.exp(logits[row + v] - max);
            }
            double logZ = max + Math.log(sum);
            assertEquals(
                    logits[row + prompt[i]] - logZ,
                    lp.at("/token_logprobs/" + i).asDouble(),
                    1e-4,
                    "token " + i);
            double best = Double.NEGATIVE_INFINITY;
            for (JsonNode alt : lp.at("/top_logprobs/" + i)) {
                best = Math.max(best, alt.asDouble());
            }
            assertEquals(max - logZ, best, 1e-4, "top alternative at " + i);
        }
    }
}
