package dev.goldfinch.prefill;

import dev.goldfinch.cache.PrefixCacheStore;
import dev.goldfinch.cache.PrefixHasher;
import dev.goldfinch.cache.client.BackgroundWrites;
import dev.goldfinch.cache.client.RequestDeadline;
import dev.goldfinch.cache.client.StateCache;
import dev.goldfinch.error.FailureKind;
import dev.goldfinch.error.TypedFailure;
import dev.goldfinch.model.GoldFinchModel;
import dev.goldfinch.model.sampling.Sampler;
import dev.goldfinch.model.state.SequenceState;
import io.grpc.Deadline;
import io.micrometer.observation.Observation;
import io.micrometer.observation.ObservationRegistry;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

/**
 * Prefill: the state after all of a prompt but its last token, resumed from the deepest usable cached
 * checkpoint and written back as key blocks and checkpoints where ARCHITECTURE §4 places them — after
 * blocks 1, 2, 4, 8, 16, then every 16 blocks; at the branch point (where the cached key chain ends, when
 * it reaches past the deepest checkpoint); and at the end. Identical prefills in flight at once are
 * computed once. Work runs on {@code executor}; the model splits each matrix over its own pool.
 *
 * <p>Only the entry decode pulls, the state after the whole prompt, is written before the answer (with every
 * key block it needs); the checkpoints on the way go to {@code writes}, off the request path, and may be
 * dropped when they pile up.
 *
 * <p>The cache calls made for the callers (the lookup, the restore, the entry written before the answer) carry
 * the latest of their deadlines ({@link RequestDeadline}), never their cancellation: a prefill is shared, and one
 * caller leaving must not cut short what the others wait for (abandonment stops it between chunks instead).
 */
public final class PrefillEngine {
    /** Tokens per forward pass: bounds activation memory on long prompts without hurting throughput. */
    static final int CHUNK_TOKENS = 512;

    /** Tokens per forward pass when every position's logits are kept (a row is a whole vocabulary of floats). */
    static final int SCORED_CHUNK_TOKENS = 32;

    /** A prompt whose live GOLD K/V would exceed this fraction (1/n) of the heap is prefilled holding none. */
    static final int LIVE_KV_HEAP_SHARE = 8;

    /**
     * {@code length} counts the initial state's own positions too (it is the entry's length); {@code cachedTokens}
     * only the prompt's. {@code promptLogprobs}: when the prompt was scored, tokens[1 .. n-1) each with its logprob
     * and top alternatives; else empty.
     */
    public record Result(
            byte[] hash, int length, int cachedTokens, int computedTokens, List<Sampler.Sample> promptLogprobs) {
        public Result(byte[] hash, int length, int cachedTokens, int computedTokens) {
            this(hash, length, cachedTokens, computedTokens, List.of());
        }
    }

    /**
     * One caller's claim on a prefill, shared with identical ones: its result, and {@code abandon}, for a
     * caller that went away. Once every caller of a prefill has abandoned it, it stops at the next chunk
     * (the checkpoints written so far stay) and fails with a CANCELLED {@link TypedFailure}.
     */
    public record Ticket(CompletableFuture<Result> result, Runnable abandon) {}

    /**
     * A prefill in progress, how many callers still want it, and the latest of their deadlines (null: one
     * has none), which bounds the cache calls made for them.
     */
    private record Flight(CompletableFuture<Result> result, AtomicInteger wanted, AtomicReference<Deadline> deadline) {}

    private final GoldFinchModel model;
    private final StateCache cache;
    private final ExecutorService executor;
    private final Map<String, Flight> inFlight = new ConcurrentHashMap<>();
    private final BackgroundWrites writes;
    private final ObservationRegistry observations;

    public PrefillEngine(GoldFinchModel model, StateCache cache, ExecutorService executor, BackgroundWrites writes) {
        this(model, cache, executor, writes, ObservationRegistry.NOOP);
    }

