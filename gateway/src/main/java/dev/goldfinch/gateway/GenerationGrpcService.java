package dev.goldfinch.gateway;

import dev.goldfinch.error.FailureKind;
import dev.goldfinch.error.TypedFailure;
import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.constrain.JsonGrammars;
import dev.goldfinch.model.sampling.SamplingParams;
import dev.goldfinch.proto.v1.ChatMessage;
import dev.goldfinch.proto.v1.CountTokensResponse;
import dev.goldfinch.proto.v1.FinishReason;
import dev.goldfinch.proto.v1.GenerateRequest;
import dev.goldfinch.proto.v1.GenerateResponse;
import dev.goldfinch.proto.v1.GenerationGrpc;
import dev.goldfinch.proto.v1.ListModelsRequest;
import dev.goldfinch.proto.v1.ListModelsResponse;
import dev.goldfinch.proto.v1.ModelInfo;
import dev.goldfinch.proto.v1.TokenLogprob;
import dev.goldfinch.proto.v1.TokenizeRequest;
import dev.goldfinch.proto.v1.TokenizeResponse;
import dev.goldfinch.proto.v1.Usage;
import dev.goldfinch.service.GrpcErrors;
import dev.goldfinch.service.JsonSpecs;
import dev.goldfinch.service.SamplingMapper;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/** The public {@code goldfinch.v1.Generation} service. */
public final class GenerationGrpcService extends GenerationGrpc.GenerationImplBase {
    private final PromptBuilder prompts;
    private final ModelCatalog models;
    private final GenerationPipeline pipeline;
    private final JsonGrammars grammars;

    public GenerationGrpcService(
            PromptBuilder prompts, ModelCatalog models, GenerationPipeline pipeline, JsonGrammars grammars) {
        this.prompts = prompts;
        this.models = models;
        this.pipeline = pipeline;
        this.grammars = grammars;
    }

    static List<PromptBuilder.Message> messages(List<ChatMessage> chat) {
        List<PromptBuilder.Message> out = new ArrayList<>();
        for (int i = 0; i < chat.size(); i++) {
            out.add(new PromptBuilder.Message(
                    chat.get(i).getRole(),
                    PromptBuilder.utf8(
                            chat.get(i).getContentUtf8().toByteArray(), "chat.messages[" + i + "].content_utf8")));
        }
        return out;
    }

    /** The prompt's bytes as sent, for the bound checked before tokenizing. */
    private static long promptBytes(boolean chat, List<ChatMessage> messages, com.google.protobuf.ByteString text) {
        return chat
                ? messages.stream().mapToLong(m -> m.getContentUtf8().size()).sum()
                : text.size();
    }

    private int[] tokens(boolean chat, List<ChatMessage> messages, byte[] text) {
        return chat ? prompts.chat(messages(messages)) : prompts.completion(PromptBuilder.utf8(text, "prompt_utf8"));
    }

    /** The caller's tenant, which {@link ApiKeyGrpcInterceptor} put in the call's context; none: refused. */
    private static String tenant() {
        String tenant = ApiKeys.GRPC_TENANT.get();
        if (tenant == null) {
            throw new TypedFailure(FailureKind.UNAUTHENTICATED, "the call was not authenticated");
        }
        return tenant;
    }

