package dev.goldfinch.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.openai.models.chat.completions.ChatCompletionToolChoiceOption;
import dev.goldfinch.proto.v1.FinishReason;
import dev.goldfinch.proto.v1.GenerateRequest;
import dev.goldfinch.proto.v1.GenerateResponse;
import dev.goldfinch.proto.v1.GenerationGrpc;
import dev.goldfinch.proto.v1.SamplingParams;
import dev.langchain4j.agent.tool.Tool;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.model.chat.Capability;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.request.ToolChoice;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.openai.OpenAiChatModel;
import dev.langchain4j.model.openai.OpenAiStreamingChatModel;
import dev.langchain4j.service.AiServices;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.springframework.ai.chat.prompt.Prompt;
import org.springframework.ai.model.tool.ToolCallingManager;
import org.springframework.ai.model.tool.ToolExecutionResult;
import org.springframework.ai.openai.OpenAiChatOptions;
import org.springframework.ai.tool.ToolCallback;
import org.springframework.ai.tool.function.FunctionToolCallback;

/**
 * Clients somebody else wrote, each streaming and not, against a mesh this test starts (random weights): LangChain4j's
 * OpenAI chat models and an {@code AiServices} agent whose {@code @Tool} runs and whose answer is a record, Spring
 * AI's OpenAI chat model with a function callback, and a plain stub of the generated gRPC {@code Generation} service.
 * A random-weight model never chooses a tool on its own: each client forces the first call with
 * {@code tool_choice: required}, as an application that must call a tool does.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class AgentClientsTest {
    MeshLauncher mesh;
    String baseUrl;

    @BeforeAll
    void start() {
        mesh = MeshLauncher.start(MeshEndToEndTest.smallMesh(1, Map.of("logging.level.root", "WARN")));
        baseUrl = "http://127.0.0.1:" + mesh.httpPort("gateway") + "/v1";
    }

    @AfterAll
    void stop() {
        if (mesh != null) {
            mesh.close();
        }
    }

    // ---- LangChain4j ----

    enum Sky {
        CLEAR,
        CLOUDY
    }

    /** What the agent returns: bounded fields, so a random-weight model's constrained answer always ends. */
    record Forecast(boolean umbrella, Sky sky) {}

    interface Forecaster {
        Forecast forecast(String question);
    }

    static final class WeatherTools {
        final List<Long> asked = new CopyOnWriteArrayList<>();

        // A JSON integer without bounds: the model may write any 15-digit one, so the Java type is long.
        @Tool("The temperature in degrees Celsius at a weather station")
        int temperature(long station) {
            asked.add(station);
            return 21;
        }
    }

    OpenAiChatModel.OpenAiChatModelBuilder langChain4j() {
        return OpenAiChatModel.builder()
                .baseUrl(baseUrl)
                .apiKey("not-needed")
                .modelName("goldfinch")
                .seed(5)
                .maxTokens(60);
    }

    @Test
    void langChain4jChatsStreamedAndNot() throws Exception {
        ChatResponse whole = langChain4j()
                .build()
                .chat(ChatRequest.builder()
                        .messages(UserMessage.from("Tell me about the sea."))
                        .build());
        assertNotNull(whole.aiMessage().text());
        assertTrue(whole.tokenUsage().inputTokenCount() > 0, whole.toString());
        assertTrue(
                whole.metadata().id().startsWith("chatcmpl-"), whole.metadata().id());

        List<String> parts = new CopyOnWriteArrayList<>();
        CompletableFuture<ChatResponse> done = new CompletableFuture<>();
        OpenAiStreamingChatModel.builder()
                .baseUrl(baseUrl)
                .apiKey("not-needed")
                .modelName("goldfinch")
                .seed(5)
                .maxTokens(60)
                .build()
                .chat("Tell me about the sea.", new StreamingChatResponseHandler() {
                    @Override
                    public void onPartialResponse(String partial) {
                        parts.add(partial);
                    }

                    @Override
                    public void onCompleteResponse(ChatResponse response) {
                        done.complete(response);
                    }

                    @Override
                    public void onError(Throwable error) {
                        done.completeExceptionally(error);
                    }
                });
        ChatResponse streamed = done.get(5, TimeUnit.MINUTES);
        assertEquals(String.join("", parts), streamed.aiMessage().text());
        // Same seed, same prompt: the stream says what the whole answer said.
        assertEquals(whole.aiMessage().text(), streamed.aiMessage().text());
    }

    @Test
    void langChain4jAgentCallsItsToolAndReturnsARecord() {
        WeatherTools tools = new WeatherTools();
        Forecaster agent = AiServices.builder(Forecaster.class)
                .chatModel(langChain4j()
                        .maxTokens(120)
                        .supportedCapabilities(Capability.RESPONSE_FORMAT_JSON_SCHEMA)
                        .strictJsonSchema(true)
                        .build())
                .tools(tools)
                // The application's policy: look the weather up first (a call is forced), then answer.
                .chatRequestTransformer(request -> {
                    ToolChoice choice =
                            request.messages().getLast() instanceof UserMessage ? ToolChoice.REQUIRED : ToolChoice.NONE;
                    return request.toBuilder()
                            .parameters(request.parameters()
                                    .overrideWith(ChatRequestParameters.builder()
                                            .toolChoice(choice)
                                            .build()))
                            .build();
                })
                .build();
        Forecast forecast = agent.forecast("Do I need an umbrella at station 12 today?");
        assertFalse(tools.asked.isEmpty(), "the @Tool method ran");
        assertNotNull(forecast.sky(), forecast.toString());
    }

    // ---- Spring AI ----

    record StationRequest(int station) {}

    org.springframework.ai.openai.OpenAiChatModel springAi() {
        return org.springframework.ai.openai.OpenAiChatModel.builder()
                .options(OpenAiChatOptions.builder()
                        .baseUrl(baseUrl)
                        .apiKey("not-needed")
                        .model("goldfinch")
                        .seed(5)
                        .maxTokens(60)
                        .build())
                .build();
    }

    @Test
    void springAiChatsStreamedAndNot() {
        org.springframework.ai.openai.OpenAiChatModel chat = springAi();
        org.springframework.ai.chat.model.ChatResponse whole = chat.call(new Prompt("Tell me about the sea."));
        String text = whole.getResult().getOutput().getText();
        assertNotNull(text);
        List<org.springframework.ai.chat.model.ChatResponse> chunks =
                chat.stream(new Prompt("Tell me about the sea.")).collectList().block();
        assertNotNull(chunks);
        StringBuilder streamed = new StringBuilder();
        for (var c : chunks) {
            if (c.getResult() != null && c.getResult().getOutput().getText() != null) {
                streamed.append(c.getResult().getOutput().getText());
            }
        }
        assertEquals(text, streamed.toString());
    }

    @Test
    void springAiFunctionCallbackRuns() {
        AtomicInteger ran = new AtomicInteger();
        ToolCallback temperature = FunctionToolCallback.builder("temperature", (StationRequest r) -> {
                    ran.incrementAndGet();
                    return 21;
                })
                .description("The temperature in degrees Celsius at a weather station")
                .inputType(StationRequest.class)
                .build();
        OpenAiChatOptions forced = OpenAiChatOptions.builder()
                .model("goldfinch")
                .toolCallbacks(temperature)
                .toolChoice(ChatCompletionToolChoiceOption.ofAuto(ChatCompletionToolChoiceOption.Auto.REQUIRED))
                .maxTokens(120)
                .build();
        org.springframework.ai.openai.OpenAiChatModel chat = springAi();
        Prompt ask = new Prompt("How warm is it at station 12?", forced);
        org.springframework.ai.chat.model.ChatResponse call = chat.call(ask);
        assertTrue(call.hasToolCalls(), call.toString());
        ToolExecutionResult executed = ToolCallingManager.builder().build().executeToolCalls(ask, call);
        assertTrue(ran.get() >= 1, "the function callback ran");
        OpenAiChatOptions answer = OpenAiChatOptions.builder()
                .model("goldfinch")
                .toolCallbacks(temperature)
                .toolChoice(ChatCompletionToolChoiceOption.ofAuto(ChatCompletionToolChoiceOption.Auto.NONE))
                .maxTokens(40)
                .build();
        org.springframework.ai.chat.model.ChatResponse after =
                chat.call(new Prompt(executed.conversationHistory(), answer));
        assertFalse(after.hasToolCalls(), after.toString());
    }

    // ---- A plain gRPC stub ----

    @Test
    void aGeneratedGrpcStubStreamedAndNot() throws Exception {
        ManagedChannel channel = ManagedChannelBuilder.forAddress("127.0.0.1", mesh.grpcPort("gateway"))
                .usePlaintext()
                .build();
        try {
            GenerateRequest request = GenerateRequest.newBuilder()
                    .setPromptUtf8(ByteString.copyFromUtf8("The sea is"))
                    .setSampling(SamplingParams.newBuilder().setMaxTokens(12).setSeed(5))
                    .build();
            StringBuilder blocking = new StringBuilder();
            FinishReason finish = FinishReason.FINISH_REASON_UNSPECIFIED;
            Iterator<GenerateResponse> it = GenerationGrpc.newBlockingStub(channel)
                    .withDeadlineAfter(5, TimeUnit.MINUTES)
                    .generate(request);
            while (it.hasNext()) {
                GenerateResponse r = it.next();
                blocking.append(r.getText());
                if (r.hasUsage()) {
                    finish = r.getFinishReason();
                    assertTrue(r.getUsage().getPromptTokens() > 0);
                }
            }
            assertTrue(finish != FinishReason.FINISH_REASON_UNSPECIFIED, "the last message carries the finish");

            List<GenerateResponse> async = new ArrayList<>();
            CompletableFuture<Void> done = new CompletableFuture<>();
            GenerationGrpc.newStub(channel)
                    .withDeadlineAfter(5, TimeUnit.MINUTES)
                    .generate(request, new StreamObserver<>() {
                        @Override
                        public void onNext(GenerateResponse value) {
                            async.add(value);
                        }

                        @Override
                        public void onError(Throwable t) {
                            done.completeExceptionally(t);
                        }

                        @Override
                        public void onCompleted() {
                            done.complete(null);
                        }
                    });
            done.get(5, TimeUnit.MINUTES);
            StringBuilder streamed = new StringBuilder();
            async.forEach(r -> streamed.append(r.getText()));
            assertEquals(blocking.toString(), streamed.toString(), "same seed, same text");
        } finally {
            channel.shutdownNow();
        }
    }
}
