package dev.goldfinch.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.goldfinch.error.FailureKind;
import dev.goldfinch.error.TypedFailure;
import dev.goldfinch.proto.internal.v1.DescribeModelRequest;
import dev.goldfinch.proto.internal.v1.PrefillGrpc;
import dev.goldfinch.proto.internal.v1.PrefillRequest;
import dev.goldfinch.proto.internal.v1.PrefillResponse;
import dev.goldfinch.proto.v1.ChatMessage;
import dev.goldfinch.proto.v1.ChatMessages;
import dev.goldfinch.proto.v1.FinishReason;
import dev.goldfinch.proto.v1.GenerateRequest;
import dev.goldfinch.proto.v1.GenerateResponse;
import dev.goldfinch.proto.v1.ModelInfo;
import dev.goldfinch.proto.v1.SamplingParams;
import dev.goldfinch.proto.v1.TokenizeRequest;
import dev.goldfinch.service.ErrorTable;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The public gRPC Generation service of the gateway, over grpc-java's in-process transport. */
class GenerationGrpcServiceTest {
    /**
     * A service that fails the way bugs and typed failures do, served by the gateway's own gRPC server: it
     * shows the error handler every service gets from service-common is registered and applied.
     */
    static final class Failing extends PrefillGrpc.PrefillImplBase {
        @Override
        public void prefill(PrefillRequest request, StreamObserver<PrefillResponse> response) {
            throw new IllegalStateException("secret=s3cr3t: a bug's text");
        }

        @Override
        public void describeModel(DescribeModelRequest request, StreamObserver<ModelInfo> response) {
            Thread.ofVirtual().start(() -> response.onError(new TypedFailure(FailureKind.NOT_FOUND, "no such entry")));
        }
    }

    private static GatewayFixture mesh;

    @BeforeAll
    static void start() throws Exception {
        mesh = new GatewayFixture(Map.of(), new Failing());
    }

    @AfterAll
    static void stop() {
        mesh.close();
    }

    @BeforeEach
    void reset() {
        mesh.reset();
    }

    private static GenerateRequest prompt(String text, SamplingParams.Builder sampling) {
        return GenerateRequest.newBuilder()
                .setPromptUtf8(ByteString.copyFromUtf8(text))
                .setSampling(sampling)
                .setCacheSalt(java.util.UUID.randomUUID().toString())
                .build(); // no replica affinity from another test
    }

    private static List<GenerateResponse> generate(GenerateRequest request) {
        List<GenerateResponse> out = new ArrayList<>();
        Iterator<GenerateResponse> it = mesh.generation().generate(request);
        it.forEachRemaining(out::add);
        return out;
    }

