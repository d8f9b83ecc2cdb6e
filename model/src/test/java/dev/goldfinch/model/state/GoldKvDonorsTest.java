package dev.goldfinch.model.state;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.goldfinch.model.GoldFinchModel;
import dev.goldfinch.model.ModelShapes;
import dev.goldfinch.model.RandomWeights;
import dev.goldfinch.model.tensor.DType;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** In every live K/V format, a restored state sharing a donor's GOLD K/V gives the same logits, bit for bit, as one rebuilding them. */
class GoldKvDonorsTest {
    static final GoldFinchModel MODEL =
            RandomWeights.model(ModelShapes.parse("layers=4,width=64,head=32,vocab=300"), 3, DType.F32);

    @AfterAll
    static void close() {
        MODEL.close();
    }

    private static SequenceState prefilled(int[] tokens) {
        SequenceState s = MODEL.newState();
        MODEL.forward(List.of(new GoldFinchModel.Segment(s, tokens, tokens.length)));
        return s;
    }

    private static SequenceState restored(SequenceState s) {
        return StateCodec.decode(StateCodec.encode(s, StateCodec.FloatType.F32, 0), s.config(), s.modelFingerprint());
    }

    private static float[] next(SequenceState s, int token) {
        return MODEL.forward(List.of(new GoldFinchModel.Segment(s, new int[] {token}, 0)))[0];
    }

    @ParameterizedTest
    @EnumSource(KvFormat.class)
    void restoredStateAdoptsTheSharedPrefixAndAnswersAsIfRebuilt(KvFormat format) {
        MODEL.kvFormat(format);
        Random random = new Random(5);
        int[] shared = random.ints(150, 1, 300).toArray();
        int[] donorTokens = Arrays.copyOf(shared, 170);
        int[] ownTokens = Arrays.copyOf(shared, 180);
        for (int i = 150; i < 170; i++) {
            donorTokens[i] = 1 + i % 7;
        }
        for (int i = 150; i < 180; i++) {
            ownTokens[i] = 2 + i % 5;
        }
        GoldKvDonors donors = new GoldKvDonors();
        donors.offer("tenant-a", prefilled(donorTokens));

        SequenceState own = prefilled(ownTokens);
        SequenceState rebuilt = restored(own);
        SequenceState adopted = restored(own);
        assertEquals(0, donors.adopt("tenant-b", restored(own)), "never across namespaces");
        assertEquals(150, donors.adopt("tenant-a", adopted), "exactly the rows whose tokens and keys match");
        assertEquals(0, donors.adopt("tenant-a", adopted), "only into a state without rows");
        assertArrayEquals(next(rebuilt, 9), next(adopted, 9));
        assertEquals(format, adopted.goldKeys(0).format());
        assertArrayEquals(next(rebuilt, 11), next(adopted, 11));
    }

    @ParameterizedTest
    @EnumSource(KvFormat.class)
    void shortPrefixesAreNotWorthAdopting(KvFormat format) {
        MODEL.kvFormat(format);
        int[] tokens = new Random(6).ints(GoldKvDonors.MIN_ROWS - 1, 1, 300).toArray();
        GoldKvDonors donors = new GoldKvDonors();
        SequenceState s = prefilled(tokens);
        donors.offer("t", s);
        assertEquals(0, donors.adopt("t", restored(s)));
    }
}
