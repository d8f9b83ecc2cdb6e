package dev.goldfinch.decode;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.cache.InMemoryCacheBackend;
import dev.goldfinch.cache.PrefixCache;
import dev.goldfinch.cache.PrefixHasher;
import dev.goldfinch.cache.client.EntrySigner;
import dev.goldfinch.cache.client.StateCache;
import dev.goldfinch.model.GoldFinchModel;
import dev.goldfinch.model.ModelShapes;
import dev.goldfinch.model.RandomWeights;
import dev.goldfinch.model.constrain.JsonGrammar;
import dev.goldfinch.model.constrain.JsonGrammars;
import dev.goldfinch.model.sampling.Sampler;
import dev.goldfinch.model.sampling.SamplingParams;
import dev.goldfinch.model.state.SequenceState;
import dev.goldfinch.model.state.StateCodec;
import dev.goldfinch.model.tensor.DType;
import dev.goldfinch.model.tokenizer.WorldTokenizer;
import dev.goldfinch.proto.v1.FinishReason;
import io.grpc.Status;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.micrometer.observation.ObservationRegistry;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Continuous batching: sequences that share steps get exactly the tokens they get alone. */
class DecodeEngineTest {
    static final GoldFinchModel MODEL =
            RandomWeights.model(ModelShapes.parse("layers=3,width=64,head=32,vocab=400"), 5, DType.F32);
    final PrefixCache store = new PrefixCache(
            new InMemoryCacheBackend(64L << 20, Duration.ofHours(1), Clock.systemUTC()), new PrefixHasher(16));
    final StateCache cache = new StateCache(
            store,
            new PrefixHasher(16),
            MODEL,
            StateCodec.FloatType.F32,
            EntrySigner.withRandomKey(new SimpleMeterRegistry()));
    final ExecutorService io = Executors.newVirtualThreadPerTaskExecutor();
    final SimpleMeterRegistry meters = new SimpleMeterRegistry();
    DecodeEngine engine;

    @AfterEach
    void tearDown() {
        if (engine != null) {
            engine.close();
        }
        io.shutdown();
    }

    /** Writes the entry for {@code prompt} minus its last token, as prefill would; returns the request. */
    DecodeEngine.Request entry(int[] prompt, long seed, int maxTokens) {
        SequenceState s = MODEL.newState();
        MODEL.prefill(s, Arrays.copyOf(prompt, prompt.length - 1));
        byte[] hash = cache.persist("", s, 0);
        SamplingParams params =
                SamplingParams.defaults().withTemperature(1.0).withSeed(seed).withMaxTokens(maxTokens);
        return new DecodeEngine.Request(hash, prompt.length - 1, prompt[prompt.length - 1], params, "", false);
    }

    static final class Collector implements TokenSink {
        final List<Integer> tokens = new ArrayList<>();
        final CompletableFuture<FinishReason> done = new CompletableFuture<>();
        FinishReason finish;
        volatile boolean ready = true;

        @Override
        public boolean isReady() {
            return ready;
        }

        @Override
        public boolean isCancelled() {
            return false;
        }

        @Override
        public void token(Sampler.Sample sample, int generated, FinishReason finish) {
            tokens.add(sample.token());
            this.finish = finish;
        }

        @Override
        public void complete() {
            done.complete(finish);
        }

        @Override
        public void fail(Throwable error) {
            done.completeExceptionally(error);
        }
    }

    Collector alone(DecodeEngine.Request r) throws Exception {
        Collector c = new Collector();
        engine.submit(r, c).get(30, TimeUnit.SECONDS);
        c.done.get(30, TimeUnit.SECONDS);
        return c;
    }