    @Test
    void eachBadFieldIsInvalidArgumentNamingIt() {
        List<Map.Entry<String, GenerateRequest>> cases = new ArrayList<>();
        cases.add(Map.entry("prompt_utf8", GenerateRequest.getDefaultInstance()));
        cases.add(Map.entry(
                "prompt_utf8",
                GenerateRequest.newBuilder()
                        .setPromptUtf8(ByteString.copyFrom(new byte[] {'a', (byte) 0xff}))
                        .build()));
        cases.add(Map.entry("prompt", prompt("", SamplingParams.newBuilder())));
        cases.add(Map.entry(
                "max_tokens", prompt("Hello", SamplingParams.newBuilder().setMaxTokens(17))));
        cases.add(Map.entry("top_p", prompt("Hello", SamplingParams.newBuilder().setTopP(0))));
        cases.add(Map.entry(
                "temperature", prompt("Hello", SamplingParams.newBuilder().setTemperature(-1))));
        cases.add(Map.entry(
                "chat",
                GenerateRequest.newBuilder()
                        .setChat(ChatMessages.newBuilder()
                                .addMessages(ChatMessage.newBuilder()
                                        .setRole("user")
                                        .setContentUtf8(ByteString.copyFromUtf8("x".repeat(30)))))
                        .build()));
        cases.add(Map.entry(
                "messages[0].role",
                GenerateRequest.newBuilder()
                        .setChat(ChatMessages.newBuilder()
                                .addMessages(ChatMessage.newBuilder()
                                        .setRole("robot")
                                        .setContentUtf8(ByteString.copyFromUtf8("Hi"))))
                        .build()));
        for (Map.Entry<String, GenerateRequest> c : cases) {
            StatusRuntimeException e =
                    assertThrows(StatusRuntimeException.class, () -> generate(c.getValue()), c.getKey());
            assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode(), c.getKey());
            assertEquals(c.getKey(), e.getTrailers().get(ErrorTable.PARAM), c.getKey() + ": " + e.getStatus());
        }
        // A model the gateway does not serve is NOT_FOUND, still naming the field.
        StatusRuntimeException unknown = assertThrows(
                StatusRuntimeException.class,
                () -> generate(prompt("Hello", SamplingParams.newBuilder()).toBuilder()
                        .setModel("gpt-17")
                        .build()));
        assertEquals(Status.Code.NOT_FOUND, unknown.getStatus().getCode());
        assertEquals("model", unknown.getTrailers().get(ErrorTable.PARAM));
        assertEquals("MODEL_NOT_FOUND", unknown.getTrailers().get(ErrorTable.KIND));
        assertTrue(mesh.prefill.requests.isEmpty());
    }

    @Test
    void aGenerationStreamsTextThenTheFinishAndUsage() {
        mesh.decodeA.scripts.add(
                FakeDecode.finish(FinishReason.FINISH_REASON_LENGTH, TestVocab.HELLO, TestVocab.WORLD, TestVocab.MORE));
        List<GenerateResponse> out =
                generate(prompt("Hello", SamplingParams.newBuilder().setMaxTokens(3)));
        StringBuilder text = new StringBuilder();
        List<Integer> ids = new ArrayList<>();
        out.forEach(r -> {
            text.append(r.getText());
            ids.addAll(r.getTokenIdsList());
        });
        assertEquals("Hello world more", text.toString());
        assertEquals(List.of(TestVocab.HELLO, TestVocab.WORLD, TestVocab.MORE), ids);
        GenerateResponse last = out.getLast();
        assertEquals(FinishReason.FINISH_REASON_LENGTH, last.getFinishReason());
        assertEquals(1, last.getUsage().getPromptTokens(), "'Hello' is one token of the test vocabulary");
        assertEquals(3, last.getUsage().getCompletionTokens());
        assertEquals(List.of(TestVocab.HELLO), mesh.prefill.requests.getFirst().getTokensList());
    }

    @Test
    void tokenizeCountsWithTheGatewaysVocabulary() {
        TokenizeRequest r = TokenizeRequest.newBuilder()
                .setTextUtf8(ByteString.copyFromUtf8("Hello world!"))
                .build();
        assertEquals(
                List.of(TestVocab.HELLO, TestVocab.WORLD, TestVocab.ofByte('!')),
                mesh.generation().tokenize(r).getTokenIdsList());
        assertEquals(3, mesh.generation().countTokens(r).getTokenCount());
    }

    @Test
    void anExceptionThrownByAServiceIsInternalWithOnlyAnId() {
        var failing = PrefillGrpc.newBlockingStub(mesh.gatewayChannel());
        StatusRuntimeException e =
                assertThrows(StatusRuntimeException.class, () -> failing.prefill(PrefillRequest.getDefaultInstance()));
        assertEquals(Status.Code.INTERNAL, e.getStatus().getCode());
        assertTrue(
                e.getStatus().getDescription().matches("internal error, id [0-9a-f]{16}"),
                e.getStatus().getDescription());
        assertFalse(e.toString().contains("s3cr3t"));
    }

    @Test
    void aTypedFailureHandedToOnErrorGetsItsStatus() {
        var failing = PrefillGrpc.newBlockingStub(mesh.gatewayChannel());
        StatusRuntimeException e = assertThrows(
                StatusRuntimeException.class, () -> failing.describeModel(DescribeModelRequest.getDefaultInstance()));
        assertEquals(Status.Code.NOT_FOUND, e.getStatus().getCode());
        assertEquals("no such entry", e.getStatus().getDescription());
    }
}
