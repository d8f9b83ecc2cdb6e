package dev.goldfinch.decode;

import dev.goldfinch.cache.PrefixHasher;
import dev.goldfinch.error.FailureKind;
import dev.goldfinch.error.TypedFailure;
import dev.goldfinch.model.constrain.JsonGrammar;
import dev.goldfinch.model.constrain.JsonGrammars;
import dev.goldfinch.model.sampling.Sampler;
import dev.goldfinch.model.sampling.SamplingParams;
import dev.goldfinch.proto.internal.v1.DecodeGrpc;
import dev.goldfinch.proto.internal.v1.DecodeRequest;
import dev.goldfinch.proto.internal.v1.DecodeResponse;
import dev.goldfinch.proto.internal.v1.EntryRef;
import dev.goldfinch.proto.v1.FinishReason;
import dev.goldfinch.proto.v1.TokenLogprob;
import dev.goldfinch.service.GrpcErrors;
import dev.goldfinch.service.JsonSpecs;
import dev.goldfinch.service.ModelProperties;
import dev.goldfinch.service.SamplingMapper;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.HexFormat;

/** The Decode gRPC service: validates, then streams the tokens {@link DecodeEngine} samples, honouring flow control. */
public final class DecodeGrpcService extends DecodeGrpc.DecodeImplBase {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(DecodeGrpcService.class);

    private final DecodeEngine engine;
    private final ModelProperties props;
    private final JsonGrammars grammars;

    public DecodeGrpcService(DecodeEngine engine, ModelProperties props, JsonGrammars grammars) {
        this.engine = engine;
        this.props = props;
        this.grammars = grammars;
    }

    @Override
    public void decode(DecodeRequest request, StreamObserver<DecodeResponse> response) {
        DecodeEngine.Request r;
        try {
            r = validate(request);
        } catch (RuntimeException e) {
            response.onError(GrpcErrors.toStatus(e));
            return;
        }
        ServerCallStreamObserver<DecodeResponse> call = (ServerCallStreamObserver<DecodeResponse>) response;
        call.setOnReadyHandler(engine::wake);
        call.setOnCancelHandler(engine::wake);
        TokenSink sink = new TokenSink() {
            @Override
            public boolean isReady() {
                return call.isReady();
            }

            @Override
            public boolean isCancelled() {
                return call.isCancelled();
            }

            @Override
            public void token(Sampler.Sample sample, int generated, FinishReason finish) {
                DecodeResponse.Builder b = DecodeResponse.newBuilder()
                        .setToken(sample.token())
                        .setLogprob(sample.logprob())
                        .setGeneratedTokens(generated);
                for (int i = 0; i < r.params().logprobs() && i < sample.topTokens().length; i++) {
                    b.addTopLogprobs(TokenLogprob.newBuilder()
                            .setToken(sample.topTokens()[i])
                            .setLogprob(sample.topLogprobs()[i]));
                }
                if (finish != null) {
                    b.setFinishReason(finish);
                }
                call.onNext(b.build());
            }

            @Override
            public void complete() {
                call.onCompleted();
            }

            @Override
            public void fail(Throwable error) {
                call.onError(GrpcErrors.toStatus(error));
            }
        };
        LOG.debug(
                "decode: entry of {} tokens, up to {} new",
                r.entryLength(),
                r.params().maxTokens());
        try {
            engine.submit(r, sink).whenComplete((ok, error) -> {
                if (error != null) {
                    call.onError(GrpcErrors.toStatus(error));
                }
            });
        } catch (RuntimeException e) {
            call.onError(GrpcErrors.toStatus(e));
        }
    }

    private DecodeEngine.Request validate(DecodeRequest request) {
        EntryRef e = request.getEntry();
        if (!e.getModel().equals(engine.cache().modelId())) {
            throw new TypedFailure(
                    FailureKind.MODEL_MISMATCH,
                    "entry.model '" + e.getModel() + "' is not the model served here ("
                            + engine.cache().modelId() + ")");
        }
        if (!PrefixHasher.isHex(e.getPrefixHash())) {
            throw TypedFailure.invalidArgument("entry.prefix_hash", "entry.prefix_hash must be 32 hex digits");
        }
        if (Integer.toUnsignedLong(e.getLength()) >= props.maxPromptTokens()) {
            throw TypedFailure.invalidArgument(
                    "entry.length",
                    "entry.length " + Integer.toUnsignedString(e.getLength()) + " exceeds the prompt limit "
                            + props.maxPromptTokens());
        }
        int vocab = engine.model().config().vocabSize();
        if (Integer.toUnsignedLong(request.getLastPromptToken()) >= vocab) {
            throw TypedFailure.invalidArgument(
                    "last_prompt_token",
                    "last_prompt_token " + Integer.toUnsignedString(request.getLastPromptToken())
                            + " is outside the vocabulary [0, " + vocab + ")");
        }
        SamplingParams params = SamplingMapper.fromProto(request.getSampling(), props.maxTokensCap());
        if (request.getResumeTokensCount() >= params.maxTokens()) {
            throw TypedFailure.invalidArgument(
                    "resume_tokens",
                    request.getResumeTokensCount() + " resume_tokens leave nothing to generate under max_tokens "
                            + params.maxTokens());
        }
        int[] resume = new int[request.getResumeTokensCount()];
        for (int i = 0; i < resume.length; i++) {
            int token = request.getResumeTokens(i);
            if (Integer.toUnsignedLong(token) >= vocab) {
                throw TypedFailure.invalidArgument(
                        "resume_tokens",
                        "resume_tokens[" + i + "] " + Integer.toUnsignedString(token)
                                + " is outside the vocabulary [0, " + vocab + ")");
            }
            resume[i] = token;
        }
        JsonGrammar grammar = JsonSpecs.of(request.getSampling())
                .map(spec ->
                        grammars.forRequest(spec, params.maxTokens(), "sampling.json_schema", "sampling.max_tokens"))
                .orElse(null);
        return new DecodeEngine.Request(
                HexFormat.of().parseHex(e.getPrefixHash()),
                e.getLength(),
                request.getLastPromptToken(),
                params,
                request.getCacheSalt(),
                request.getCheckpointAtEnd(),
                resume,
                grammar);
    }
}
