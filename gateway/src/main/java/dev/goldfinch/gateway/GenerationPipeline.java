package dev.goldfinch.gateway;

import dev.goldfinch.cache.PrefixHasher;
import dev.goldfinch.error.FailureKind;
import dev.goldfinch.error.TypedFailure;
import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.sampling.SamplingParams;
import dev.goldfinch.model.sampling.StopSequenceMatcher;
import dev.goldfinch.model.tokenizer.StreamingDecoder;
import dev.goldfinch.model.tokenizer.WorldTokenizer;
import dev.goldfinch.proto.internal.v1.DecodeGrpc;
import dev.goldfinch.proto.internal.v1.DecodeRequest;
import dev.goldfinch.proto.internal.v1.DecodeResponse;
import dev.goldfinch.proto.internal.v1.PrefillGrpc;
import dev.goldfinch.proto.internal.v1.PrefillRequest;
import dev.goldfinch.proto.internal.v1.PrefillResponse;
import dev.goldfinch.proto.internal.v1.PromptLogprob;
import dev.goldfinch.proto.v1.FinishReason;
import dev.goldfinch.proto.v1.TokenLogprob;
import dev.goldfinch.proto.v1.Usage;
import dev.goldfinch.service.ErrorTable;
import dev.goldfinch.service.GrpcErrors;
import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.micrometer.observation.Observation;
import io.micrometer.observation.ObservationRegistry;
import io.micrometer.tracing.BaggageInScope;
import io.micrometer.tracing.Tracer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import java.util.function.IntFunction;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One generation, for the gRPC and HTTP front ends alike: admission, prefill (the prefill service looks up
 * and resumes from the deepest cached checkpoint), replica choice, the decode stream, detokenization and
 * stop sequences (the decode call is cancelled at a stop), usage and latency metrics. A decode replica
 * that lost the entry (NOT_FOUND) or went away (UNAVAILABLE, or ended the call itself, as a draining one
 * does) is replaced by another, before or after tokens were sent: the next replica gets the tokens the
 * client already has and continues the sequence exactly where the first left it (failover), after
 * prefilling again when the entry was lost. A replica that went away gets no second try of the request.
 */
public final class GenerationPipeline {
    private static final Logger log = LoggerFactory.getLogger(GenerationPipeline.class);
    /** The baggage field every service copies into its log lines (management.tracing.baggage.*). */
    public static final String REQUEST_ID = "request_id";

    /**
     * Where a decode stream's callbacks run: on the channel's own event-loop thread, not handed to an executor thread
     * per token (one wake-up less between the engine's step and the client). They only detokenize, match stops and
     * queue text for the writing thread, and anything that can wait (a failover's prefill) goes to {@link #executor}.
     */
    private static final Executor ON_TRANSPORT_THREAD = Runnable::run;

    /** Decode calls one request may make: the first and its failovers. */
    static final int MAX_DECODE_ATTEMPTS = 4;

    /**
     * A validated request of an authenticated {@code tenant}; {@code salt} is the client's (effective) cache
     * salt, which partitions the cache only inside the tenant's own namespace; {@code initialState} the named
     * initial state the prefill starts from ("" for none).
     */
    public record Job(
            int[] tokens,
            SamplingParams params,
            dev.goldfinch.proto.v1.SamplingParams wireParams,
            String tenant,
            String salt,
            boolean chat,
            String initialState) {
        public Job {
            initialState = initialState == null ? "" : initialState;
        }

        /** The request's own choice, else the tenant's default (null when it has none). */
        public static String initialState(String requested, String tenantDefault) {
            return requested != null && !requested.isEmpty() ? requested : tenantDefault;
        }

        /** What prefill and decode key every cache entry, GOLD K/V donor and local entry by. */
        String namespace() {
            return PrefixHasher.namespace(tenant, salt);
        }
    }

    /** Receives one generation's events, from one thread at a time. */
    public interface Listener {
        void onText(String text, int[] tokenIds, List<TokenLogprob> chosen, List<TokenLogprob> top);

        void onFinish(FinishReason reason, Usage usage);

        void onError(StatusRuntimeException error);

