package dev.goldfinch.prefill;

import dev.goldfinch.cache.PrefixHasher;
import dev.goldfinch.error.TypedFailure;
import dev.goldfinch.model.ModelConfig;
import dev.goldfinch.model.sampling.Sampler;
import dev.goldfinch.model.sampling.SamplingParams;
import dev.goldfinch.proto.internal.v1.DescribeModelRequest;
import dev.goldfinch.proto.internal.v1.EntryRef;
import dev.goldfinch.proto.internal.v1.PrefillGrpc;
import dev.goldfinch.proto.internal.v1.PrefillRequest;
import dev.goldfinch.proto.internal.v1.PrefillResponse;
import dev.goldfinch.proto.internal.v1.PromptLogprob;
import dev.goldfinch.proto.v1.ModelInfo;
import dev.goldfinch.proto.v1.TokenLogprob;
import dev.goldfinch.service.GrpcErrors;
import dev.goldfinch.service.ModelProperties;
import io.grpc.Context;
import io.grpc.stub.StreamObserver;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.util.concurrent.ThreadPoolExecutor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The Prefill gRPC service: validates, then hands the prompt to {@link PrefillEngine} off the transport threads. */
public final class PrefillGrpcService extends PrefillGrpc.PrefillImplBase {
    private static final Logger LOG = LoggerFactory.getLogger(PrefillGrpcService.class);
    private final PrefillEngine engine;
    private final InitialStateLibrary initialStates;
    private final ModelProperties props;
    private final Counter queries;
    private final Counter hits;
    private final Counter cachedTokens;
    private final Counter promptTokens;
    private final Timer duration;
    private final DistributionSummary computed;

    public PrefillGrpcService(
            PrefillEngine engine, ModelProperties props, MeterRegistry meters, ThreadPoolExecutor executor) {
        this(engine, props, meters, executor, InitialStateLibrary.empty());
    }

    public PrefillGrpcService(
            PrefillEngine engine,
            ModelProperties props,
            MeterRegistry meters,
            ThreadPoolExecutor executor,
            InitialStateLibrary initialStates) {
        this.engine = engine;
        this.initialStates = initialStates;
        this.props = props;
        this.queries = Counter.builder("goldfinch.prefix_cache.queries")
                .description("Prompt tokens looked up in the prefix cache")
                .register(meters);
        this.hits = Counter.builder("goldfinch.prefix_cache.hits")
                .description("Prompt tokens served from the prefix cache")
                .register(meters);
        this.cachedTokens = Counter.builder("goldfinch.prefill.cached_tokens")
                .description("Tokens restored instead of recomputed")
                .register(meters);
        this.promptTokens = Counter.builder("goldfinch.prompt_tokens")
                .description("Prompt tokens prefilled")
                .register(meters);
        this.duration = Timer.builder("goldfinch.prefill.duration")
                .description("Prefill request duration")
                .publishPercentileHistogram()
                .register(meters);
        this.computed = DistributionSummary.builder("goldfinch.prefill.computed_tokens")
                .description("Tokens run through the model per prefill")
                .register(meters);
        meters.gauge(
                "goldfinch.prefill.queue_depth", executor, e -> e.getQueue().size());
        meters.gauge("goldfinch.prefill.running", executor, ThreadPoolExecutor::getActiveCount);
    }

    public static ModelInfo describe(PrefillEngine engine, ModelProperties props) {
        ModelConfig c = engine.model().config();
        return ModelInfo.newBuilder()
                .setId(props.name())
                .setArchitecture(c.architecture().name().toLowerCase(java.util.Locale.ROOT))
                .setParameters(c.parameterCount())
                .setVocabSize(c.vocabSize())
                .setMaxPromptTokens(props.maxPromptTokens())
                .setMaxTokensCap(props.maxTokensCap())
                .setFingerprint(engine.cache().modelId())
                .build();
    }

    @Override
    public void describeModel(DescribeModelRequest request, StreamObserver<ModelInfo> response) {
        response.onNext(describe(engine, props));
        response.onCompleted();
    }

