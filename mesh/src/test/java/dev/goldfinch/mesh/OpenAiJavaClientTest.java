package dev.goldfinch.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.JsonValue;
import com.openai.core.http.StreamResponse;
import com.openai.models.FunctionDefinition;
import com.openai.models.FunctionParameters;
import com.openai.models.ResponseFormatJsonSchema;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.chat.completions.ChatCompletionFunctionTool;
import com.openai.models.chat.completions.ChatCompletionMessageToolCall;
import com.openai.models.chat.completions.ChatCompletionToolChoiceOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import tools.jackson.databind.JsonNode;

/** The official openai-java SDK, response validation on, against a mesh this test starts. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class OpenAiJavaClientTest {
    static final Map<String, Object> PERSON = Map.of(
            "type",
            "object",
            "properties",
            Map.of(
                    "name", Map.of("type", "string", "maxLength", 10),
                    "age", Map.of("type", "integer", "minimum", 0, "maximum", 120)),
            "required",
            List.of("name", "age"),
            "additionalProperties",
            false);

    MeshLauncher mesh;
    OpenAIClient client;

    @BeforeAll
    void start() {
        mesh = MeshLauncher.start(new MeshLauncher.Options(
                null,
                MeshEndToEndTest.SHAPE,
                7,
                "f32",
                null,
                null,
                1,
                0,
                0,
                MeshEndToEndTest.MAX_PROMPT,
                MeshEndToEndTest.CAP,
                null,
                Map.of("logging.level.root", "WARN")));
        client = OpenAIOkHttpClient.builder()
                .baseUrl("http://127.0.0.1:" + mesh.httpPort("gateway") + "/v1")
                .apiKey("not-needed")
                .responseValidation(true)
                .build();
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

    static ChatCompletionCreateParams.Builder ask(String question) {
        return ChatCompletionCreateParams.builder()
                .model("goldfinch")
                .addUserMessage(question)
                .seed(5)
                .maxCompletionTokens(120);
    }

    static ResponseFormatJsonSchema personFormat() {
        ResponseFormatJsonSchema.JsonSchema.Schema.Builder schema =
                ResponseFormatJsonSchema.JsonSchema.Schema.builder();
        PERSON.forEach((k, v) -> schema.putAdditionalProperty(k, JsonValue.from(v)));
        return ResponseFormatJsonSchema.builder()
                .jsonSchema(ResponseFormatJsonSchema.JsonSchema.builder()
                        .name("person")
                        .schema(schema.build())
                        .strict(true)
                        .build())
                .build();
    }

    static void assertPerson(String json) {
        JsonNode p = MeshClient.JSON.readTree(json);
        assertTrue(
                p.get("name").isString()
                        && p.get("name")
                                        .asString()
                                        .codePointCount(
                                                0, p.get("name").asString().length())
                                <= 10,
                json);
        assertTrue(
                p.get("age").isInt()
                        && p.get("age").asInt() >= 0
                        && p.get("age").asInt() <= 120,
                json);
        assertEquals(2, p.size(), json);
    }

    @Test
    void jsonSchemaResponsesStreamedAndNot() {
        ChatCompletion done = client.chat()
                .completions()
                .create(ask("Who is Ada?").responseFormat(personFormat()).build());
        assertEquals(
                ChatCompletion.Choice.FinishReason.STOP,
                done.choices().getFirst().finishReason());
        assertPerson(done.choices().getFirst().message().content().orElseThrow());

        StringBuilder text = new StringBuilder();
        try (StreamResponse<ChatCompletionChunk> s = client.chat()
                .completions()
                .createStreaming(
                        ask("Who is Ada?").responseFormat(personFormat()).build())) {
            s.stream()
                    .forEach(c -> c.choices().forEach(ch -> ch.delta().content().ifPresent(text::append)));
        }
        assertEquals(
                done.choices().getFirst().message().content().orElseThrow(), text.toString(), "same seed, same answer");
    }

    @Test
    void toolCallsStreamedAndNot() {
        FunctionParameters.Builder params = FunctionParameters.builder();
        PERSON.forEach((k, v) -> params.putAdditionalProperty(k, JsonValue.from(v)));
        ChatCompletionFunctionTool tool = ChatCompletionFunctionTool.builder()
                .function(FunctionDefinition.builder()
                        .name("save_person")
                        .description("Stores a person")
                        .parameters(params.build())
                        .build())
                .build();
        ChatCompletionCreateParams request = ask("Save Ada, 36.")
                .addTool(tool)
                .toolChoice(ChatCompletionToolChoiceOption.Auto.REQUIRED)
                .parallelToolCalls(false)
                .build();
        ChatCompletion done = client.chat().completions().create(request);
        ChatCompletion.Choice choice = done.choices().getFirst();
        assertEquals(ChatCompletion.Choice.FinishReason.TOOL_CALLS, choice.finishReason());
        List<ChatCompletionMessageToolCall> calls = choice.message().toolCalls().orElseThrow();
        assertEquals(1, calls.size());
        assertEquals("save_person", calls.getFirst().asFunction().function().name());
        assertPerson(calls.getFirst().asFunction().function().arguments());
        assertTrue(calls.getFirst().asFunction().id().startsWith("call_"));

        List<ChatCompletionChunk.Choice.Delta.ToolCall> streamed = new ArrayList<>();
        List<ChatCompletionChunk.Choice.FinishReason> finishes = new ArrayList<>();
        try (StreamResponse<ChatCompletionChunk> s = client.chat().completions().createStreaming(request)) {
            s.stream()
                    .forEach(c -> c.choices().forEach(ch -> {
                        ch.delta().toolCalls().ifPresent(streamed::addAll);
                        ch.finishReason().ifPresent(finishes::add);
                    }));
        }
        assertEquals(List.of(ChatCompletionChunk.Choice.FinishReason.TOOL_CALLS), finishes);
        assertEquals(1, streamed.size());
        assertEquals(
                "save_person",
                streamed.getFirst().function().orElseThrow().name().orElseThrow());
        assertPerson(streamed.getFirst().function().orElseThrow().arguments().orElseThrow());
    }
}