        /**
         * Whether the client's side can take more now. When it cannot, the pipeline asks the decode replica for
         * nothing more (gRPC flow control: the replica's stream waits) until {@link Handle#onReady} is called, so
         * a slow reader holds back its own stream instead of filling the gateway's heap.
         */
        default boolean ready() {
            return true;
        }

        /**
         * The prompt scored by the prefill pass ({@link Fanout#promptLogprobs}): tokens[1..] in order, before any
         * text; every choice's listener hears it.
         */
        default void onPromptLogprobs(List<PromptLogprob> scored) {}
    }

    /**
     * What one request asks beyond a single sequence: {@code choices} sequences forked from one prefill (each
     * sampling with seed + its index when a seed is set), the prompt scored with {@code promptLogprobs} top
     * alternatives per position (-1: not scored), and {@code decode} false to stop after the prefill (a text
     * scored, nothing generated).
     */
    public record Fanout(int choices, int promptLogprobs, boolean decode) {
        public static final Fanout ONE = new Fanout(1, -1, true);

        public Fanout {
            if (choices < 1) {
                throw new IllegalArgumentException("choices must be >= 1");
            }
        }
    }

    /** A running generation, for its front end. */
    public interface Handle {
        /** Cancels it (the client went away): the prefill or decode call is cancelled too. */
        void cancel();

        /** The client's side can take more again (see {@link Listener#ready}). */
        void onReady();
    }

    private final WorldTokenizer tokenizer;
    private final ReplicaRouter prefills;
    private final ReplicaRouter router;
    private final ExecutorService executor;
    private final Semaphore admission;
    private final int maxInflightPerTenant;
    /** Requests in progress per tenant; a tenant's entry goes when its last request ends. */
    private final ConcurrentHashMap<String, Integer> inflightByTenant = new ConcurrentHashMap<>();

    private final Duration timeout;
    private final AtomicInteger running = new AtomicInteger();
    /** Generated messages the front ends hold for clients that have not taken them yet (see {@link #buffered}). */
    private final AtomicInteger buffered = new AtomicInteger();

    private final Timer ttft;
    private final Timer interToken;
    private final Timer e2e;
    private final Counter promptTokens;
    private final Counter cachedTokens;
    private final Counter generationTokens;
    private final Timer failoverGap;
    private final Counter prefillCalls;
    private final ObservationRegistry observations;
    private final Tracer tracer;

    public GenerationPipeline(
            WorldTokenizer tokenizer,
            ReplicaRouter prefills,
            ReplicaRouter router,
            ExecutorService executor,
            int maxInflight,
            int maxInflightPerTenant,
            Duration timeout,
            MeterRegistry meters) {
        this(
                tokenizer,
                prefills,
                router,
                executor,
                maxInflight,
                maxInflightPerTenant,
                timeout,
                meters,
                ObservationRegistry.NOOP,
                Tracer.NOOP);
    }

    /**
     * With {@code observations} and {@code tracer}: tokenizing is a span of the request, and the request's id
     * rides in its trace's baggage to every service (pass {@code executor} context-propagating, so a run keeps
     * its request's context).
     */
    public GenerationPipeline(
            WorldTokenizer tokenizer,
            ReplicaRouter prefills,
            ReplicaRouter router,
            ExecutorService executor,
            int maxInflight,
            int maxInflightPerTenant,
            Duration timeout,
            MeterRegistry meters,
            ObservationRegistry observations,
            Tracer tracer) {
        this.observations = observations;
        this.tracer = tracer;
        this.tokenizer = tokenizer;
        this.prefills = prefills;
        this.router = router;
        this.executor = executor;
        this.admission = new Semaphore(maxInflight);
        this.maxInflightPerTenant = maxInflightPerTenant;
        this.timeout = timeout;
        this.ttft = Timer.builder("goldfinch.time_to_first_token")
                .description("Time to first token")
                .publishPercentileHistogram()
                .register(meters);
        this.interToken = Timer.builder("goldfinch.inter_token_latency")
                .description("Time between streamed tokens")
                .publishPercentileHistogram()
                .register(meters);
        this.e2e = Timer.builder("goldfinch.e2e_request_latency")
                .description("Request duration")
                .publishPercentileHistogram()
                .register(meters);
        this.promptTokens = Counter.builder("goldfinch.prompt_tokens")
                .description("Prompt tokens")
                .register(meters);
        this.cachedTokens = Counter.builder("goldfinch.prefix_cache.cached_tokens")
                .description("Prompt tokens served from the prefix cache")
                .register(meters);
        this.generationTokens = Counter.builder("goldfinch.generation_tokens")
                .description("Tokens generated")
                .register(meters);
        this.failoverGap = Timer.builder("goldfinch.decode.failover_gap")
                .description("Client-visible pause of a stream moved to another decode replica: last token before"
                        + " the failure to the first after")
                .register(meters);
        this.prefillCalls = Counter.builder("goldfinch.gateway.prefill_calls")
                .description("Prefill calls made (one per request, n choices included; more after a lost entry)")
                .register(meters);
        meters.gauge("goldfinch.requests_running", running);
        Gauge.builder("goldfinch.gateway.buffered_messages", buffered, AtomicInteger::get)
                .description("Generated messages held in the gateway for clients that have not taken them yet")
                .register(meters);
    }