    /**
     * With {@code observations}, a prefill's prefix lookup, compute and entry transfers are spans of the
     * request that asked for it (the cache store's calls under them).
     */
    public PrefillEngine(
            GoldFinchModel model,
            StateCache cache,
            ExecutorService executor,
            BackgroundWrites writes,
            ObservationRegistry observations) {
        this.model = model;
        this.cache = cache;
        this.executor = executor;
        this.writes = writes;
        this.observations = observations;
    }

    /** Waits until the checkpoint writes queued so far have run (tests). */
    void awaitCheckpointWrites() {
        writes.awaitIdle();
    }

    public GoldFinchModel model() {
        return model;
    }

    public StateCache cache() {
        return cache;
    }

    /** Prefills {@code tokens[0..n-1)}; joins an identical prefill already running. */
    public CompletableFuture<Result> submit(int[] tokens, String salt, boolean reuseCache) {
        return join(tokens, salt, reuseCache, null).result();
    }

    /** As {@link #submit}, for a caller that may go away before the result. */
    public Ticket join(int[] tokens, String salt, boolean reuseCache) {
        return join(tokens, salt, reuseCache, -1, null);
    }

    /**
     * As {@link #join(int[], String, boolean)}, scoring the prompt when {@code promptLogprobs} >= 0 (that many top
     * alternatives per position): the whole prompt is computed then, since no checkpoint holds logits.
     */
    public Ticket join(int[] tokens, String salt, boolean reuseCache, int promptLogprobs) {
        return join(tokens, salt, reuseCache, promptLogprobs, null);
    }

    /** As {@link #join(int[], String, boolean, int, InitialStateLibrary.Named)}, not scoring the prompt. */
    public Ticket join(int[] prompt, String requestSalt, boolean reuseCache, InitialStateLibrary.Named initial) {
        return join(prompt, requestSalt, reuseCache, -1, initial);
    }

    /**
     * As {@link #join(int[], String, boolean, int)}; with {@code initial} (may be null), from that state, in its
     * namespace ({@link InitialStateLibrary.Named#namespace}): the prompt then continues the state's own tokens.
     */
    public Ticket join(
            int[] prompt,
            String requestSalt,
            boolean reuseCache,
            int promptLogprobs,
            InitialStateLibrary.Named initial) {
        int[] tokens = prompt;
        String salt = requestSalt;
        if (initial != null) {
            int[] own = initial.state().tokens();
            tokens = Arrays.copyOf(own, own.length + prompt.length);
            System.arraycopy(prompt, 0, tokens, own.length, prompt.length);
            salt = initial.namespace(requestSalt);
        }
        int[] effectiveTokens = tokens;
        String effectiveSalt = salt;
        String key = PrefixHasher.hex(cache.hasher().prefix(cache.modelId(), salt, tokens, tokens.length - 1)) + ":"
                + reuseCache + ":" + promptLogprobs;
        Deadline deadline = RequestDeadline.current();
        Flight flight = new Flight(new CompletableFuture<>(), new AtomicInteger(1), new AtomicReference<>(deadline));
        Flight running = inFlight.putIfAbsent(key, flight);
        if (running != null) {
            running.deadline().accumulateAndGet(deadline, RequestDeadline::later);
            running.wanted().incrementAndGet();
            return ticket(running);
        }
        CompletableFuture<Result> mine = flight.result();
        // The caller's span (the gRPC server's), continued on the prefill thread until the result is handed over.
        Observation caller =
                java.util.Objects.requireNonNullElse(observations.getCurrentObservation(), Observation.NOOP);
        try {
            executor.execute(() -> caller.scoped(() -> {
                Result result = null;
                Throwable failure = null;
                try {
                    result = prefill(
                            effectiveTokens,
                            effectiveSalt,
                            reuseCache,
                            promptLogprobs,
                            () -> flight.wanted().get() <= 0,
                            initial,
                            flight.deadline()::get);
                } catch (Throwable t) {
                    failure = t;
                }
                inFlight.remove(key, flight); // before completing: a caller woken by it must not join a finished run
                if (failure != null) {
                    mine.completeExceptionally(failure);
                } else {
                    mine.complete(result);
                }
            }));
        } catch (RuntimeException e) { // rejected: queue full
            inFlight.remove(key, flight);
            mine.completeExceptionally(e);
        }
        return ticket(flight);
    }

