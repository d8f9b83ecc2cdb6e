package dev.goldfinch.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * A model whose vocabulary is the 256 bytes (RWKV-7, as rwkv.cpp's tiny models) served by the whole mesh: the
 * gateway learns the vocabulary size from prefill and reads the prompt byte by byte, so a prompt costs one token
 * per UTF-8 byte and every generated id is a byte.
 */
class ByteModelMeshEndToEndTest {
    static final Path TINY_RWKV7 = Path.of(
            System.getProperty("goldfinch.shared.dir", "../shared"),
            "golden",
            "rwkv-family-tiny",
            "tiny-rwkv-7v0-834K.safetensors");

    /** Random weights of a byte-level RWKV-7: needs nothing outside the repository. */
    @Test
    void randomByteLevelRwkv7AnswersChatAndCompletions() throws Exception {
        serveAndAsk(null, "layers=2,width=64,head=32,vocab=256,arch=rwkv7");
    }

    /** rwkv.cpp's trained tiny RWKV-7 ({@code serve --model} on it is what the issue asks for). */
    @Test
    void trainedTinyRwkv7AnswersChatAndCompletions() throws Exception {
        assumeTrue(Files.isRegularFile(TINY_RWKV7), "no " + TINY_RWKV7 + " (other projects' files)");
        String text = serveAndAsk(TINY_RWKV7, null);
        // Trained on English: greedy decoding writes letters and spaces, not the byte soup of random weights.
        long letters =
                text.chars().filter(c -> Character.isLetter(c) || c == ' ').count();
        assertTrue(letters >= text.length() * 0.7, "mostly letters: '" + text + "'");
    }

    /** Starts the mesh on the model, sends a chat and a completion over HTTP; returns the completion's text. */
    private static String serveAndAsk(Path model, String shape) throws Exception {
        try (MeshLauncher mesh = MeshLauncher.start(new MeshLauncher.Options(
                        model,
                        shape,
                        5,
                        "f32",
                        null, // chosen by the gateway from the model: the bytes
                        null,
                        1,
                        0,
                        0,
                        512,
                        64,
                        null,
                        Map.of("logging.level.root", "WARN")));
                MeshClient client = new MeshClient(mesh.httpPort("gateway"), mesh.grpcPort("gateway"))) {
            String question = "Où est le chat?"; // "Où" is 3 bytes, 2 characters
            MeshClient.Generation chat = client.complete(
                    "/v1/chat/completions",
                    Map.of(
                            "messages", List.of(Map.of("role", "user", "content", question)),
                            "max_tokens", 24,
                            "temperature", 0));
            String prompt = "User: " + question + "\n\nAssistant:";
            assertEquals(
                    prompt.getBytes(StandardCharsets.UTF_8).length,
                    chat.promptTokens(),
                    "one token per byte of the chat prompt");
            assertTrue(!chat.finishReason().isEmpty(), "a finish reason");

            String start = "The cat sat on the";
            MeshClient.Generation completion = client.complete(
                    "/v1/completions",
                    Map.of("prompt", start, "max_tokens", 24, "temperature", 0, "return_token_ids", true));
            assertEquals(start.length(), completion.promptTokens(), "one token per byte of an ASCII prompt");
            assertTrue(
                    List.of("length", "stop").contains(completion.finishReason())
                            && completion.tokens().size() <= 24,
                    "24 tokens at most, or fewer and the end of text (byte 0): " + completion);
            if (!completion.tokens().isEmpty()) { // the ids, when the API returns them, are the text's bytes
                byte[] bytes = new byte[completion.tokens().size()];
                for (int i = 0; i < bytes.length; i++) {
                    int id = completion.tokens().get(i);
                    assertTrue(id > 0 && id < 256, "a byte: " + id);
                    bytes[i] = (byte) id;
                }
                assertEquals(new String(bytes, StandardCharsets.UTF_8), completion.text());
            }
            return completion.text();
        }
    }
}