    /**
     * Counts messages a front end holds for a client that is not reading ({@code delta} > 0) or has passed
     * on ({@code delta} < 0); flow control keeps it at about one per slow stream.
     */
    void buffered(int delta) {
        buffered.addAndGet(delta);
    }

    /** Messages held now for clients that have not taken them (the {@code buffered_messages} gauge). */
    int bufferedMessages() {
        return buffered.get();
    }

    /**
     * The salt a request's cache entries live under: its own, or — when it skips the prefix cache — one
     * nobody else has, so it neither reads a cached prefix nor serves one (its entries age out).
     */
    public static String effectiveSalt(String salt, boolean skipPrefixCache) {
        return skipPrefixCache ? salt + "\u0000uncached:" + java.util.UUID.randomUUID() : salt;
    }

    /**
     * Makes {@code requestId} this thread's request until closed: in the log lines of this service and, through
     * the trace's baggage, of every service the request reaches. A run started meanwhile keeps it.
     */
    public BaggageInScope identify(String requestId) {
        return tracer.createBaggageInScope(REQUEST_ID, requestId);
    }

    /** Tokenizes a prompt in a span of its own. */
    public int[] tokenize(Supplier<int[]> prompt) {
        return Observation.createNotStarted("goldfinch.tokenize", observations)
                .contextualName("tokenize")
                .observe(prompt);
    }

    /**
     * A slot taken by {@link #admit}: handed to {@link #start(Admission, Job, Listener)}, or closed to give it
     * back when the request fails before it starts (closing after the start does nothing).
     */
    public final class Admission implements AutoCloseable {
        private final String tenant;
        private boolean held = true;

        private Admission(String tenant) {
            this.tenant = tenant;
        }

        @Override
        public void close() {
            if (held) {
                held = false;
                admission.release();
                releaseTenant(tenant);
            }
        }
    }

    /**
     * Takes a slot for {@code tenant} before any costly work (tokenizing) is done for its request; throws a
     * RESOURCE_EXHAUSTED failure at once when the gateway is full or the tenant already has its quota of
     * requests in progress (one tenant cannot take every slot).
     */
    public Admission admit(String tenant) {
        if (!admitTenant(tenant)) {
            throw new TypedFailure(
                    FailureKind.RESOURCE_EXHAUSTED,
                    "your concurrent requests are at this server's limit per tenant; retry later");
        }
        if (!admission.tryAcquire()) {
            releaseTenant(tenant);
            throw new TypedFailure(
                    FailureKind.RESOURCE_EXHAUSTED, "the server is at its limit of concurrent requests; retry later");
        }
        return new Admission(tenant);
    }

    /** Admits and starts a generation (see {@link #admit}). */
    public Handle start(Job job, Listener listener) {
        return start(admit(job.tenant()), job, listener);
    }

    /** Starts a generation in the slot {@code admitted} holds for the job's tenant; the slot is the run's now. */
    public Handle start(Admission admitted, Job job, Listener listener) {
        return start(admitted, job, Fanout.ONE, i -> listener);
    }