    @Test
    void sequencesSharingStepsGetTheTokensTheyGetAlone() throws Exception {
        engine = new DecodeEngine(MODEL, cache, io, 8, 8, 4, meters);
        Random random = new Random(1);
        List<DecodeEngine.Request> requests = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            requests.add(entry(random.ints(20 + 7 * i, 1, 400).toArray(), 100 + i, 6 + 5 * i));
        }
        List<Collector> expected = new ArrayList<>();
        for (DecodeEngine.Request r : requests) {
            expected.add(alone(r));
        }
        // Now all at once, joining while others are mid-generation; one reader pauses for a while (flow control).
        List<Collector> sinks = new ArrayList<>();
        for (int i = 0; i < requests.size(); i++) {
            Collector c = new Collector();
            c.ready = i != 1;
            sinks.add(c);
            engine.submit(requests.get(i), c);
            Thread.sleep(3);
        }
        Thread.sleep(50);
        sinks.get(1).ready = true;
        engine.wake();
        for (int i = 0; i < requests.size(); i++) {
            Collector solo = expected.get(i);
            assertEquals(solo.finish, sinks.get(i).done.get(30, TimeUnit.SECONDS), "sequence " + i);
            assertEquals(solo.tokens, sinks.get(i).tokens, "sequence " + i);
            // Length-limited runs stop at max_tokens; end-of-text ones on token 0.
            assertEquals(
                    solo.finish == FinishReason.FINISH_REASON_LENGTH
                            ? requests.get(i).params().maxTokens()
                            : solo.tokens.size(),
                    solo.tokens.size());
            assertTrue(solo.finish != FinishReason.FINISH_REASON_END_OF_TEXT || solo.tokens.getLast() == 0);
        }
        assertTrue(meters.get("goldfinch.decode.batch_size").summary().max() >= 2, "steps really were shared");
        assertEquals(0, engine.load());
    }

    @Test
    void aResumedSequenceContinuesWithTheTokensOfAnUndisturbedRun() throws Exception {
        engine = new DecodeEngine(MODEL, cache, io, 8, 8, 4, meters);
        Random random = new Random(2);
        int resumed = 0;
        for (int i = 0; i < 6; i++) {
            DecodeEngine.Request r = entry(random.ints(30, 1, 400).toArray(), 200 + i, 40);
            Collector solo = alone(r);
            if (solo.tokens.size() < 4) {
                continue; // ended at once: nothing to resume in between
            }
            int cut = solo.tokens.size() / 2;
            int[] sent = solo.tokens.subList(0, cut).stream()
                    .mapToInt(Integer::intValue)
                    .toArray();
            Collector rest = alone(new DecodeEngine.Request(
                    r.entryHash(), r.entryLength(), r.lastPromptToken(), r.params(), r.salt(), false, sent, null));
            List<Integer> joined = new ArrayList<>(solo.tokens.subList(0, cut));
            joined.addAll(rest.tokens);
            assertEquals(solo.tokens, joined, "sequence " + i + " resumed after " + cut + " tokens");
            assertEquals(solo.finish, rest.finish);
            resumed++;
        }
        assertTrue(resumed >= 3, "only " + resumed + " runs were long enough to resume");
        assertEquals(0, engine.load());
    }

    @Test
    void aMissingEntryFailsAndAFullReplicaRefuses() throws Exception {
        engine = new DecodeEngine(MODEL, cache, io, 1, 8, 4, meters);
        DecodeEngine.Request missing =
                new DecodeEngine.Request(new byte[16], 10, 5, SamplingParams.greedy(3), "", false);
        ExecutionException e = assertThrows(
                ExecutionException.class,
                () -> engine.submit(missing, new Collector()).get(10, TimeUnit.SECONDS));
        assertInstanceOf(DecodeEngine.EntryNotFoundException.class, e.getCause());
        assertEquals(0, engine.load());

        Collector paused = new Collector();
        paused.ready = false;
        engine.submit(entry(new Random(2).ints(10, 1, 400).toArray(), 1, 3), paused);
        assertThrows(
                RejectedExecutionException.class,
                () -> engine.submit(entry(new Random(3).ints(10, 1, 400).toArray(), 1, 3), new Collector()));
        paused.ready = true;
        engine.wake();
        paused.done.get(30, TimeUnit.SECONDS);
    }

    @Test
    void sequencesAreAdmittedByTheLiveBytesTheyWillHold() throws Exception {
        long perToken = MODEL.liveBytesPerToken();
        assertTrue(perToken > 0, "the model has GOLD layers");
        // Room for 100 tokens of live K/V; each request counts prompt (entry + last token) + max_tokens.
        engine = new DecodeEngine(MODEL, cache, io, 8, 8, 4, 100 * perToken, meters, ObservationRegistry.NOOP);
        Collector paused = new Collector();
        paused.ready = false;
        engine.submit(entry(new Random(7).ints(10, 1, 400).toArray(), 1, 60), paused); // 70 tokens
        assertEquals(70 * perToken, engine.kvBytesAdmitted());
        DecodeEngine.Request tooMany = entry(new Random(8).ints(10, 1, 400).toArray(), 2, 40); // 50: 120 > 100
        DecodeEngine.KvBudgetExceeded refused =
                assertThrows(DecodeEngine.KvBudgetExceeded.class, () -> engine.submit(tooMany, new Collector()));
        assertEquals(
                Status.Code.RESOURCE_EXHAUSTED,
                dev.goldfinch.service.GrpcErrors.toStatus(refused).getStatus().getCode(),
                "typed through the one error table");
        assertTrue(refused.getMessage().contains("max_tokens"), refused.getMessage());
        DecodeEngine.Request neverFits = entry(new Random(9).ints(10, 1, 400).toArray(), 3, 200);
        assertThrows(DecodeEngine.KvBudgetExceeded.class, () -> engine.submit(neverFits, new Collector()));
        assertEquals(70 * perToken, engine.kvBytesAdmitted(), "a refusal holds nothing");
        assertEquals(1, engine.load());

        Collector fits = alone(entry(new Random(10).ints(10, 1, 400).toArray(), 4, 20)); // 30: exactly 100
        assertTrue(fits.tokens.size() >= 1 && fits.tokens.size() <= 20);
        paused.ready = true;
        engine.wake();
        paused.done.get(60, TimeUnit.SECONDS);
        // Its bytes are released once its end is written (asynchronously): wait for that, generously.
        for (int i = 0; i < 600 && engine.kvBytesAdmitted() != 0; i++) {
            Thread.sleep(50);
        }
        assertEquals(0, engine.kvBytesAdmitted());
        Collector later = alone(tooMany);
        assertTrue(later.tokens.size() >= 1, "admitted once the first sequence had finished");
        assertEquals(0, engine.load());
    }

    @Test
    void constrainedSequencesEmitSchemaValidJsonInASharedBatch() throws Exception {
        engine = new DecodeEngine(MODEL, cache, io, 8, 8, 4, meters);
        WorldTokenizer world = WorldTokenizer.world();
        JsonGrammars grammars = new JsonGrammars(world, 4);
        String schema = "{\"type\":\"object\",\"properties\":{\"ok\":{\"type\":\"boolean\"},"
                + "\"n\":{\"type\":\"integer\",\"minimum\":-3,\"maximum\":300},"
                + "\"s\":{\"type\":\"string\",\"maxLength\":5}},\"required\":[\"ok\",\"n\",\"s\"]}";
        JsonGrammar grammar = grammars.forRequest(schema, 60, "sampling.json_schema", "sampling.max_tokens");
        Random random = new Random(4);
        List<DecodeEngine.Request> requests = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            DecodeEngine.Request free = entry(random.ints(12 + i, 1, 400).toArray(), 200 + i, 60);
            requests.add(
                    i == 5
                            ? free // one free-text sequence shares the steps
                            : new DecodeEngine.Request(
                                    free.entryHash(),
                                    free.entryLength(),
                                    free.lastPromptToken(),
                                    free.params(),
                                    "",
                                    false,
                                    new int[0],
                                    grammar));
        }
        List<Collector> sinks = new ArrayList<>();
        for (DecodeEngine.Request r : requests) {
            Collector c = new Collector();
            sinks.add(c);
            engine.submit(r, c);
        }
        for (int i = 0; i < 5; i++) {
            Collector c = sinks.get(i);
            assertEquals(FinishReason.FINISH_REASON_END_OF_TEXT, c.done.get(30, TimeUnit.SECONDS), "sequence " + i);
            int[] ids = c.tokens.subList(0, c.tokens.size() - 1).stream()
                    .mapToInt(Integer::intValue)
                    .toArray();
            String text = world.decode(ids);
            assertTrue(grammar.matches(text), text);
            assertTrue(text.startsWith("{\"ok\":"), text);
        }
        sinks.get(5).done.get(30, TimeUnit.SECONDS);
    }
}