    @Override
    public void generate(GenerateRequest request, StreamObserver<GenerateResponse> response) {
        ServerCallStreamObserver<GenerateResponse> call = (ServerCallStreamObserver<GenerateResponse>) response;
        // Messages written while the client's side was not ready (they wait in gRPC's buffer in this heap).
        AtomicInteger overReady = new AtomicInteger();
        GenerationPipeline.Handle handle;
        try {
            ModelInfo model = models.resolve(request.getModel());
            boolean chat = request.hasChat();
            if (!chat && !request.hasPromptUtf8()) {
                throw new GoldFinchException.InvalidInput("prompt_utf8", "prompt_utf8 or chat is required");
            }
            String promptField = chat ? "chat" : "prompt_utf8";
            prompts.checkBytes(
                    promptBytes(chat, request.getChat().getMessagesList(), request.getPromptUtf8()),
                    model.getMaxPromptTokens(),
                    promptField);
            dev.goldfinch.proto.v1.SamplingParams wire = request.getSampling();
            if (chat) {
                wire = PromptBuilder.withTurnStop(wire);
            }
            SamplingParams params = SamplingMapper.fromProto(wire, model.getMaxTokensCap());
            models.checkLogitBias(params.logitBias(), "sampling.logit_bias");
            // Refused here, before prefill, as the decode replica would refuse it.
            JsonSpecs.of(wire)
                    .ifPresent(spec -> grammars.forRequest(
                            spec, params.maxTokens(), "sampling.json_schema", "sampling.max_tokens"));
            String salt = GenerationPipeline.effectiveSalt(request.getCacheSalt(), request.getSkipPrefixCache());
            String tenant = tenant();
            // Authenticated by the interceptor; the slot is taken before the prompt is tokenized.
            String requestId = RequestIds.choose(
                    request.getRequestId(),
                    "request_id",
                    "gen-" + java.util.UUID.randomUUID().toString().replace("-", ""));
            try (GenerationPipeline.Admission admitted = pipeline.admit(tenant);
                    var identified = pipeline.identify(requestId)) {
                int[] tokens = pipeline.tokenize(() -> tokens(
                        chat,
                        request.getChat().getMessagesList(),
                        request.getPromptUtf8().toByteArray()));
                models.checkPrompt(tokens, promptField);
                handle = pipeline.start(
                        admitted,
                        new GenerationPipeline.Job(
                                tokens,
                                params,
                                wire,
                                tenant,
                                salt,
                                chat,
                                GenerationPipeline.Job.initialState(
                                        request.getInitialState(), ApiKeys.GRPC_INITIAL_STATE.get())),
                        new GenerationPipeline.Listener() {
                            @Override
                            public void onText(
                                    String text, int[] ids, List<TokenLogprob> chosen, List<TokenLogprob> top) {
                                GenerateResponse.Builder b = GenerateResponse.newBuilder()
                                        .setText(text)
                                        .addAllTokenIds(
                                                Arrays.stream(ids).boxed().toList());
                                if (params.logprobs() > 0) {
                                    b.addAllChosenLogprobs(chosen).addAllTopLogprobs(top);
                                }
                                call.onNext(b.build());
                                if (!call.isReady()) {
                                    overReady.incrementAndGet();
                                    pipeline.buffered(1);
                                }
                            }

                            @Override
                            public boolean ready() {
                                return call.isReady();
                            }

                            @Override
                            public void onFinish(FinishReason reason, Usage usage) {
                                call.onNext(GenerateResponse.newBuilder()
                                        .setFinishReason(reason)
                                        .setUsage(usage)
                                        .build());
                                call.onCompleted();
                            }

                            @Override
                            public void onError(StatusRuntimeException error) {
                                call.onError(error);
                            }
                        });
            }
        } catch (RuntimeException e) {
            response.onError(GrpcErrors.toStatus(e));
            return;
        }
        call.setOnReadyHandler(() -> {
            pipeline.buffered(-overReady.getAndSet(0));
            handle.onReady();
        });
        call.setOnCancelHandler(() -> {
            pipeline.buffered(-overReady.getAndSet(0));
            handle.cancel();
        });
        call.setOnCloseHandler(() -> pipeline.buffered(-overReady.getAndSet(0)));
    }

    @Override
    public void tokenize(TokenizeRequest request, StreamObserver<TokenizeResponse> response) {
        try {
            ModelInfo model = models.resolve(request.getModel());
            prompts.checkBytes(
                    promptBytes(request.hasChat(), request.getChat().getMessagesList(), request.getTextUtf8()),
                    model.getMaxPromptTokens(),
                    request.hasChat() ? "chat" : "text_utf8");
            int[] ids = tokens(
                    request.hasChat(),
                    request.getChat().getMessagesList(),
                    request.getTextUtf8().toByteArray());
            response.onNext(TokenizeResponse.newBuilder()
                    .addAllTokenIds(Arrays.stream(ids).boxed().toList())
                    .build());
            response.onCompleted();
        } catch (RuntimeException e) {
            response.onError(GrpcErrors.toStatus(e));
        }
    }

    @Override
    public void countTokens(TokenizeRequest request, StreamObserver<CountTokensResponse> response) {
        try {
            ModelInfo model = models.resolve(request.getModel());
            prompts.checkBytes(
                    promptBytes(request.hasChat(), request.getChat().getMessagesList(), request.getTextUtf8()),
                    model.getMaxPromptTokens(),
                    request.hasChat() ? "chat" : "text_utf8");
            int[] ids = tokens(
                    request.hasChat(),
                    request.getChat().getMessagesList(),
                    request.getTextUtf8().toByteArray());
            response.onNext(
                    CountTokensResponse.newBuilder().setTokenCount(ids.length).build());
            response.onCompleted();
        } catch (RuntimeException e) {
            response.onError(GrpcErrors.toStatus(e));
        }
    }

    @Override
    public void listModels(ListModelsRequest request, StreamObserver<ListModelsResponse> response) {
        try {
            response.onNext(
                    ListModelsResponse.newBuilder().addModels(models.info()).build());
            response.onCompleted();
        } catch (RuntimeException e) {
            response.onError(GrpcErrors.toStatus(e));
        }
    }
}
