package dev.qlora4j.lora.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

class BatchesTest {

    /** N examples of length T whose inputs are all {@code 1000 + i}: the row says which example it is. */
    static Examples numbered(int n, int t) {
        int[][] in = new int[n][t], tg = new int[n][t];
        for (int i = 0; i < n; i++) {
            Arrays.fill(in[i], 1000 + i);
            Arrays.fill(tg[i], i % 3 == 0 ? Examples.IGNORE : 2000 + i);
            tg[i][0] = 2000 + i;
        }
        return PaddedExamples.of(in, tg);
    }

    static List<Integer> ids(Batch b) {
        List<Integer> out = new ArrayList<>();
        for (int r = 0; r < b.rows(); r++) out.add(b.inputs[r * b.seqLen] - 1000);
        return out;
    }

    static List<Integer> stream(Batches s, int batches) {
        Batch b = s.newBatch();
        List<Integer> out = new ArrayList<>();
        for (int i = 0; i < batches; i++) {
            s.next(b);
            out.addAll(ids(b));
        }
        return out;
    }

    @Test
    void everyEpochVisitsEveryExampleOnceInASeededOrder() throws DataException {
        int n = 23;
        List<Integer> seq = stream(new Batches(numbered(n, 4), 5, 42), 14); // 70 examples: 3 epochs + 1
        for (int e = 0; e < 3; e++) {
            Set<Integer> epoch = new HashSet<>(seq.subList(e * n, (e + 1) * n));
            assertEquals(n, epoch.size(), "epoch " + e + " is a permutation");
        }
        assertNotEquals(seq.subList(0, n), seq.subList(n, 2 * n), "each epoch has its own order");
        assertEquals(seq, stream(new Batches(numbered(n, 4), 5, 42), 14), "same seed, same stream");
        assertNotEquals(seq, stream(new Batches(numbered(n, 4), 5, 43), 14), "another seed, another stream");
        List<Integer> identity = new ArrayList<>();
        for (int i = 0; i < n; i++) identity.add(i);
        assertNotEquals(identity, seq.subList(0, n));
    }

    @Test
    void batchesCarryInputsTargetsAndTheTargetCount() throws DataException {
        Examples ex = numbered(6, 3);
        Batches s = new Batches(ex, 2, 1);
        Batch b = s.newBatch();
        s.next(b);
        int expected = 0;
        for (int r = 0; r < 2; r++) {
            int i = b.inputs[r * 3] - 1000;
            int[] in = new int[3], tg = new int[3];
            ex.copyTo(i, in, tg, 0);
            assertArrayEquals(in, Arrays.copyOfRange(b.inputs, r * 3, r * 3 + 3));
            assertArrayEquals(tg, Arrays.copyOfRange(b.targets, r * 3, r * 3 + 3));
            expected += ex.targetCount(i);
        }
        assertEquals(expected, b.targetCount());
        assertEquals(2, b.rows());
    }

    @Test
    void resumingFromASavedPositionContinuesTheExactStream() throws DataException {
        Examples ex = numbered(17, 2);
        List<Integer> straight = stream(new Batches(ex, 4, 7), 20);
        for (int stopAfter : new int[] {0, 1, 4, 5, 9, 19}) { // stops inside and at the edges of epochs
            Batches first = new Batches(ex, 4, 7);
            List<Integer> got = new ArrayList<>(stream(first, stopAfter));
            String saved = first.position().toJson();
            Batches second = new Batches(numbered(17, 2), 4, 7); // a fresh process: rebuilt data, same seed
            second.seek(DataPosition.fromJson(saved));
            got.addAll(stream(second, 20 - stopAfter));
            assertEquals(straight, got, "resumed after " + stopAfter + " batches from " + saved);
        }
    }

    @Test
    void positionRoundTripsAndRefusesOtherSeedOrData() throws DataException {
        Batches s = new Batches(numbered(10, 2), 3, 5);
        stream(s, 5);
        DataPosition p = s.position();
        assertEquals(1, p.epoch());
        assertEquals(5, p.index());
        assertEquals(p, DataPosition.fromJson(p.toJson()));
        DataException e = assertThrows(DataException.class, () -> new Batches(numbered(10, 2), 3, 6).seek(p));
        assertTrue(e.getMessage().contains("seed"), e.getMessage());
        e = assertThrows(DataException.class, () -> new Batches(numbered(11, 2), 3, 5).seek(p));
        assertTrue(e.getMessage().contains("another training set"), e.getMessage());
        assertThrows(DataException.class, () -> DataPosition.fromJson("{\"seed\": 1}"));
    }

    @Test
    void evalSplitIsSeededDisjointAndComplete() throws DataException {
        Examples all = numbered(50, 2);
        EvalSplit.Parts a = EvalSplit.fraction(0.1).apply(all, 3), b = EvalSplit.fraction(0.1).apply(all, 3), c = EvalSplit.fraction(0.1).apply(all, 4);
        assertEquals(5, a.eval().size());
        assertEquals(45, a.train().size());
        assertEquals(members(a.eval()), members(b.eval()));
        assertNotEquals(members(a.eval()), members(c.eval()));
        Set<Integer> union = new HashSet<>(members(a.eval()));
        union.addAll(members(a.train()));
        assertEquals(50, union.size());
        assertEquals(4, EvalSplit.fraction(0.07).evalSize(50), "ceil like HF train_test_split");
        assertEquals(7, EvalSplit.parse("7").apply(all, 1).eval().size());
        assertEquals(0, EvalSplit.none().apply(all, 1).eval().size());
        assertThrows(DataException.class, () -> EvalSplit.count(50).apply(all, 1));
    }

    @Test
    void sequentialEvalPassPadsTheLastBatch() {
        Examples ex = numbered(5, 3);
        Batch b = new Batch(2, 3);
        List<Integer> seen = new ArrayList<>();
        for (int from = 0; from < ex.size(); from += 2) {
            b.fillSequential(ex, from);
            seen.addAll(ids(b));
        }
        assertEquals(List.of(0, 1, 2, 3, 4), seen);
        assertEquals(1, b.rows());
        for (int j = 3; j < 6; j++) assertEquals(Examples.IGNORE, b.targets[j]);
        assertEquals(ex.targetCount(4), b.targetCount());
    }

    @Test
    void emptyTrainingSetIsAnError() {
        assertThrows(DataException.class, () -> new Batches(new ExampleSubset(numbered(3, 2), new int[0]), 2, 1));
    }

    @Test
    void shuffleIsRoughlyUniform() {
        int n = 5, trials = 20_000;
        int[][] counts = new int[n][n];
        int[] perm = new int[n];
        for (int s = 0; s < trials; s++) {
            Shuffle.permutation(123, s, perm);
            for (int i = 0; i < n; i++) counts[i][perm[i]]++;
        }
        for (int[] row : counts) for (int c : row) assertTrue(Math.abs(c - trials / n) < 300, Arrays.deepToString(counts));
    }

    static List<Integer> members(Examples e) {
        ExampleSubset s = (ExampleSubset) e;
        List<Integer> out = new ArrayList<>();
        for (int i = 0; i < s.size(); i++) out.add(s.parentIndex(i));
        return out;
    }
}
