package dev.goldfinch.decode;

import dev.goldfinch.cache.PrefixHasher;
import dev.goldfinch.cache.client.RequestDeadline;
import dev.goldfinch.cache.client.StateCache;
import dev.goldfinch.model.GoldFinchModel;
import dev.goldfinch.model.constrain.JsonCursor;
import dev.goldfinch.model.constrain.JsonGrammar;
import dev.goldfinch.model.sampling.Sampler;
import dev.goldfinch.model.sampling.SamplingParams;
import dev.goldfinch.model.state.SequenceState;
import dev.goldfinch.model.tokenizer.WorldTokenizer;
import dev.goldfinch.proto.v1.FinishReason;
import io.grpc.Context;
import io.grpc.Deadline;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.observation.Observation;
import io.micrometer.observation.ObservationRegistry;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Continuous batching: one scheduler thread advances every live sequence by one token per step in a
 * single {@link GoldFinchModel#forward} call, so each weight byte read serves the whole batch. Sequences
 * join between steps (once their entry is loaded, off the scheduler thread) and leave when they finish,
 * are cancelled, or pass their deadline (gRPC cancels the call); a sequence whose client is not reading
 * sits out steps until it is. A finished sequence can be written back as an end-of-generation checkpoint
 * (and the state after its prompt), so a chat's next turn resumes from cache.
 */
public final class DecodeEngine implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(DecodeEngine.class);

    /**
     * One generation request: the entry (prompt minus its last token) and what to do after it. {@code
     * resumeTokens}: what an earlier replica already generated for it (failover), replayed before sampling;
     * {@code grammar}, when not null, constrains the output to JSON of a schema.
     */
    public record Request(
            byte[] entryHash,
            int entryLength,
            int lastPromptToken,
            SamplingParams params,
            String salt,
            boolean checkpointAtEnd,
            int[] resumeTokens,
            JsonGrammar grammar) {
        public Request(
                byte[] entryHash,
                int entryLength,
                int lastPromptToken,
                SamplingParams params,
                String salt,
                boolean checkpointAtEnd) {
            this(entryHash, entryLength, lastPromptToken, params, salt, checkpointAtEnd, new int[0], null);
        }
    }

    private static final class Sequence {
        final Request request;
        final TokenSink sink;
        final SequenceState state;
        final Sampler sampler;
        /** The structured-output position, or null for free text. */
        final JsonCursor json;
        /** This sequence's next-token logits, rewritten by every step (a decode step allocates no logits). */
        final float[] logits;
        /** The request's span (the gRPC server's), under which this sequence's own spans and cache calls go. */
        final Observation caller;
        /** The request's deadline (null: none), which its checkpoint writes keep to. */
        final Deadline deadline;
        /** From admission until the sequence's first step: entry load and waiting for the batch. */
        final Observation queued;
        /** From the first step until the first token is handed to the stream. */
        Observation firstToken;

        boolean firstTokenSent;

        int pending;
        int generated;
        /** Resume tokens already stepped; while fewer than all, a step only feeds {@code pending} (no sampling). */
        int replayed;

        boolean finalStep;
        FinishReason finish;
        CompletableFuture<Void> writes = CompletableFuture.completedFuture(null);

        Sequence(
                Request request,
                TokenSink sink,
                SequenceState state,
                Sampler sampler,
                Observation caller,
                Deadline deadline,
                Observation queued) {
            this.request = request;
            this.deadline = deadline;
            this.sink = sink;
            this.state = state;
            this.sampler = sampler;
            this.caller = caller;
            this.queued = queued;
            this.json = request.grammar() == null ? null : request.grammar().start();
            if (json != null) {
                for (int token : request.resumeTokens()) { // the automaton too resumes where the first replica was
                    json.accept(token);
                }
            }
            this.logits = new float[state.config().vocabSize()];
            this.pending = request.lastPromptToken();
            this.generated = request.resumeTokens().length;
        }

        /**
         * Still stepping the tokens another replica already sent: one token per step, as that replica did, so
         * the state (and so every later logit) is bit for bit the one of an undisturbed run.
         */
        boolean replaying() {
            return replayed < request.resumeTokens().length;
        }
    }

    /** Positions a sequence's state reserves beyond its prompt (at most; fewer when max_tokens is smaller). */
    private static final int RESERVE_AHEAD = 256;

    private static final float[] NO_LOGITS = new float[0];

    private final GoldFinchModel model;
    private final StateCache cache;
    private final ExecutorService io;
    private final int maxSequences;
    private final int maxBatch;
    private final Map<String, SequenceState> local;
    private final int localEntries;
    private final ConcurrentLinkedQueue<Sequence> joining = new ConcurrentLinkedQueue<>();
    private final List<Sequence> live = new ArrayList<>();
    private final AtomicInteger admitted = new AtomicInteger();
    /** Bytes of live GOLD K/V the admitted sequences may grow to hold, against {@link #kvBudget}. */
    private final AtomicLong kvHeld = new AtomicLong();

    private final long kvBudget;
    private final AtomicInteger liveCount = new AtomicInteger();
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition work = lock.newCondition();
    private final Thread scheduler;
    private volatile boolean running = true;
    private final Counter generatedTokens;
    private final DistributionSummary batchSizes;
    private final Counter localHits;
    private final ObservationRegistry observations;

    public DecodeEngine(
            GoldFinchModel model,
            StateCache cache,
            ExecutorService io,
            int maxSequences,
            int maxBatch,
            int localEntries,
            MeterRegistry meters) {
        this(model, cache, io, maxSequences, maxBatch, localEntries, meters, ObservationRegistry.NOOP);
    }

    /** With {@code observations}, each sequence's queueing and first token are spans of its request. */
    public DecodeEngine(
            GoldFinchModel model,
            StateCache cache,
            ExecutorService io,
            int maxSequences,
            int maxBatch,
            int localEntries,
            MeterRegistry meters,
            ObservationRegistry observations) {
        this(model, cache, io, maxSequences, maxBatch, localEntries, defaultKvBudget(), meters, observations);
    }

    /**
     * With {@code kvBudget}: the bytes of live GOLD keys and values all admitted sequences together may hold (each
     * counted at its prompt plus {@code max_tokens}, times the model's live bytes per token); beyond it a sequence is
     * refused with RESOURCE_EXHAUSTED before it loads, never an OutOfMemoryError halfway through.
     */
    public DecodeEngine(
            GoldFinchModel model,
            StateCache cache,
            ExecutorService io,
            int maxSequences,
            int maxBatch,
            int localEntries,
            long kvBudget,
            MeterRegistry meters,
            ObservationRegistry observations) {
        this.kvBudget = kvBudget;
        this.observations = observations;
        this.model = model;
        this.cache = cache;
        this.io = io;
        this.maxSequences = maxSequences;
        this.maxBatch = maxBatch;
        this.localEntries = localEntries;
        this.local = new LinkedHashMap<>(16, 0.75f, true);
        meters.gauge("goldfinch.decode.live_sequences", liveCount);
        meters.gauge("goldfinch.decode.kv_bytes_admitted", kvHeld);
        meters.gauge("goldfinch.decode.queue_depth", admitted, a -> a.get() - liveCount.get());
        this.generatedTokens = Counter.builder("goldfinch.generation_tokens")
                .description("Tokens generated")
                .register(meters);
        this.batchSizes = DistributionSummary.builder("goldfinch.decode.batch_size")
                .description("Sequences per decode step")
                .register(meters);
        this.localHits = Counter.builder("goldfinch.decode.local_cache_hits")
                .description("Entries served from the replica's own LRU")
                .register(meters);
        this.scheduler = Thread.ofPlatform().name("decode-scheduler").daemon().start(this::loop);
    }

    public GoldFinchModel model() {
        return model;
    }

    public StateCache cache() {
        return cache;
    }

    /** Sequences admitted and not yet finished (what the gateway balances on). */
    public int load() {
        return admitted.get();
    }

    /**
     * Admits a request: fails fast with {@link RejectedExecutionException} when the replica is full, loads
     * the entry (the local LRU first), then joins the batch. The future fails with
     * {@link EntryNotFoundException} when the entry is gone from every cache.
     */
    public CompletableFuture<Void> submit(Request request, TokenSink sink) {
        if (admitted.incrementAndGet() > maxSequences) {
            admitted.decrementAndGet();
            throw new RejectedExecutionException("decode replica is at its limit of " + maxSequences + " sequences");
        }
        long bytes = liveBytes(request);
        long held = kvHeld.addAndGet(bytes);
        if (held > kvBudget) {
            release(request);
            throw new KvBudgetExceeded(String.format(
                    java.util.Locale.ROOT,
                    "decode replica cannot hold this sequence: %d tokens (prompt + max_tokens) of live keys and values"
                            + " take %.1f MiB, %.1f MiB of its %.1f MiB are free; retry later or lower max_tokens",
                    request.entryLength() + 1L + request.params().maxTokens(),
                    bytes / 1048576.0,
                    Math.max(0, kvBudget - (held - bytes)) / 1048576.0,
                    kvBudget / 1048576.0));
        }
        Observation caller = Objects.requireNonNullElse(observations.getCurrentObservation(), Observation.NOOP);
        // The entry is loaded for this request alone: its whole gRPC context (deadline and cancellation) goes along.
        Context requestContext = Context.current();
        Deadline deadline = RequestDeadline.current();
        Observation queued = Observation.createNotStarted("goldfinch.decode.queue", observations)
                .contextualName("queueing")
                .parentObservation(caller.isNoop() ? null : caller)
                .start();
        try {
            return CompletableFuture.runAsync(
                            requestContext.wrap(() -> caller.scoped(() -> {
                                SequenceState state = load(request)
                                        .orElseThrow(() -> new EntryNotFoundException(
                                                "cache entry " + PrefixHasher.hex(request.entryHash()) + " ("
                                                        + request.entryLength() + " tokens) is not in the cache"));
                                Sampler sampler = new Sampler(
                                        request.params(), model.config().vocabSize());
                                // Room for the tokens this request may add, up to a bound: the shared prefix is copied
                                // once, at the size
                                // it needs, instead of at the first step with room for half its length again.
                                state.reserve(state.length()
                                        + 1
                                        + Math.min(request.params().maxTokens(), RESERVE_AHEAD));
                                int[] prompt = Arrays.copyOf(state.tokens(), state.length() + 1);
                                prompt[state.length()] = request.lastPromptToken();
                                sampler.observePrompt(prompt);
                                sampler.replay(request.resumeTokens());
                                joining.add(new Sequence(request, sink, state, sampler, caller, deadline, queued));
                                wake();
                            })),
                            io)
                    .whenComplete((ok, error) -> {
                        if (error != null) {
                            release(request);
                            queued.error(error);
                            queued.stop();
                        }
                    });
        } catch (RuntimeException e) {
            release(request);
            queued.error(e);
            queued.stop();
            throw e;
        }
    }

    private Optional<SequenceState> load(Request r) {
        String key = PrefixHasher.hex(r.entryHash()) + "/" + r.salt();
        SequenceState pristine;
        synchronized (local) {
            pristine = local.get(key);
        }
        if (pristine != null) {
            localHits.increment();
            SequenceState state = pristine.fork();
            model.goldKvDonors().adopt(r.salt(), state);
            return Optional.of(state);
        }
        Optional<SequenceState> restored = cache.restore(r.salt(), r.entryHash(), r.entryLength());
        restored.ifPresent(s -> {
            // Kept without GOLD K/V: they are large, rebuilt or adopted on the next hit.
            SequenceState kept = s.fork();
            kept.dropDerived();
            synchronized (local) {
                local.put(key, kept);
                while (local.size() > localEntries) {
                    local.remove(local.keySet().iterator().next());
                }
            }
        });
        return restored;
    }

    /** Wakes the scheduler: a sequence joined, became ready, or was cancelled. */
    public void wake() {
        lock.lock();
        try {
            work.signal();
        } finally {
            lock.unlock();
        }
    }

    private void loop() {
        while (running) {
            try {
                step();
            } catch (RuntimeException e) {
                log.error("decode step failed; failing its sequences", e);
                for (Sequence s : live) {
                    closeSpans(s);
                    s.sink.fail(e);
                    release(s.request);
                }
                live.clear();
                liveCount.set(0);
            }
        }
    }

    private void step() {
        for (Sequence s; (s = joining.poll()) != null; ) {
            live.add(s);
        }
        live.removeIf(s -> {
            if (s.sink.isCancelled()) {
                s.finish = FinishReason.FINISH_REASON_CANCELLED;
                end(s);
                return true;
            }
            return false;
        });
        liveCount.set(live.size());
        List<Sequence> batch = new ArrayList<>();
        for (Sequence s : live) {
            if (batch.size() < maxBatch && (s.finalStep || s.sink.isReady())) {
                batch.add(s);
            }
        }
        if (batch.isEmpty()) {
            lock.lock();
            try {
                if (joining.isEmpty()) {
                    work.await(20, TimeUnit.MILLISECONDS); // also polls paused streams that became ready
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                running = false;
            } finally {
                lock.unlock();
            }
            return;
        }
        List<GoldFinchModel.Segment> segments = new ArrayList<>(batch.size());
        float[][] logits = new float[batch.size()][];
        for (Sequence s : batch) {
            if (s.firstToken == null) { // its first step (for a resumed sequence: the replay's first)
                s.queued.stop();
                s.firstToken = Observation.createNotStarted("goldfinch.decode.first_token", observations)
                        .contextualName("first token")
                        .parentObservation(s.caller.isNoop() ? null : s.caller)
                        .start();
            }
            boolean noLogits = s.finalStep || s.replaying();
            logits[segments.size()] = noLogits ? NO_LOGITS : s.logits;
            segments.add(new GoldFinchModel.Segment(s.state, new int[] {s.pending}, noLogits ? 1 : 0));
        }
        model.forward(segments, logits);
        batchSizes.record(batch.size());
        for (int i = 0; i < batch.size(); i++) {
            Sequence s = batch.get(i);
            if (s.finalStep) {
                live.remove(s);
                end(s);
                continue;
            }
            if (s.replaying()) {
                s.pending = s.request.resumeTokens()[s.replayed++];
                continue;
            }
            SequenceState afterPrompt = s.generated == 0 && s.request.checkpointAtEnd() ? s.state.fork() : null;
            if (s.generated == 0 && afterPrompt == null) {
                // Its GOLD K/V now cover the prompt: a later request sharing the prefix adopts them instead of
                // rebuilding (a checkpoint write offers them itself).
                model.goldKvDonors().offer(s.request.salt(), s.state);
            }
            if (s.json != null) {
                s.json.mask(logits[i], s.request.params().maxTokens() - s.generated);
            }
            Sampler.Sample sample = s.sampler.sampleWithLogprobs(logits[i]);
            if (s.json != null) {
                s.json.accept(sample.token());
            }
            s.generated++;
            generatedTokens.increment();
            FinishReason finish = null;
            if (sample.token() == WorldTokenizer.END_OF_TEXT) {
                finish = FinishReason.FINISH_REASON_END_OF_TEXT;
            } else {
                s.sampler.accept(sample.token());
                if (s.generated >= s.request.params().maxTokens()) {
                    finish = FinishReason.FINISH_REASON_LENGTH;
                }
            }
            s.pending = sample.token();
            if (afterPrompt != null) {
                // The state after the whole prompt is what a chat's next turn starts with: write it before the
                // first token goes out, so a client that answers at once finds it. The sequence sits out meanwhile.
                live.remove(s);
                FinishReason f = finish;
                s.writes = CompletableFuture.runAsync(() -> s.caller.scoped(() -> writeCheckpoint(s, afterPrompt)), io)
                        .exceptionally(error -> {
                            log.warn("after-prompt checkpoint not written: {}", error.toString());
                            return null;
                        })
                        .thenRun(() -> deliver(s, sample, f, true));
            } else {
                deliver(s, sample, finish, false);
            }
        }
        liveCount.set(live.size());
    }

    /** Sends a sampled token, then ends the sequence or keeps it (re)joined to the batch. */
    private void deliver(Sequence s, Sampler.Sample sample, FinishReason finish, boolean rejoin) {
        s.sink.token(sample, s.generated, finish);
        if (!s.firstTokenSent) {
            s.firstTokenSent = true;
            s.firstToken.stop();
        }
        boolean lastStepNeeded = finish == FinishReason.FINISH_REASON_LENGTH && s.request.checkpointAtEnd();
        if (finish != null) {
            s.finish = finish;
            s.finalStep = lastStepNeeded; // feed the last token too, so the checkpoint covers every token sent
        }
        if (finish == null || lastStepNeeded) {
            if (rejoin) {
                joining.add(s);
                wake();
            }
            return;
        }
        if (!rejoin) {
            live.remove(s);
        }
        end(s);
    }

    /** A sequence left the batch: write its checkpoint if asked, then close its stream. */
    private void end(Sequence s) {
        closeSpans(s);
        if (s.request.checkpointAtEnd() && s.state.length() > s.request.entryLength()) {
            SequenceState finalState = s.state;
            s.writes = s.writes.thenRunAsync(() -> s.caller.scoped(() -> writeCheckpoint(s, finalState)), io);
        }
        s.writes.whenComplete((ok, error) -> {
            release(s.request);
            if (error != null) {
                log.warn("end-of-generation checkpoint not written: {}", error.toString());
            }
            if (s.finish != FinishReason.FINISH_REASON_CANCELLED) {
                s.sink.complete();
            }
        });
    }

    /** A sequence leaving before its first token still ends the span it was in. */
    private static void closeSpans(Sequence s) {
        if (s.firstToken == null) {
            s.queued.stop();
        } else if (!s.firstTokenSent) {
            s.firstTokenSent = true;
            s.firstToken.stop();
        }
    }

    /**
     * The stream goes on (first token) or ends only after these writes, so they keep to the request's deadline;
     * not to its cancellation: a generation cut short still leaves its state for the chat's next turn.
     */
    private void writeCheckpoint(Sequence s, SequenceState state) {
        Request r = s.request;
        RequestDeadline.within(
                s.deadline,
                () -> cache.persist(
                        r.salt(), state, r.entryLength() / cache.hasher().blockSize()));
    }

    @Override
    public void close() {
        running = false;
        wake();
        try {
            scheduler.join(5000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Half the heap: live K/V are heap arrays, the weights are not (mapped or off-heap segments). */
    public static long defaultKvBudget() {
        return Runtime.getRuntime().maxMemory() / 2;
    }

    /** Bytes of live K/V {@code r} may come to hold: its prompt and every token it may generate. */
    private long liveBytes(Request r) {
        return (r.entryLength() + 1L + r.params().maxTokens()) * model.liveBytesPerToken();
    }

    /** Bytes of live K/V admitted sequences may hold together (see {@link #kvBudget}). */
    public long kvBytesAdmitted() {
        return kvHeld.get();
    }

    /** A sequence ends, fails or is refused: its slot and its bytes are free again. */
    private void release(Request r) {
        admitted.decrementAndGet();
        kvHeld.addAndGet(-liveBytes(r));
    }

    /** The sequence's live keys and values would not fit in the replica's budget beside those admitted. */
    public static final class KvBudgetExceeded extends dev.goldfinch.error.TypedFailure {
        public KvBudgetExceeded(String message) {
            super(dev.goldfinch.error.FailureKind.RESOURCE_EXHAUSTED, message);
        }
    }

    /** The requested entry is in no cache (evicted, expired, or never written): the gateway prefills again. */
    public static final class EntryNotFoundException extends dev.goldfinch.error.TypedFailure {
        public EntryNotFoundException(String message) {
            super(dev.goldfinch.error.FailureKind.NOT_FOUND, message);
        }
    }
}
