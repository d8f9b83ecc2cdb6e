package dev.goldfinch.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.model.tokenizer.WorldTokenizer;
import dev.goldfinch.proto.v1.FinishReason;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The gateway's vocabulary against the served model: chosen from it, refused at start when it does not fit. */
class VocabularyFitTest {
    @Test
    void aByteModelGetsTheByteVocabularyUnlessOneIsGiven() {
        assertSame(WorldTokenizer.bytes(), GatewayApplication.vocabulary(null, 256));
        assertSame(WorldTokenizer.world(), GatewayApplication.vocabulary(null, 65536));
        assertSame(WorldTokenizer.world(), GatewayApplication.vocabulary(" world ", 256));
        assertSame(WorldTokenizer.bytes(), GatewayApplication.vocabulary("bytes", 65536));
        assertEquals(
                267,
                GatewayApplication.vocabulary(GatewayFixture.vocab().toString(), 256)
                        .vocabSize());
    }

    @Test
    void aVocabularyWithIdsTheModelLacksIsRefusedAtStart() {
        // The fake model has 300 tokens; the World vocabulary's ids go up to 65529.
        Exception e = assertThrows(
                Exception.class, () -> new GatewayFixture(Map.of("goldfinch.gateway.vocab", "world")).close());
        Throwable root = e;
        while (root.getCause() != null) {
            root = root.getCause();
        }
        String message = root.getMessage();
        assertTrue(
                message.contains("goldfinch.gateway.vocab=world")
                        && message.contains("65529")
                        && message.contains("300 tokens"),
                message);
    }

    @Test
    void aGeneratedTokenOutsideTheVocabularyIsAModelMismatchNotACancellation() throws Exception {
        try (GatewayFixture mesh = new GatewayFixture(Map.of())) {
            mesh.reset();
            // 290 is a token of the fake model (300) that the test vocabulary (267 ids) cannot spell.
            mesh.decodeA.scripts.add(FakeDecode.thenRepeat(TestVocab.WORLD, TestVocab.HELLO, 290));
            GatewayFixture.Reply r = mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello"));
            assertEquals(409, r.status(), r.body().toString());
            var error = r.body().get("error");
            assertEquals(
                    "model_mismatch", error.get("code").asString(), r.body().toString());
            assertTrue(
                    error.get("message").asString().contains("token id 290"),
                    r.body().toString());
            assertTrue(
                    error.get("message").asString().contains("goldfinch.gateway.vocab"),
                    r.body().toString());
            assertNotNull(mesh.decodeA.cancelled.poll(10, TimeUnit.SECONDS), "the decode stream was cancelled");

            mesh.reset();
            mesh.decodeA.scripts.add(FakeDecode.finish(FinishReason.FINISH_REASON_LENGTH, TestVocab.HELLO));
            GatewayFixture.Reply ok = mesh.post("/v1/completions", GatewayFixture.body("prompt", "Hello"));
            assertEquals(200, ok.status(), "the gateway serves on: " + ok.body());
        }
    }
}