    private static Ticket ticket(Flight flight) {
        AtomicBoolean abandoned = new AtomicBoolean();
        return new Ticket(flight.result(), () -> {
            if (abandoned.compareAndSet(false, true)) {
                flight.wanted().decrementAndGet();
            }
        });
    }

    Result prefill(int[] tokens, String salt, boolean reuseCache) {
        Deadline deadline = RequestDeadline.current();
        return prefill(tokens, salt, reuseCache, -1, () -> false, null, () -> deadline);
    }

    private Result prefill(
            int[] tokens,
            String salt,
            boolean reuseCache,
            int promptLogprobs,
            BooleanSupplier abandoned,
            InitialStateLibrary.Named initial,
            Supplier<Deadline> callersDeadline) {
        int own = initial == null ? 0 : initial.length();
        int target = tokens.length - 1;
        int b = cache.hasher().blockSize();
        boolean scored = promptLogprobs >= 0;
        List<Sampler.Sample> scores = new ArrayList<>();
        PrefixCacheStore.Lookup hit = reuseCache && !scored
                ? span("goldfinch.prefill.prefix_lookup", "prefix lookup")
                        .observe(() ->
                                RequestDeadline.within(callersDeadline.get(), () -> cache.lookup(salt, tokens, target)))
                : PrefixCacheStore.Lookup.MISS;
        SequenceState state = null;
        if (hit.hit()) {
            if (hit.checkpointLength() == target) {
                return new Result(hit.checkpointHash(), target, target - own, 0);
            }
            state = transfer("read")
                    .observe(() -> RequestDeadline.within(
                            callersDeadline.get(),
                            () -> cache.restore(salt, hit.checkpointHash(), hit.checkpointLength())))
                    .orElse(null);
        }
        int cached = state == null ? 0 : state.length();
        if (state == null && initial != null) {
            state = startFrom(initial, salt, tokens, reuseCache, callersDeadline);
        }
        if (state == null) {
            state = model.newState();
        }
        int resumeAt = state.length();
        // Key blocks already stored (and so not rewritten): those the lookup saw, when reusing. A failed restore
        // may have deleted some (a forged or corrupt block), so then every block is offered again.
        int blocksStored = reuseCache && (!hit.hit() || cached > 0) ? hit.keyBlocks() : 0;
        int handOffFrom = blocksStored; // the background writes may not have landed when decode reads
        TreeSet<Integer> checkpoints = new TreeSet<>();
        if (reuseCache) {
            for (int blocks : List.of(1, 2, 4, 8, 16)) {
                checkpoints.add(blocks * b);
            }
            for (int blocks = 32; blocks * b < target; blocks += 16) {
                checkpoints.add(blocks * b);
            }
            if (hit.keyBlocks() * b > cached) {
                checkpoints.add(hit.keyBlocks() * b); // branch point: the next prompt with this prefix hits here
            }
        }
        checkpoints.add(target);
        // Decode rebuilds the GOLD K/V from the stored keys, so a prefill keeps them only to reuse them at its next
        // checkpoint: chunks between checkpoints skip GOLD, and a prompt whose live K/V would crowd the heap holds
        // none, streaming them at each checkpoint instead (memory then grows with the prompt by keys and ids only).
        GoldFinchModel.GoldMode atCheckpoint =
                (long) target * model.liveBytesPerToken() > Runtime.getRuntime().maxMemory() / LIVE_KV_HEAP_SHARE
                        ? GoldFinchModel.GoldMode.STREAMED
                        : GoldFinchModel.GoldMode.LIVE;
        int at = resumeAt;
        for (int stop : checkpoints.subSet(resumeAt, false, target, true)) {
            Observation compute = span("goldfinch.prefill.compute", "prefill compute")
                    .highCardinalityKeyValue("tokens", Integer.toString(stop - at))
                    .start();
            try (Observation.Scope scope = compute.openScope()) {
                while (at < stop) {
                    if (abandoned.getAsBoolean()) {
                        throw new TypedFailure(
                                FailureKind.CANCELLED, "prefill abandoned by its callers after " + at + " tokens");
                    }
                    int to = scored
                            ? Math.min(stop, at + SCORED_CHUNK_TOKENS)
                            : model.keysOnlyChunkEnd(at, stop, CHUNK_TOKENS);
                    int[] chunk = Arrays.copyOfRange(tokens, at, to);
                    GoldFinchModel.GoldMode gold = scored
                            ? GoldFinchModel.GoldMode.LIVE // every row's logits: GOLD over all of them
                            : to < stop ? GoldFinchModel.GoldMode.SKIPPED : atCheckpoint;
                    float[] logits = model.forward(
                                    List.of(new GoldFinchModel.Segment(state, chunk, scored ? 0 : chunk.length, gold)))[
                            0];
                    int vocab = model.config().vocabSize();
                    for (int row = 0; scored && row < chunk.length; row++) { // row r scores the token after it
                        scores.add(Sampler.score(logits, row * vocab, vocab, tokens[at + row + 1], promptLogprobs));
                    }
                    at = to;
                }
            } catch (RuntimeException e) {
                compute.error(e);
                throw e;
            } finally {
                compute.stop();
            }
            if (stop < target) {
                SequenceState snapshot = state.fork(); // the state moves on while the write waits
                int stored = blocksStored;
                // Off the request path (no span of it), and for later requests: no caller's deadline either.
                writes.submit(() -> cache.persist(salt, snapshot, stored));
                blocksStored = Math.max(blocksStored, stop / b);
            }
        }
        // The entry decode pulls (for a one-token prompt, the empty state): written before answering.
        SequenceState entry = state;
        transfer("write")
                .observe(() ->
                        RequestDeadline.within(callersDeadline.get(), () -> cache.persist(salt, entry, handOffFrom)));
        return new Result(
                cache.hasher().prefix(cache.modelId(), salt, tokens, target),
                target,
                Math.max(0, cached - own),
                target - resumeAt,
                List.copyOf(scores));
    }

