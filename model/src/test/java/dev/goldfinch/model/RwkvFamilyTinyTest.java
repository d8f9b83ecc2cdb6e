package dev.goldfinch.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.model.state.SequenceState;
import dev.goldfinch.model.state.StateCodec;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * rwkv.cpp's trained tiny RWKV-5.1, 5.2 and 7 (12 layers, width 64, byte vocabulary) under RWKV-LM's tensor names,
 * against rwkv.cpp's logits after every byte of {@code text.txt} and its state after the last, through every path of
 * the forward pass. Other projects' files: read from ../shared, skipped where it is absent.
 */
class RwkvFamilyTinyTest {
    private static final float TOLERANCE = 1e-4f;

    private static int[] textBytes(Path dir) throws IOException {
        byte[] text = Files.readAllBytes(dir.resolve("text.txt"));
        int[] ids = new int[text.length];
        for (int i = 0; i < text.length; i++) {
            ids[i] = text[i] & 0xff;
        }
        return ids;
    }

    private static float[] rows(float[] all, int from, int to, int v) {
        return Arrays.copyOfRange(all, from * v, to * v);
    }

    @ParameterizedTest
    @CsvSource({"5v1-730K, RWKV5_1, 8", "5v2-730K, RWKV5_2, 8", "7v0-834K, RWKV7, 64"})
    void everyPositionOfTheTextMatchesRwkvCppThroughEveryPath(String name, Architecture arch, int headSize)
            throws IOException {
        Path dir = Golden.shared("rwkv-family-tiny");
        try (GoldFinchModel m = ModelLoader.load(dir.resolve("tiny-rwkv-" + name + ".safetensors"))) {
            assertEquals(arch, m.config().architecture());
            assertEquals(headSize, m.config().headSize());
            assertEquals(12, m.config().nLayer());
            int v = m.config().vocabSize();
            int[] toks = textBytes(dir);
            float[] want = Rwkv6TinyTest.rawFloats(dir.resolve("logits-" + name + ".f32"));
            assertEquals(toks.length * v, want.length);

            // One pass over the whole text.
            float[] onePass = m.forward(List.of(new GoldFinchModel.Segment(m.newState(), toks, 0)))[0];
            assertWithin(want, onePass, name + " one pass");

            // A prefill, then the state serialized and restored before every single step.
            int split = 100;
            SequenceState s = m.newState();
            float[] head = m.forward(List.of(new GoldFinchModel.Segment(s, Arrays.copyOf(toks, split), 0)))[0];
            assertWithin(rows(want, 0, split, v), head, name + " prefill");
            for (int t = split; t < toks.length; t++) {
                s = StateCodec.decode(StateCodec.encode(s, StateCodec.FloatType.F32, 0), m.config(), m.fingerprint());
                assertWithin(rows(want, t, t + 1, v), m.step(s, toks[t]), name + " step " + t);
            }
            assertStateMatches(dir.resolve("state-" + name + ".f32"), m.config(), s, name);

            // Chunks of uneven length, each continuing the last one's state.
            SequenceState chunked = m.newState();
            List<float[]> parts = new ArrayList<>();
            int at = 0;
            for (int len = 1; at < toks.length; len = len * 2 + 1) {
                int end = Math.min(toks.length, at + len);
                parts.add(m.forward(List.of(new GoldFinchModel.Segment(chunked, Arrays.copyOfRange(toks, at, end), 0)))[
                        0]);
                at = end;
            }
            float[] joined = new float[want.length];
            int o = 0;
            for (float[] p : parts) {
                System.arraycopy(p, 0, joined, o, p.length);
                o += p.length;
            }
            assertWithin(want, joined, name + " chunked");

            // Batched decode: three sequences at different offsets, one token each per step.
            int[] offsets = {0, 17, 40};
            SequenceState[] states = new SequenceState[offsets.length];
            for (int i = 0; i < offsets.length; i++) {
                states[i] = m.newState();
                if (offsets[i] > 0) {
                    m.prefill(states[i], Arrays.copyOf(toks, offsets[i]));
                }
            }
            for (int step = 0; step < 30; step++) {
                List<GoldFinchModel.Segment> segs = new ArrayList<>();
                for (int i = 0; i < offsets.length; i++) {
                    segs.add(GoldFinchModel.Segment.lastLogits(states[i], new int[] {toks[offsets[i] + step]}));
                }
                float[][] got = m.forward(segs);
                for (int i = 0; i < offsets.length; i++) {
                    int t = offsets[i] + step;
                    assertWithin(rows(want, t, t + 1, v), got[i], name + " batched row " + t);
                }
            }
        }
    }

