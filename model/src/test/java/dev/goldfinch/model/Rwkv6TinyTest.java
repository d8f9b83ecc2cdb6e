package dev.goldfinch.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.model.state.SequenceState;
import dev.goldfinch.model.state.StateCodec;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.ObjectMapper;

/**
 * rwkv.cpp's trained tiny RWKV-6 (head size 8, byte vocabulary) against rwkv.cpp's expected logits and
 * float64 golden logits. Other projects' files: read from ../shared, skipped where it is absent.
 */
class Rwkv6TinyTest {
    static float[] rawFloats(Path p) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(p)).order(ByteOrder.LITTLE_ENDIAN);
        float[] f = new float[b.remaining() / 4];
        b.asFloatBuffer().get(f);
        return f;
    }

    static int[] ids(Path dir, String field) throws IOException {
        return new ObjectMapper()
                .readTree(dir.resolve("tokens.json").toFile())
                .get(field)
                .valueStream()
                .mapToInt(n -> n.asInt())
                .toArray();
    }

    @Test
    void longTextMatchesGoldenAtAll75Positions() throws IOException {
        Path dir = Golden.shared("rwkv6-tiny");
        try (GoldFinchModel m = ModelLoader.load(dir.resolve("tiny-rwkv-6v0-1m.safetensors"))) {
            assertEquals(Architecture.FINCH, m.config().architecture());
            assertEquals(8, m.config().headSize());
            int[] toks = ids(dir, "long_tokens");
            assertEquals(75, toks.length);
            float[] want = rawFloats(dir.resolve("golden-logits-6v0-1m-long.f32"));
            float[] parallel = m.forward(List.of(new GoldFinchModel.Segment(m.newState(), toks, 0)))[0];
            assertTrue(
                    Golden.maxAbsDiff(parallel, want) <= 1e-4f,
                    "parallel pass differs by " + Golden.maxAbsDiff(parallel, want));

            // Serial decoding through a serialized state, as rwkv.cpp's serial mode does.
            SequenceState s = m.newState();
            int v = m.config().vocabSize();
            for (int t = 0; t < toks.length; t++) {
                float[] got = m.step(s, toks[t]);
                float d = Golden.maxAbsDiff(got, Arrays.copyOfRange(want, t * v, (t + 1) * v));
                assertTrue(d <= 1e-4f, "serial step " + t + " differs by " + d);
                s = StateCodec.decode(StateCodec.encode(s, StateCodec.FloatType.F32, 0), m.config(), m.fingerprint());
            }

            // The state after 75 tokens, in rwkv.cpp's layout: per layer ffn_x[C], att_x[C], wkv[H][key][value].
            float[] wantState = rawFloats(dir.resolve("golden-state-6v0-1m-long.f32"));
            int c = m.config().nEmbd();
            int per = 2 * c + c * m.config().headSize();
            float maxRel = 0;
            for (int l = 0; l < m.config().nLayer(); l++) {
                float[] got = new float[per];
                System.arraycopy(s.ffnShift(l), 0, got, 0, c);
                System.arraycopy(s.attShift(l), 0, got, c, c);
                System.arraycopy(s.wkv(l), 0, got, 2 * c, c * m.config().headSize());
                for (int i = 0; i < per; i++) {
                    float w = wantState[l * per + i];
                    maxRel = Math.max(maxRel, Math.abs(got[i] - w) / Math.max(1f, Math.abs(w)));
                }
            }
            assertTrue(maxRel <= 1e-4f, "state differs by " + maxRel + " (relative)");
        }
    }

    @Test
    void quoteInMatchesRwkvCppExpectedLogits() throws IOException {
        Path dir = Golden.shared("rwkv6-tiny");
        try (GoldFinchModel m = ModelLoader.load(dir.resolve("tiny-rwkv-6v0-1m.safetensors"))) {
            int[] toks = ids(dir, "quote_in_tokens");
            float[] expected = rawFloats(dir.resolve("expected-logits-6v0-1m.bin"));
            float[] got = m.prefill(m.newState(), toks);
            float d = Golden.maxAbsDiff(got, expected);
            assertTrue(d <= 1e-4f, "logits after \"in differ from rwkv.cpp's by " + d);
        }
    }
}