    /**
     * The initial state as the cache holds it, the first entry of its namespace; when the cache lost it (or was
     * never given it), the loaded copy, written back so that decode replicas and later prefills find it there.
     */
    private SequenceState startFrom(
            InitialStateLibrary.Named initial,
            String salt,
            int[] tokens,
            boolean reuseCache,
            Supplier<Deadline> callersDeadline) {
        if (!reuseCache) {
            return initial.state().fork();
        }
        int own = initial.length();
        byte[] hash = cache.hasher().prefix(cache.modelId(), salt, tokens, own);
        return transfer("read")
                .observe(() -> RequestDeadline.within(callersDeadline.get(), () -> cache.restore(salt, hash, own)))
                .orElseGet(() -> {
                    SequenceState fresh = initial.state().fork();
                    transfer("write")
                            .observe(() ->
                                    RequestDeadline.within(callersDeadline.get(), () -> cache.persist(salt, fresh, 0)));
                    return fresh;
                });
    }

    private Observation span(String name, String spanName) {
        return Observation.createNotStarted(name, observations).contextualName(spanName);
    }

    /** An entry moving between this service and the cache store: {@code read} restores, {@code write} persists. */
    private Observation transfer(String direction) {
        return span("goldfinch.prefill.entry_transfer", "entry transfer " + direction)
                .lowCardinalityKeyValue("direction", direction);
    }

    /** The checkpoint after {@code length} tokens, for tests and tools. */
    Optional<SequenceState> restore(String salt, byte[] hash, int length) {
        return cache.restore(salt, hash, length);
    }
}
