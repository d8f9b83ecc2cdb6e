package dev.goldfinch.model;

import static dev.goldfinch.model.Golden.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.model.io.SafeTensors;
import dev.goldfinch.model.state.SequenceState;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The engine against the reference block by block (llm.c's discipline), from the project's own golden
 * {@code outputs.safetensors}: the embedding after {@code ln0}, the residual stream after every block, the compressed
 * keys, the state after 24 single steps and the logits of those steps. Checked in the order the pass computes them,
 * so a regression fails at the first block that diverged ("block 3 diverged at [..]"), not only at the logits.
 */
class GoldenBlocksTest {

    /** The pass's hidden states, copied as the tap sees them. */
    private static final class Recorder implements GoldFinchModel.BlockTap {
        float[] embedded;
        final float[][] blocks;
        final int width;

        Recorder(ModelConfig config) {
            blocks = new float[config.nLayer()][];
            width = config.nEmbd();
        }

        @Override
        public void embedded(float[] e, int rows) {
            embedded = Arrays.copyOf(e, rows * width);
        }

        @Override
        public void afterBlock(int layer, float[] x, int rows) {
            blocks[layer] = Arrays.copyOf(x, rows * width);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"finch", "goldfinch"})
    void everyBlockOfAFullPassMatchesTheReference(String name) {
        try (GoldFinchModel model = ModelLoader.load(Golden.resource(name).resolve("weights.safetensors"));
                SafeTensors ref = SafeTensors.open(Golden.resource(name).resolve("outputs.safetensors"))) {
            ModelConfig c = model.config();
            int[] tokens = Golden.ids(ref.get("tokens"));
            int t = tokens.length;
            SequenceState state = model.newState();
            float[][] logits = {new float[t * c.vocabSize()]};
            Recorder seen = new Recorder(c);
            model.forward(List.of(new GoldFinchModel.Segment(state, tokens, 0)), logits, seen);

            assertClose(ref.get("emb_ln0").toFloats(), seen.embedded, name + " embedding after ln0");
            float[] hidden = ref.get("hidden_after_block").toFloats(); // [L, T, C]
            for (int l = 0; l < c.nLayer(); l++) {
                int size = t * c.nEmbd();
                assertClose(Arrays.copyOfRange(hidden, l * size, (l + 1) * size), seen.blocks[l], name + " block " + l);
            }
            if (c.architecture().hasGold()) {
                assertClose(
                        ref.get("compressed_kcache_full").toFloats(),
                        state.compressedKeys().copy(0, t),
                        name + " compressed keys");
            }
            assertStateMatches(ref, "state_full24", state, c, name + " state after the full pass");
            float diff = Golden.maxAbsDiff(ref.get("logits_full").toFloats(), logits[0]);
            assertTrue(diff <= GoldenLogitsTest.TOLERANCE, name + " logits differ by " + diff);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"finch", "goldfinch"})
    void singleStepsMatchTheRecurrentReference(String name) {
        try (GoldFinchModel model = ModelLoader.load(Golden.resource(name).resolve("weights.safetensors"));
                SafeTensors ref = SafeTensors.open(Golden.resource(name).resolve("outputs.safetensors"))) {
            ModelConfig c = model.config();
            int v = c.vocabSize();
            int[] tokens = Golden.ids(ref.get("tokens"));
            float[] want = ref.get("logits_recurrent_all").toFloats();
            SequenceState state = model.newState();
            for (int t = 0; t < tokens.length; t++) {
                float[] got = model.step(state, tokens[t]);
                float diff = Golden.maxAbsDiff(Arrays.copyOfRange(want, t * v, (t + 1) * v), got);
                assertTrue(diff <= GoldenLogitsTest.TOLERANCE, name + " step " + t + " logits differ by " + diff);
            }
            assertStateMatches(ref, "state_after_step24", state, c, name + " state after 24 steps");
            if (c.architecture().hasGold()) {
                assertClose(
                        ref.get("compressed_kcache_full").toFloats(),
                        state.compressedKeys().copy(0, tokens.length),
                        name + " compressed keys after 24 steps");
            }
        }
    }

    /** The reference's {@code ModelState} under {@code prefix}: every layer's shifts, every recurrent layer's WKV, the token ids. */
    private static void assertStateMatches(
            SafeTensors ref, String prefix, SequenceState state, ModelConfig c, String what) {
        if (c.architecture().hasGold()) { // only GoldFinch's reference state keeps the ids (its TokenCat reads them)
            assertArrayEquals(
                    Golden.ids(ref.get(prefix + ".input_tokens_cache")), state.tokens(), what + ": token ids");
        }
        for (int l = 0; l < c.nLayer(); l++) {
            String block = prefix + ".blocks." + l;
            assertClose(
                    ref.get(block + ".att.shift_state").toFloats(),
                    state.attShift(l),
                    what + ": block " + l + " att shift");
            assertClose(
                    ref.get(block + ".ffn.shift_state").toFloats(),
                    state.ffnShift(l),
                    what + ": block " + l + " ffn shift");
            if (!c.isGold(l)) {
                assertClose(
                        ref.get(block + ".att.wkv_state").toFloats(),
                        Golden.wkvInReferenceLayout(state.wkv(l), c.nHead(), c.headSize()),
                        what + ": block " + l + " wkv");
            }
        }
    }
}
