package dev.goldfinch.model.constrain;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.networknt.schema.Schema;
import dev.goldfinch.model.GoldFinchModel;
import dev.goldfinch.model.Golden;
import dev.goldfinch.model.ModelLoader;
import dev.goldfinch.model.sampling.Sampler;
import dev.goldfinch.model.sampling.SamplingParams;
import dev.goldfinch.model.state.SequenceState;
import dev.goldfinch.model.tokenizer.WorldTokenizer;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The property test on the trained golden model (the project's own tiny GoldFinch, 512 ids of the World
 * vocabulary, shipped as a test resource): for 200 seeds and each bounded schema, sampling under the mask gives
 * JSON that parses and validates, ending on end-of-text within the schema's bound.
 */
class GoldenJsonTest {
    @Test
    void everySeedOfTheGoldenModelGivesSchemaValidJson() throws Exception {
        WorldTokenizer world = WorldTokenizer.world();
        try (GoldFinchModel model =
                ModelLoader.load(Golden.resource("goldfinch").resolve("weights.safetensors"))) {
            int vocab = model.config().vocabSize();
            SequenceState prompt = model.newState();
            // The prompt byte by byte: World ids 1..256 are the bytes, within the golden model's 512.
            byte[] promptBytes =
                    "User: Describe it as JSON.\n\nAssistant:".getBytes(java.nio.charset.StandardCharsets.UTF_8);
            int[] ids = new int[promptBytes.length];
            for (int i = 0; i < promptBytes.length; i++) {
                ids[i] = (promptBytes[i] & 0xff) + 1;
            }
            float[] afterPrompt = model.prefill(prompt, ids);
            for (String schemaText : JsonGrammarTest.BOUNDED) {
                JsonGrammar g = JsonGrammar.compile(schemaText, world, "response_format");
                Schema validator = JsonGrammarTest.SCHEMAS.getSchema(schemaText);
                int max = (int) g.maxTokens();
                for (long seed = 0; seed < 200; seed++) {
                    SequenceState state = prompt.fork();
                    Sampler sampler = new Sampler(SamplingParams.defaults().withSeed(seed), vocab);
                    JsonCursor cursor = g.start();
                    float[] logits = afterPrompt.clone();
                    List<Integer> out = new ArrayList<>();
                    boolean ended = false;
                    for (int step = 0; step < max && !ended; step++) {
                        cursor.mask(logits, max - step);
                        int t = sampler.sample(logits);
                        cursor.accept(t);
                        if (t == WorldTokenizer.END_OF_TEXT) {
                            ended = true;
                        } else {
                            out.add(t);
                            sampler.accept(t);
                            logits = model.step(state, t);
                        }
                    }
                    String text = world.decode(
                            out.stream().mapToInt(Integer::intValue).toArray());
                    assertTrue(ended, "no end-of-text within " + max + ": " + text);
                    assertEquals(
                            List.of(),
                            validator.validate(JsonGrammarTest.JSON.readTree(text)),
                            "seed " + seed + ": " + text);
                }
            }
        }
    }
}