    /**
     * Starts {@code fanout.choices()} sequences after one prefill, in the one slot {@code admitted} holds;
     * {@code listeners} gives choice i its listener. The slot is released when the last sequence ends.
     */
    public Handle start(Admission admitted, Job job, Fanout fanout, IntFunction<Listener> listeners) {
        if (!admitted.held || !admitted.tenant.equals(job.tenant())) {
            throw new IllegalStateException("an admission is used once, for its own tenant");
        }
        admitted.held = false; // released by the group when its last sequence ends
        // The client's deadline (gRPC: grpc-timeout, in this call's context) bounds the whole generation, and
        // every call made for it; never later than the gateway's own request timeout.
        Deadline own = Deadline.after(timeout.toNanos(), TimeUnit.NANOSECONDS);
        Deadline client = Context.current().getDeadline();
        Group group = new Group(job, fanout, listeners, client != null && client.isBefore(own) ? client : own);
        running.incrementAndGet();
        log.debug(
                "generation: {} prompt tokens, {} choice(s) of up to {} new",
                job.tokens().length,
                fanout.choices(),
                job.params().maxTokens());
        try {
            executor.execute(() -> group.inRequest(group::prefillThenDecode));
        } catch (RuntimeException e) {
            running.decrementAndGet();
            release(job);
            throw e;
        }
        return new Handle() {
            @Override
            public void cancel() {
                group.cancel();
            }

            @Override
            public void onReady() {
                for (Run r : group.runs) {
                    r.onReady();
                }
            }
        };
    }

    /**
     * The prefill call of {@code job} on the least loaded prefill replica, another when one goes away or is
     * shutting down (at most {@link #MAX_DECODE_ATTEMPTS} replicas), within {@code deadline}. Each call runs in a
     * cancellable scope handed to {@code publish} (null once it ends) so the request's cancel reaches it;
     * {@code promptLogprobs} < 0: the prompt is not scored.
     */
    private PrefillResponse prefill(
            Job job,
            int promptLogprobs,
            Deadline deadline,
            Consumer<Context.CancellableContext> publish,
            BooleanSupplier cancelled)
            throws Exception {
        PrefillRequest.Builder builder = PrefillRequest.newBuilder()
                .addAllTokens(java.util.Arrays.stream(job.tokens()).boxed().toList())
                .setCacheSalt(job.namespace())
                .setInitialState(job.initialState());
        if (promptLogprobs >= 0) {
            builder.setPromptLogprobs(promptLogprobs);
        }
        PrefillRequest request = builder.build();
        Set<ReplicaRouter.Replica> failed = new HashSet<>();
        StatusRuntimeException lastError = null;
        while (true) {
            ReplicaRouter.Replica p = failed.size() >= MAX_DECODE_ATTEMPTS
                    ? null
                    : prefills.pickLeastLoaded(failed)
                            .or(() -> prefills.pickDespiteHealth(failed))
                            .orElse(null);
            if (p == null) {
                throw lastError != null
                        ? lastError
                        : ErrorTable.status(FailureKind.UNAVAILABLE, "no healthy prefill replica", null);
            }
            Context.CancellableContext scope = Context.current().withCancellation();
            publish.accept(scope);
            if (cancelled.getAsBoolean()) {
                scope.cancel(null); // cancelled before the call existed
            }
            p.live.incrementAndGet();
            try {
                prefillCalls.increment();
                return scope.call(() -> PrefillGrpc.newBlockingStub(p.channel())
                        .withDeadline(deadline)
                        .prefill(request));
            } catch (Exception e) {
                if (cancelled.getAsBoolean()) {
                    throw e;
                }
                StatusRuntimeException error = GrpcErrors.toStatus(e);
                Status.Code code = error.getStatus().getCode();
                // Another replica can take over when this one went away or ended the call itself (shutting
                // down); a lost entry or any other failure is the request's answer.
                if (code != Status.Code.UNAVAILABLE && code != Status.Code.CANCELLED && code != Status.Code.ABORTED) {
                    throw error;
                }
                failed.add(p);
                prefills.markUnavailable(p);
                lastError = error;
                log.info("prefill replica {} ended a prefill ({}); trying another", p.target(), code);
            } finally {
                p.live.decrementAndGet();
                publish.accept(null);
                scope.close();
            }
        }
    }

