package dev.qlora4j.quant.kernel;

import dev.qlora4j.quant.weight.StoredWeight;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * The same call gives the same bits before and after the JIT compiles the kernel (lane sums in a fixed order, not
 * {@code reduceLanes}, whose order differs between the interpreter and C2): adapters' "B = 0 ⇒ output equals base"
 * and exact resume rely on it.
 */
class DeterminismTest {

    @ParameterizedTest
    @EnumSource(TestWeights.Kind.class)
    void decodeGemvIsBitStableAcrossJitTiers(TestWeights.Kind kind) {
        Random rnd = new Random(11);
        StoredWeight w = TestWeights.random(kind, 37, 192, 64, rnd);
        PanamaKernels k = new PanamaKernels();
        float[] x = TestWeights.randomArray(192, rnd); // (1, K)
        float[] first = new float[37], later = new float[37];
        k.matmul(x, 0, w, null, first, 0, 1); // early: interpreted or C1
        for (int i = 0; i < 3000; i++) k.matmul(x, 0, w, null, later, 0, 1); // C2 by now
        assertArrayEquals(first, later, kind + ": M = 1 output changed once the kernel was compiled");
        float[] q = TestWeights.randomArray(192, rnd), scores0 = new float[37], scores1 = new float[37];
        float[] keys = TestWeights.randomArray(37 * 192, rnd);
        k.dotRows(q, 0, keys, 0, 192, 192, 37, 0.5f, scores0, 0);
        for (int i = 0; i < 3000; i++) k.dotRows(q, 0, keys, 0, 192, 192, 37, 0.5f, scores1, 0);
        assertArrayEquals(scores0, scores1, "attention scores changed once compiled");
    }
}
