package dev.goldfinch.prefill;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.cache.InMemoryCacheBackend;
import dev.goldfinch.cache.PrefixCache;
import dev.goldfinch.cache.PrefixCacheStore;
import dev.goldfinch.cache.PrefixHasher;
import dev.goldfinch.cache.client.BackgroundWrites;
import dev.goldfinch.cache.client.EntrySigner;
import dev.goldfinch.cache.client.StateCache;
import dev.goldfinch.error.FailureKind;
import dev.goldfinch.error.TypedFailure;
import dev.goldfinch.model.GoldFinchModel;
import dev.goldfinch.model.ModelShapes;
import dev.goldfinch.model.RandomWeights;
import dev.goldfinch.model.state.SequenceState;
import dev.goldfinch.model.state.StateCodec;
import dev.goldfinch.model.tensor.DType;
import dev.goldfinch.proto.internal.v1.EntryKind;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Clock;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

class PrefillEngineTest {
    static final GoldFinchModel MODEL =
            RandomWeights.model(ModelShapes.parse("layers=2,width=64,head=32,vocab=300"), 3, DType.F32);
    static final int B = 16;
    final PrefixCache store = new PrefixCache(
            new InMemoryCacheBackend(256L << 20, Duration.ofHours(1), Clock.systemUTC()), new PrefixHasher(B));
    final StateCache cache = new StateCache(
            store,
            new PrefixHasher(B),
            MODEL,
            StateCodec.FloatType.F32,
            EntrySigner.withRandomKey(new SimpleMeterRegistry()));
    final ExecutorService executor = Executors.newSingleThreadExecutor();
    final BackgroundWrites writes = new BackgroundWrites("prefill", 64, new SimpleMeterRegistry());

    PrefillEngine engine(StateCache cache) {
        return new PrefillEngine(MODEL, cache, executor, writes);
    }

    @AfterAll
    static void close() {
        MODEL.close();
    }

    static int[] prompt(int n, long seed) {
        return new Random(seed).ints(n, 1, 300).toArray();
    }

    @Test
    void placesCheckpointsWhereArchitectureSaysAndResumesFromThem() {
        PrefillEngine engine = engine(cache);
        int[] tokens = prompt(700, 1);
        PrefillEngine.Result cold = engine.submit(tokens, "", true).join();
        engine.awaitCheckpointWrites();
        assertEquals(0, cold.cachedTokens());
        assertEquals(699, cold.computedTokens());
        // After blocks 1, 2, 4, 8, 16, then every 16 blocks (32: 512 tokens), and at the prompt's end.
        for (int length : new int[] {16, 32, 64, 128, 256, 512, 699}) {
            assertEquals(length, cache.lookup("", tokens, length).checkpointLength(), "checkpoint at " + length);
        }
        assertEquals(512, cache.lookup("", tokens, 698).checkpointLength(), "nothing between 512 and the end");

        int[] other = tokens.clone();
        other[300] = (other[300] + 1) % 300; // diverges inside block 19: the key chain matches 18 blocks
        PrefillEngine.Result branch = engine.submit(other, "", true).join();
        engine.awaitCheckpointWrites();
        assertEquals(256, branch.cachedTokens(), "resumes from the deepest checkpoint before the divergence");
        assertEquals(
                288,
                cache.lookup("", tokens, 300).checkpointLength(),
                "a branch-point checkpoint where the shared chain ends");

        // The restored state is the state a cold run reaches, bit for bit.
        SequenceState restored = cache.restore("", cold.hash(), 699).orElseThrow();
        SequenceState direct = MODEL.newState();
        MODEL.prefill(direct, java.util.Arrays.copyOf(tokens, 699));
        assertArrayEquals(MODEL.step(direct, tokens[699]), MODEL.step(restored, tokens[699]));
    }