    /**
     * The sequences of one request: one prefill, then each choice decoded from its entry (a decode replica
     * restores the entry once and forks it for the others, from its local cache). Admission, the running gauge
     * and the prompt's metrics are the group's, counted once.
     */
    private final class Group {
        final Job job;
        final Fanout fanout;
        final List<Run> runs = new ArrayList<>();
        final AtomicInteger open;
        final long start = System.nanoTime();
        /** The request's id ({@link #identify}) at the start, for the group's threads to carry on. */
        final String requestId;
        /** The whole generation's deadline: each prefill and decode call gets it. */
        final Deadline deadline;

        volatile boolean cancelled;
        volatile Context.CancellableContext prefillCall;
        boolean promptCounted;

        Group(Job job, Fanout fanout, IntFunction<Listener> listeners, Deadline deadline) {
            this.job = job;
            this.fanout = fanout;
            this.deadline = deadline;
            var id = tracer.getBaggage(REQUEST_ID);
            this.requestId = id == null ? null : id.get();
            for (int i = 0; i < fanout.choices(); i++) {
                runs.add(new Run(this, choiceJob(job, i), listeners.apply(i)));
            }
            this.open = new AtomicInteger(runs.size());
        }

        /** Choice i samples with seed + i, so every choice has its own reproducible stream. */
        private static Job choiceJob(Job job, int index) {
            if (index == 0 || !job.wireParams().hasSeed()) {
                return job;
            }
            var wire = job.wireParams().toBuilder()
                    .setSeed(job.wireParams().getSeed() + index)
                    .build();
            return new Job(
                    job.tokens(),
                    job.params().withSeed(wire.getSeed()),
                    wire,
                    job.tenant(),
                    job.salt(),
                    job.chat(),
                    job.initialState());
        }

        void inRequest(Runnable work) {
            if (requestId == null) {
                work.run();
                return;
            }
            try (BaggageInScope id = tracer.createBaggageInScope(REQUEST_ID, requestId)) {
                work.run();
            }
        }

        void cancel() {
            cancelled = true;
            Context.CancellableContext p = prefillCall;
            if (p != null) {
                p.cancel(null);
            }
            for (Run r : runs) {
                r.cancel();
            }
        }

        void prefillThenDecode() {
            PrefillResponse prefilled;
            try {
                prefilled =
                        prefill(job, fanout.promptLogprobs(), deadline, scope -> prefillCall = scope, () -> cancelled);
            } catch (Exception e) {
                StatusRuntimeException error = cancelled ? null : GrpcErrors.toStatus(e);
                runs.getFirst().fail(error); // one error for the request
                for (Run r : runs.subList(1, runs.size())) {
                    r.fail(null);
                }
                return;
            }
            if (fanout.promptLogprobs() >= 0) {
                for (Run r : runs) {
                    r.listener.onPromptLogprobs(prefilled.getPromptLogprobsList());
                }
            }
            for (Run r : runs) {
                r.prefilled = prefilled;
                if (!fanout.decode()) {
                    r.finish(cancelled ? null : FinishReason.FINISH_REASON_LENGTH);
                    continue;
                }
                try {
                    r.decode();
                } catch (RuntimeException e) {
                    r.fail(GrpcErrors.toStatus(e));
                }
            }
        }

        /** A sequence ended; {@code prefilled}: what its prompt cost, counted once (null: cancelled). */
        synchronized void ended(PrefillResponse prefilled) {
            if (prefilled != null && !promptCounted) {
                promptCounted = true;
                promptTokens.increment(job.tokens().length);
                cachedTokens.increment(prefilled.getCachedTokens());
            }
            if (open.decrementAndGet() == 0) {
                running.decrementAndGet();
                release(job);
                e2e.record(System.nanoTime() - start, TimeUnit.NANOSECONDS);
            }
        }
    }

    private boolean admitTenant(String tenant) {
        boolean[] admitted = {false};
        inflightByTenant.compute(tenant, (t, n) -> {
            int current = n == null ? 0 : n;
            if (current >= maxInflightPerTenant) {
                return n;
            }
            admitted[0] = true;
            return current + 1;
        });
        return admitted[0];
    }

    private void releaseTenant(String tenant) {
        inflightByTenant.computeIfPresent(tenant, (t, n) -> n <= 1 ? null : n - 1);
    }

