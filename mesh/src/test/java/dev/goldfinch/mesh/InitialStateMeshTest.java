package dev.goldfinch.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.model.GoldFinchModel;
import dev.goldfinch.model.ModelShapes;
import dev.goldfinch.model.RandomWeights;
import dev.goldfinch.model.state.InitialStates;
import dev.goldfinch.model.state.SequenceState;
import dev.goldfinch.model.tensor.DType;
import dev.goldfinch.proto.v1.GenerateRequest;
import dev.goldfinch.proto.v1.SamplingParams;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Initial states through the whole mesh: a state saved after prompt P ({@code goldfinch state save}'s format) and
 * configured under a name; a request naming it answers exactly as the request P + its prompt without it, greedy and
 * seeded; the same request again restores from the prefix cache on top of the state. Byte-level models, so P and the
 * prompt concatenate token for token. A recurrent model's state sits at position 0; a GoldFinch one carries P's
 * compressed keys.
 */
class InitialStateMeshTest {
    private static final long SEED = 5;
    private static final String PREAMBLE = "Once upon a time, in a quiet valley, ";
    private static final String PROMPT = "there lived a small bird who";

    @ParameterizedTest
    @ValueSource(strings = {"layers=2,width=64,head=32,vocab=256,arch=rwkv7", "layers=3,width=64,head=16,vocab=256"})
    void aSavedStateAnswersAsItsPromptWould(String shape, @TempDir Path dir) throws Exception {
        Path saved = dir.resolve("story.gfst");
        try (GoldFinchModel model = RandomWeights.model(ModelShapes.parse(shape), SEED, DType.F32)) {
            SequenceState state = model.newState();
            model.prefill(state, bytes(PREAMBLE));
            Files.write(saved, InitialStates.encodeForSaving(state));
        }
        Map<String, String> extra = new LinkedHashMap<>();
        extra.put("logging.level.root", "WARN");
        extra.put("goldfinch.prefill.initial-states[story]", saved.toString());
        try (MeshLauncher mesh = MeshLauncher.start(
                        new MeshLauncher.Options(null, shape, SEED, "f32", null, null, 1, 0, 0, 512, 64, null, extra));
                MeshClient client = new MeshClient(mesh.httpPort("gateway"), mesh.grpcPort("gateway"))) {
            for (Map<String, Object> sampling :
                    List.<Map<String, Object>>of(Map.of("temperature", 0), Map.of("temperature", 1.0, "seed", 7))) {
                Map<String, Object> fromState = new LinkedHashMap<>(sampling);
                fromState.putAll(
                        Map.of("prompt", PROMPT, "initial_state", "story", "max_tokens", 16, "return_token_ids", true));
                Map<String, Object> whole = new LinkedHashMap<>(sampling);
                whole.putAll(Map.of("prompt", PREAMBLE + PROMPT, "max_tokens", 16, "return_token_ids", true));

                MeshClient.Generation a = client.complete("/v1/completions", fromState);
                MeshClient.Generation b = client.complete("/v1/completions", whole);
                assertTrue(!b.tokens().isEmpty(), "tokens to compare: " + b);
                assertEquals(b.tokens(), a.tokens(), sampling + ": the state stands for its prompt");
                assertEquals(PROMPT.length(), a.promptTokens(), "usage counts the request's own prompt");

                MeshClient.Generation again = client.complete("/v1/completions", fromState);
                assertEquals(a.tokens(), again.tokens(), "again, from the prefix cache");
                assertEquals(
                        PROMPT.length() - 1,
                        again.cachedTokens(),
                        "all but the last prompt token restored, on top of the state: " + again);
            }

            // The same over gRPC: the field of GenerateRequest.
            MeshClient.Generation grpc = client.grpcGenerate(GenerateRequest.newBuilder()
                    .setPromptUtf8(com.google.protobuf.ByteString.copyFromUtf8(PROMPT))
                    .setInitialState("story")
                    .setSampling(SamplingParams.newBuilder().setMaxTokens(16).setTemperature(0))
                    .build());
            MeshClient.Generation greedyWhole = client.complete(
                    "/v1/completions",
                    Map.of("prompt", PREAMBLE + PROMPT, "max_tokens", 16, "temperature", 0, "return_token_ids", true));
            assertEquals(greedyWhole.tokens(), grpc.tokens(), "gRPC's initial_state as HTTP's");

            MeshClient.Reply unknown = client.post(
                    "/v1/completions", Map.of("prompt", PROMPT, "initial_state", "nonesuch", "max_tokens", 4));
            assertEquals(400, unknown.status(), unknown.body().toString());
            assertEquals(
                    "initial_state", unknown.body().path("error").path("param").asString());
            assertTrue(
                    unknown.body().path("error").path("message").asString().contains("nonesuch"),
                    unknown.body().toString());
        }
    }

    private static int[] bytes(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        int[] ids = new int[b.length];
        for (int i = 0; i < b.length; i++) {
            ids[i] = b[i] & 0xff;
        }
        return ids;
    }
}