    @Override
    public void prefill(PrefillRequest request, StreamObserver<PrefillResponse> response) {
        String model = request.getModel();
        if (!model.isEmpty()
                && !model.equals(props.name())
                && !model.equals(engine.cache().modelId())) {
            response.onError(GrpcErrors.invalid(
                    "model '" + model + "' is not served here (this replica serves '" + props.name() + "')"));
            return;
        }
        int n = request.getTokensCount();
        if (n == 0) {
            response.onError(GrpcErrors.invalid("tokens must not be empty"));
            return;
        }
        if (n > props.maxPromptTokens()) {
            response.onError(GrpcErrors.invalid(
                    "tokens: the prompt has " + n + " tokens, more than the maximum of " + props.maxPromptTokens()));
            return;
        }
        int vocab = engine.model().config().vocabSize();
        int[] tokens = new int[n];
        for (int i = 0; i < n; i++) {
            int t = request.getTokens(i);
            if (t < 0 || t >= vocab) {
                response.onError(GrpcErrors.invalid("tokens[" + i + "] = " + Integer.toUnsignedString(t)
                        + " is outside the vocabulary [0, " + vocab + ")"));
                return;
            }
            tokens[i] = t;
        }
        if (request.hasPromptLogprobs() && request.getPromptLogprobs() > SamplingParams.MAX_LOGPROBS) {
            response.onError(GrpcErrors.toStatus(TypedFailure.invalidArgument(
                    "prompt_logprobs",
                    "prompt_logprobs must be in [0, " + SamplingParams.MAX_LOGPROBS + "], got "
                            + Integer.toUnsignedString(request.getPromptLogprobs()))));
            return;
        }
        int promptLogprobs = request.hasPromptLogprobs() ? request.getPromptLogprobs() : -1;
        InitialStateLibrary.Named initial;
        try {
            initial = request.getInitialState().isEmpty() ? null : initialStates.get(request.getInitialState());
        } catch (RuntimeException e) {
            response.onError(GrpcErrors.toStatus(e));
            return;
        }
        long start = System.nanoTime();
        Context context = Context.current();
        PrefillEngine.Ticket ticket =
                engine.join(tokens, request.getCacheSalt(), !request.getBypassCache(), promptLogprobs, initial);
        // The call's context ends with it; only a cancellation (or deadline) ends it before the result.
        context.addListener(ended -> ticket.abandon().run(), Runnable::run);
        ticket.result().whenComplete((r, error) -> {
            if (error != null) {
                response.onError(GrpcErrors.toStatus(error));
                return;
            }
            duration.record(System.nanoTime() - start, java.util.concurrent.TimeUnit.NANOSECONDS);
            if (!request.getBypassCache()) {
                queries.increment(r.length());
                hits.increment(r.cachedTokens());
            }
            cachedTokens.increment(r.cachedTokens());
            promptTokens.increment(n);
            computed.record(r.computedTokens());
            LOG.debug("prefilled {} tokens: {} cached, {} computed", r.length(), r.cachedTokens(), r.computedTokens());
            if (context.isCancelled()) {
                return;
            }
            PrefillResponse.Builder answer = PrefillResponse.newBuilder()
                    .setEntry(EntryRef.newBuilder()
                            .setModel(engine.cache().modelId())
                            .setPrefixHash(PrefixHasher.hex(r.hash()))
                            .setLength(r.length()))
                    .setCachedTokens(r.cachedTokens())
                    .setComputedTokens(r.computedTokens())
                    .setCacheSalt(initial == null ? "" : initial.namespace(request.getCacheSalt()))
                    .setInitialStateLength(initial == null ? 0 : initial.length());
            for (Sampler.Sample scored : r.promptLogprobs()) {
                PromptLogprob.Builder position = PromptLogprob.newBuilder()
                        .setToken(TokenLogprob.newBuilder()
                                .setToken(scored.token())
                                .setLogprob(scored.logprob()));
                for (int i = 0; i < scored.topTokens().length; i++) {
                    position.addTopLogprobs(TokenLogprob.newBuilder()
                            .setToken(scored.topTokens()[i])
                            .setLogprob(scored.topLogprobs()[i]));
                }
                answer.addPromptLogprobs(position);
            }
            response.onNext(answer.build());
            response.onCompleted();
        });
    }
}