    private void release(Job job) {
        admission.release();
        releaseTenant(job.tenant());
    }

    private final class Run {
        final Group group;
        final Job job;
        final Listener listener;
        final long start = System.nanoTime();
        final StreamingDecoder decoder = new StreamingDecoder(tokenizer);
        final StopSequenceMatcher stops;
        volatile ClientCallStreamObserver<DecodeRequest> call;
        /** The running prefill call's scope: cancelling it cancels the call, and prefill stops between chunks. */
        volatile Context.CancellableContext prefillCall;

        volatile boolean cancelled;
        boolean done;
        long lastTokenAt;
        int generated;
        PrefillResponse prefilled;
        ReplicaRouter.Replica replica;
        /** Replicas that went away during this request; none gets it again. */
        final Set<ReplicaRouter.Replica> failed = new HashSet<>();
        /** The replica that last answered NOT_FOUND (lost the entry): elsewhere if possible, else it again. */
        ReplicaRouter.Replica lostEntry;
        /** Decode calls made. */
        int attempts;
        /** The tokens the client has (end of text aside): what a replacement replica resumes from. */
        final List<Integer> sent = new ArrayList<>();
        /** When the stream was moved to another replica and has not yet produced a token there; else 0. */
        long failedOverAt;
        /** The decode's final reason, applied when its stream completes (after its checkpoints are written). */
        FinishReason pendingFinish;
        /** The whole generation's deadline: each prefill and decode call gets it. */
        final Deadline deadline;
        /** Set: a decode message was taken while the client was not ready; the next is asked for at onReady. */
        final AtomicBoolean owed = new AtomicBoolean();

        Run(Group group, Job job, Listener listener) {
            this.group = group;
            this.job = job;
            this.listener = listener;
            this.deadline = group.deadline;
            this.stops = new StopSequenceMatcher(job.params().stop());
        }

        /**
         * Runs {@code work} with the request's id in its trace context: the executor restores the span, but the
         * id rides in baggage, which this thread's outgoing calls take from its own context.
         */
        void inRequest(Runnable work) {
            group.inRequest(work);
        }

        void cancel() {
            cancelled = true;
            Context.CancellableContext p = prefillCall;
            if (p != null) {
                p.cancel(null);
            }
            ClientCallStreamObserver<DecodeRequest> c = call;
            if (c != null) {
                c.cancel("client cancelled", null);
            }
        }

        /** Asks the decode replica for its next message, if the client can take it; else once it can. */
        void nextWhenReady() {
            if (listener.ready()) {
                requestNext();
                return;
            }
            owed.set(true);
            // The client may have become ready between the check and the flag: then nobody else asks.
            if (listener.ready() && owed.compareAndSet(true, false)) {
                requestNext();
            }
        }

        void onReady() {
            if (owed.compareAndSet(true, false)) {
                requestNext();
            }
        }

        private void requestNext() {
            ClientCallStreamObserver<DecodeRequest> c = call;
            if (c != null && !done) {
                c.request(1);
            }
        }

        /** Prefills again (the entry was lost), then decodes on a replica that has not failed this request. */
        void prefillThenDecode() {
            try {
                prefilled = prefill(job, -1, deadline, scope -> prefillCall = scope, () -> cancelled);
            } catch (Exception e) {
                if (cancelled) {
                    finish(null);
                } else {
                    fail(GrpcErrors.toStatus(e));
                }
                return;
            }
            try {
                decode();
            } catch (RuntimeException e) {
                fail(GrpcErrors.toStatus(e));
            }
        }

        void decode() {
            decode(null);
        }

        /** Where the entry lives: the job's namespace, or the initial state's own one the prefill put it in. */
        String entryNamespace() {
            String salt = prefilled.getCacheSalt();
            return salt.isEmpty() ? job.namespace() : salt;
        }