    @ParameterizedTest
    @CsvSource({"5v1-730K", "5v2-730K", "7v0-834K"})
    void quoteInMatchesRwkvCppExpectedLogits(String name) throws IOException {
        Path dir = Golden.shared("rwkv-family-tiny");
        try (GoldFinchModel m = ModelLoader.load(dir.resolve("tiny-rwkv-" + name + ".safetensors"))) {
            float[] expected = Rwkv6TinyTest.rawFloats(dir.resolve("expected-logits-" + name + ".bin"));
            float[] got = m.prefill(m.newState(), new int[] {'"', 'i', 'n'});
            assertWithin(expected, got, name + " after \"in");
        }
    }

    @org.junit.jupiter.api.Test
    void greedyGenerationFromTheTinyRwkv7IsEnglishWordsThroughTheByteTokenizer() throws IOException {
        Path dir = Golden.shared("rwkv-family-tiny");
        Path file = dir.resolve("tiny-rwkv-7v0-834K.safetensors");
        try (GoldFinchModel m = ModelLoader.load(file)) {
            var tok = dev.goldfinch.model.tokenizer.WorldTokenizer.forModel(
                    null, file, m.config().vocabSize());
            assertEquals(256, tok.vocabSize());
            SequenceState s = m.newState();
            float[] logits = m.prefill(s, tok.encode("In the beginning"));
            int[] out = new int[120];
            for (int i = 0; i < out.length; i++) {
                int best = 0;
                for (int t = 1; t < logits.length; t++) {
                    best = logits[t] > logits[best] ? t : best;
                }
                out[i] = best;
                logits = m.step(s, best);
            }
            String text = tok.decode(out);
            assertTrue(text.matches("[a-z ]+"), "greedy text is lower-case words: " + text);
            assertTrue(text.contains(" the "), text);
        }
    }

    /**
     * rwkv.cpp's state: per layer {@code [ffn shift C][att shift C][wkv heads × N × N]}, the WKV as ours ({@code [head][key
     * j][value i]}) for RWKV-5, transposed ({@code [head][value i][key j]}) for RWKV-7.
     */
    private static void assertStateMatches(Path file, ModelConfig c, SequenceState s, String name) throws IOException {
        float[] want = Rwkv6TinyTest.rawFloats(file);
        int e = c.nEmbd();
        int wkv = c.nHead() * c.headSize() * c.headSize();
        int per = 2 * e + wkv;
        assertEquals(c.nLayer() * per, want.length);
        float[] got = new float[want.length];
        for (int l = 0; l < c.nLayer(); l++) {
            System.arraycopy(s.ffnShift(l), 0, got, l * per, e);
            System.arraycopy(s.attShift(l), 0, got, l * per + e, e);
            float[] mine = c.architecture() == Architecture.RWKV7
                    ? Golden.wkvInReferenceLayout(s.wkv(l), c.nHead(), c.headSize())
                    : s.wkv(l);
            System.arraycopy(mine, 0, got, l * per + 2 * e, wkv);
        }
        Golden.assertClose(want, got, name + " state after the text");
    }

    private static void assertWithin(float[] want, float[] got, String what) {
        float d = Golden.maxAbsDiff(got, want);
        assertTrue(d <= TOLERANCE, what + " differs from rwkv.cpp's logits by " + d);
    }
}
