package dev.goldfinch.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.error.TypedFailure;
import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.fuzz.FuzzRun;
import dev.goldfinch.model.tokenizer.WorldTokenizer;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.json.JsonMapper;

/**
 * The gateway's OpenAI request parsing ({@link OpenAiController#parse}, then tokenizing its prompt) under
 * {@link FuzzRun}'s mutations of {@code src/test/resources/fuzz/openai-request/}, each input as a completion
 * and as a chat request: a request parses or fails with its typed 400, and what parses is within the model's
 * limits (the model is {@link FakePrefill}'s, over an in-process channel).
 */
class OpenAiRequestFuzzTest {
    @Test
    void requestsParseOrFailTyped() throws Exception {
        String name = "fuzz-prefill-" + UUID.randomUUID();
        Server prefill = InProcessServerBuilder.forName(name)
                .addService(new FakePrefill())
                .build()
                .start();
        ManagedChannel channel = InProcessChannelBuilder.forName(name).build();
        try (ReplicaRouter prefills =
                new ReplicaRouter("prefill", List.of(name), java.time.Duration.ofHours(1), 0, target -> channel)) {
            ModelCatalog models = new ModelCatalog(prefills);
            int maxPrompt = models.info().getMaxPromptTokens();
            int maxTokens = models.info().getMaxTokensCap();
            PromptBuilder prompts = new PromptBuilder(WorldTokenizer.load(GatewayFixture.vocab()));
            OpenAiController controller = new OpenAiController(
                    prompts,
                    models,
                    null,
                    JsonMapper.builder().build(),
                    new dev.goldfinch.model.constrain.JsonGrammars(prompts.tokenizer(), 8),
                    new GatewayProperties(
                            null, null, null, null, null, null, null, null, null, null, null, null, null));
            var result = FuzzRun.run(
                    "openai-request",
                    FuzzRun.corpus("openai-request"),
                    (m, seed) -> m.mutate(seed),
                    input -> {
                        int parsed = 0;
                        TypedFailure last = null;
                        for (boolean chat : new boolean[] {false, true}) {
                            try {
                                OpenAiController.Request r = controller.parse(input, chat);
                                int[] tokens = r.prompt().get();
                                models.checkPrompt(tokens, r.promptField());
                                assertTrue(tokens.length <= maxPrompt);
                                assertTrue(
                                        r.params().maxTokens() > 0 && r.params().maxTokens() <= maxTokens);
                                parsed++;
                            } catch (TypedFailure e) { // InvalidInput, or MODEL_NOT_FOUND for an unknown model
                                assertTrue(e.kind() != dev.goldfinch.error.FailureKind.INTERNAL, e.toString());
                                assertTrue(e.getMessage() != null
                                        && !e.getMessage().isBlank());
                                last = e;
                            }
                        }
                        if (parsed == 0) {
                            throw last; // rejected by both endpoints: counts as the typed failure
                        }
                    },
                    // TypedFailure itself: an unknown model (MODEL_NOT_FOUND, naming the model field).
                    Set.of(GoldFinchException.InvalidInput.class, TypedFailure.class),
                    input -> (4L << 20) + 256L * input.length);
            assertEquals(FuzzRun.validSeeds(result.target()), result.seedsAccepted(), "the valid seeds parse");
        } finally {
            channel.shutdownNow();
            prefill.shutdownNow();
        }
    }
}