        /** Decodes on a replica that has not failed this request; {@code lastError}: why the previous one ended. */
        void decode(StatusRuntimeException lastError) {
            if (cancelled) {
                finish(null);
                return;
            }
            String entry = prefilled.getEntry().getPrefixHash();
            Set<ReplicaRouter.Replica> avoid = new HashSet<>(failed);
            if (lostEntry != null) {
                avoid.add(lostEntry);
            }
            replica = router.pickAvoiding(entry, avoid)
                    .or(() -> router.pickAvoiding(entry, failed))
                    .or(() -> router.pickDespiteHealth(failed))
                    .orElse(null);
            if (replica == null) {
                fail(
                        lastError != null
                                ? lastError
                                : ErrorTable.status(FailureKind.UNAVAILABLE, "no healthy decode replica", null));
                return;
            }
            replica.live.incrementAndGet();
            attempts++;
            DecodeRequest request = DecodeRequest.newBuilder()
                    .setEntry(prefilled.getEntry())
                    .setLastPromptToken(job.tokens()[job.tokens().length - 1])
                    .setSampling(job.wireParams())
                    .setCacheSalt(entryNamespace())
                    .setCheckpointAtEnd(job.chat())
                    .addAllResumeTokens(sent)
                    .build();
            ReplicaRouter.Replica used = replica;
            DecodeGrpc.newStub(used.channel())
                    .withDeadline(deadline)
                    .withExecutor(ON_TRANSPORT_THREAD)
                    .decode(request, new ClientResponseObserver<DecodeRequest, DecodeResponse>() {
                        @Override
                        public void beforeStart(ClientCallStreamObserver<DecodeRequest> requestStream) {
                            // One message at a time, each asked for once the client can take it (flow control).
                            requestStream
                                    .disableAutoInboundFlowControl(); // the first message is asked for at the start
                            owed.set(false);
                            call = requestStream;
                            if (cancelled) {
                                requestStream.cancel("client cancelled", null);
                            }
                        }

                        @Override
                        public void onNext(DecodeResponse r) {
                            try {
                                token(r);
                            } catch (GoldFinchException.InvalidInput e) { // from the vocabulary: an id it lacks
                                outsideVocabulary(e);
                            }
                            nextWhenReady();
                        }

                        @Override
                        public void onError(Throwable t) {
                            used.live.decrementAndGet();
                            Status s = Status.fromThrowable(t);
                            StatusRuntimeException error = s.asRuntimeException(Status.trailersFromThrowable(t));
                            if (!cancelled && !done && pendingFinish == null && replaceable(s.getCode())) {
                                // A replica that only lost the entry may serve it once prefill has written it again.
                                if (s.getCode() == Status.Code.NOT_FOUND) {
                                    lostEntry = used;
                                } else {
                                    failed.add(used);
                                    router.markUnavailable(used);
                                }
                                if (attempts < MAX_DECODE_ATTEMPTS) {
                                    failedOverAt = System.nanoTime();
                                    log.info(
                                            "decode replica {} ended a sequence after {} tokens ({}); resuming it on"
                                                    + " another",
                                            used.target(),
                                            sent.size(),
                                            s.getCode());
                                    executor.execute(() -> inRequest(() -> {
                                        if (s.getCode() == Status.Code.NOT_FOUND) {
                                            prefillThenDecode(); // the entry was evicted between prefill and decode
                                        } else {
                                            decode(error);
                                        }
                                    }));
                                    return;
                                }
                            }
                            if (pendingFinish != null) {
                                finish(pendingFinish);
                            } else if (done || cancelled) {
                                finish(null);
                            } else {
                                fail(error); // keeps the field at fault
                            }
                        }

                        @Override
                        public void onCompleted() {
                            used.live.decrementAndGet();
                            if (!done) {
                                finish(pendingFinish != null ? pendingFinish : FinishReason.FINISH_REASON_LENGTH);
                            }
                        }
                    });
        }

        /**
         * The replica went away (UNAVAILABLE), lost the entry (NOT_FOUND), or ended the call itself
         * (CANCELLED or ABORTED without our asking, as a replica shutting down does): another can take over.
         */
        private boolean replaceable(Status.Code code) {
            return code == Status.Code.UNAVAILABLE
                    || code == Status.Code.NOT_FOUND
                    || code == Status.Code.CANCELLED
                    || code == Status.Code.ABORTED;
        }