    @Test
    void chunksBetweenCheckpointsSkipGoldAndTheEntryStillContinuesAsADirectPrefill() {
        PrefillEngine engine = engine(cache);
        int[] tokens = prompt(1300, 4); // no checkpoints but the end: two chunks of 512 skip GOLD, the last runs it
        PrefillEngine.Result result = engine.submit(tokens, "", false).join();
        engine.awaitCheckpointWrites();
        SequenceState entry = cache.restore("", result.hash(), 1299).orElseThrow();
        SequenceState direct = MODEL.newState();
        MODEL.prefill(direct, Arrays.copyOf(tokens, 1299));
        assertArrayEquals(MODEL.step(direct, tokens[1299]), MODEL.step(entry, tokens[1299]), 1e-5f);
    }

    /**
     * An earlier prompt left a signed checkpoint at 128 tokens; an attacker who reaches the store swaps it
     * (Forget, then Put: valid CRC) for a well-formed one — the right tokens, a poisoned recurrent state.
     * Then a 200-token prompt sharing those 128 tokens is prefilled. Returns the next-token logits after it.
     */
    float[] logitsAfterAPlantedCheckpoint(EntrySigner signer, int expectedCachedTokens) {
        PrefixCache shared = new PrefixCache(
                new InMemoryCacheBackend(256L << 20, Duration.ofHours(1), Clock.systemUTC()), new PrefixHasher(B));
        StateCache victim = new StateCache(shared, new PrefixHasher(B), MODEL, StateCodec.FloatType.F32, signer);
        PrefillEngine engine = engine(victim);
        int[] tokens = prompt(200, 9);
        engine.submit(Arrays.copyOf(tokens, 129), "", true).join();
        engine.awaitCheckpointWrites();

        byte[] at128 = victim.hasher().chain(victim.modelId(), "", tokens, 128)[128 / B];
        SequenceState poisoned = MODEL.newState();
        MODEL.prefill(poisoned, Arrays.copyOf(tokens, 128));
        Arrays.fill(poisoned.wkv(0), 0.5f);
        assertTrue(shared.forget(victim.modelId(), EntryKind.ENTRY_KIND_CHECKPOINT, at128));
        assertTrue(shared.put(
                victim.modelId(),
                EntryKind.ENTRY_KIND_CHECKPOINT,
                at128,
                128,
                null,
                StateCodec.encode(poisoned, StateCodec.FloatType.F32, 0, 128)));

        PrefillEngine.Result result = engine.submit(tokens, "", true).join();
        assertEquals(expectedCachedTokens, result.cachedTokens());
        SequenceState entry = victim.restore("", result.hash(), 199).orElseThrow();
        return MODEL.step(entry, tokens[199]);
    }

    @Test
    void aPlantedCheckpointIsNeverServedAndThePrefillEqualsAColdRun() {
        int[] tokens = prompt(200, 9);
        SequenceState direct = MODEL.newState();
        MODEL.prefill(direct, Arrays.copyOf(tokens, 199));
        float[] cold = MODEL.step(direct, tokens[199]);

        // The control: a mesh that does not sign resumes from the planted state, and answers differently.
        float[] unsigned = logitsAfterAPlantedCheckpoint(EntrySigner.unsigned(new SimpleMeterRegistry()), 128);
        assertFalse(Arrays.equals(cold, unsigned), "the planted state steers an unsigned mesh");

        SimpleMeterRegistry meters = new SimpleMeterRegistry();
        assertArrayEquals(cold, logitsAfterAPlantedCheckpoint(EntrySigner.withRandomKey(meters), 0));
        assertEquals(
                1,
                meters.counter(EntrySigner.REJECTED_METRIC, "reason", "signature")
                        .count());
    }