        void token(DecodeResponse r) {
            if (done) {
                return;
            }
            long now = System.nanoTime();
            if (failedOverAt != 0) {
                long gap = now - lastTokenAt;
                if (generated > 0) {
                    failoverGap.record(gap, TimeUnit.NANOSECONDS);
                }
                log.info(
                        "sequence resumed on decode replica {} after {} tokens: failover gap {} ms (failure seen to"
                                + " next token {} ms)",
                        replica.target(),
                        sent.size(),
                        generated > 0 ? TimeUnit.NANOSECONDS.toMillis(gap) : -1,
                        TimeUnit.NANOSECONDS.toMillis(now - failedOverAt));
                failedOverAt = 0;
            }
            if (generated == 0) {
                ttft.record(now - start, TimeUnit.NANOSECONDS);
            } else {
                interToken.record(now - lastTokenAt, TimeUnit.NANOSECONDS);
            }
            lastTokenAt = now;
            generated++;
            generationTokens.increment();
            FinishReason reason =
                    r.getFinishReason() == FinishReason.FINISH_REASON_UNSPECIFIED ? null : r.getFinishReason();
            List<TokenLogprob> chosen = List.of(TokenLogprob.newBuilder()
                    .setToken(r.getToken())
                    .setLogprob(r.getLogprob())
                    .build());
            if (reason == FinishReason.FINISH_REASON_END_OF_TEXT) {
                emit(stops.push(decoder.flush()), new int[0], List.of(), List.of());
                if (!done) {
                    emitRest();
                    pendingFinish = reason;
                }
                return;
            }
            sent.add(r.getToken());
            StopSequenceMatcher.Result text = stops.push(decoder.push(r.getToken()));
            emit(text, new int[] {r.getToken()}, chosen, r.getTopLogprobsList());
            if (text.stopped()) {
                finish(FinishReason.FINISH_REASON_STOP);
                ClientCallStreamObserver<DecodeRequest> c = call;
                if (c != null) {
                    c.cancel("stop sequence reached", null);
                }
                return;
            }
            if (reason != null) {
                StopSequenceMatcher.Result tail = stops.push(decoder.flush());
                emit(tail, new int[0], List.of(), List.of());
                if (!done) {
                    emitRest();
                    pendingFinish = tail.stopped() ? FinishReason.FINISH_REASON_STOP : reason;
                }
            }
        }

        /**
         * The model sampled (or offered as an alternative) an id the gateway's vocabulary has no bytes for: the
         * vocabulary does not fit the model. Thrown from the stream's callback, gRPC would report it as a CANCELLED
         * "Failed to read message".
         */
        private void outsideVocabulary(GoldFinchException.InvalidInput e) {
            fail(ErrorTable.status(
                    FailureKind.MODEL_MISMATCH,
                    "the model generated a token the gateway cannot spell (" + e.getMessage()
                            + "): goldfinch.gateway.vocab does not fit the served model",
                    null));
            ClientCallStreamObserver<DecodeRequest> c = call;
            if (c != null) {
                c.cancel("token outside the gateway's vocabulary", null);
            }
        }

        private void emit(
                StopSequenceMatcher.Result text, int[] ids, List<TokenLogprob> chosen, List<TokenLogprob> top) {
            if (!text.emit().isEmpty() || ids.length > 0) {
                listener.onText(text.emit(), ids, chosen, top);
            }
            if (text.stopped() && ids.length == 0) {
                finish(FinishReason.FINISH_REASON_STOP);
            }
        }

        private void emitRest() {
            String rest = stops.finish();
            if (!rest.isEmpty()) {
                listener.onText(rest, new int[0], List.of(), List.of());
            }
        }

        void finish(FinishReason reason) {
            if (done) {
                return;
            }
            done = true;
            group.ended(reason == null ? null : prefilled);
            if (reason == null) {
                return; // cancelled by the client: nobody to tell
            }
            int prompt = job.tokens().length;
            int cached = prefilled == null ? 0 : prefilled.getCachedTokens();
            listener.onFinish(
                    reason,
                    Usage.newBuilder()
                            .setPromptTokens(prompt)
                            .setCompletionTokens(generated)
                            .setCachedTokens(cached)
                            .build());
        }

        void fail(StatusRuntimeException e) {
            if (done) {
                return;
            }
            done = true;
            group.ended(null);
            if (!cancelled && e != null) {
                listener.onError(e);
            }
        }
    }
}