    @Test
    void identicalPrefillsInFlightAreComputedOnce() throws Exception {
        CountDownLatch gate = new CountDownLatch(1);
        executor.execute(() -> {
            try {
                gate.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        PrefillEngine engine = engine(cache);
        int[] tokens = prompt(90, 2);
        CompletableFuture<PrefillEngine.Result> a = engine.submit(tokens, "s", true);
        CompletableFuture<PrefillEngine.Result> b = engine.submit(tokens.clone(), "s", true);
        CompletableFuture<PrefillEngine.Result> otherSalt = engine.submit(tokens, "t", true);
        assertSame(a, b);
        assertTrue(a != otherSalt);
        gate.countDown();
        assertEquals(89, a.get().computedTokens());
        assertEquals(89, engine.submit(tokens, "s", true).join().cachedTokens(), "afterwards, a full hit");
    }

    @Test
    void aPrefillEveryCallerAbandonedStopsAndOneStillWantedRuns() throws Exception {
        CountDownLatch gate = new CountDownLatch(1);
        executor.execute(() -> {
            try {
                gate.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        PrefillEngine engine = engine(cache);
        int[] abandonedPrompt = prompt(2000, 7);
        PrefillEngine.Ticket a = engine.join(abandonedPrompt, "s", true);
        PrefillEngine.Ticket b = engine.join(abandonedPrompt.clone(), "s", true);
        int[] wantedPrompt = prompt(600, 8);
        PrefillEngine.Ticket kept = engine.join(wantedPrompt, "s", true);
        PrefillEngine.Ticket left = engine.join(wantedPrompt, "s", true);
        a.abandon().run();
        b.abandon().run();
        b.abandon().run(); // twice by one caller counts once
        left.abandon().run();
        gate.countDown();
        ExecutionException stopped =
                assertThrows(ExecutionException.class, () -> a.result().get());
        TypedFailure failure = assertInstanceOf(TypedFailure.class, stopped.getCause());
        assertEquals(FailureKind.CANCELLED, failure.kind());
        assertEquals(599, kept.result().get().computedTokens(), "one caller still wanted it");
        // Nothing of the abandoned prompt was computed: a later prefill of it starts from scratch.
        assertEquals(0, engine.submit(abandonedPrompt, "s", true).join().cachedTokens());
    }

    /**
     * The checkpoints on the way are written by the background writer; the answer waits only for the entry
     * decode pulls. With the writer stuck, prefills still answer, and writes beyond its queue are dropped
     * and counted.
     */
    @Test
    void answersWithoutWaitingForItsCheckpointWritesAndDropsThemUnderPressure() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        PrefixCacheStore stuck = new PrefixCacheStore() {
            @Override
            public Lookup lookup(String model, String salt, int[] tokens, int maxLength) {
                return store.lookup(model, salt, tokens, maxLength);
            }

            @Override
            public int putAll(String model, List<Entry> entries) {
                if (Thread.currentThread().getName().contains("cache-writer")) {
                    try {
                        release.await();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
                return store.putAll(model, entries);
            }

            @Override
            public List<Optional<byte[]>> getAll(String model, EntryKind kind, List<byte[]> hashes) {
                return store.getAll(model, kind, hashes);
            }

            @Override
            public boolean forget(String model, EntryKind kind, byte[] hash) {
                return store.forget(model, kind, hash);
            }

            @Override
            public StoreStats stats() {
                return store.stats();
            }

            @Override
            public void close() {}
        };
        SimpleMeterRegistry meters = new SimpleMeterRegistry();
        BackgroundWrites small = new BackgroundWrites("prefill", 2, meters);
        StateCache slowCache = new StateCache(
                stuck, new PrefixHasher(B), MODEL, StateCodec.FloatType.F32, EntrySigner.unsigned(meters));
        PrefillEngine engine = new PrefillEngine(MODEL, slowCache, executor, small);
        int[] tokens = prompt(300, 5); // checkpoints at 16, 32, 64, 128, 256 on the way, then the entry at 299
        PrefillEngine.Result r = engine.submit(tokens, "slow", true).get(60, TimeUnit.SECONDS);
        assertEquals(299, r.computedTokens());
        // One write is stuck in the store, two wait in the queue, two were dropped.
        assertEquals(2, small.dropped());
        assertEquals(
                2.0,
                meters.counter("goldfinch.cache.writes.dropped", "service", "prefill")
                        .count());
        assertEquals(299, slowCache.lookup("slow", tokens, 299).checkpointLength(), "the entry is there at once");
        assertEquals(0, slowCache.lookup("slow", tokens, 298).checkpointLength(), "none on the way yet");
        release.countDown();
        engine.awaitCheckpointWrites();
        assertEquals(64, slowCache.lookup("slow", tokens, 298).checkpointLength(), "the queued ones landed");
        small.close();
    }
}
