package dev.qlora4j.quant.kernel;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** The softmax row kernels: the scalar exp against {@link Math#exp}, the Vector API twin bit-exact against it. */
class SoftmaxKernelsTest {

    @Test
    void scalarExpIsWithin2e7OfMathExp() {
        Random rnd = new Random(1);
        for (int i = 0; i < 200_000; i++) {
            float z = (float) (rnd.nextDouble() * 174 - 87);
            double want = Math.exp(z);
            assertEquals(want, FastExp.exp(z), 2e-7 * want, "exp(" + z + ")");
        }
        assertEquals(Math.exp(-87f), FastExp.exp(-1000f), 2e-7 * Math.exp(-87f), "clamped below");
        assertEquals(1f, FastExp.exp(0f));
    }

    @ParameterizedTest(name = "{0} bits")
    @ValueSource(ints = {128, 256, 512})
    void panamaMatchesScalarBitForBit(int bits) {
        PanamaKernels fast = new PanamaKernels(bits, new KernelPool(1));
        ScalarKernels scalar = new ScalarKernels();
        Random rnd = new Random(bits);
        for (int n : new int[] {1, 5, 8, 15, 16, 17, 511, 512, 513, 1031, 50257}) {
            float[] a = new float[n + 4];
            for (int i = 0; i < a.length; i++) a[i] = (float) (rnd.nextGaussian() * 10);
            a[2 + n / 2] = -500f; // clamps
            float[] b = a.clone();
            float maxA = scalar.rowMax(a, 2, n), maxB = fast.rowMax(b, 2, n);
            assertEquals(maxA, maxB, "max n=" + n);
            float want = Float.NEGATIVE_INFINITY;
            double exact = 0;
            for (int i = 2; i < n + 2; i++) want = Math.max(want, a[i]);
            for (int i = 2; i < n + 2; i++) exact += Math.exp((double) a[i] - want);
            assertEquals(want, maxA, "max n=" + n);
            double sa = scalar.expInPlace(a, 2, n, maxA), sb = fast.expInPlace(b, 2, n, maxB);
            for (int i = 0; i < a.length; i++) {
                assertEquals(Float.floatToRawIntBits(a[i]), Float.floatToRawIntBits(b[i]), "elem " + i + " n=" + n);
            }
            assertEquals(sa, sb, 1e-6 * sa, "sum n=" + n);
            assertEquals(exact, sb, 1e-6 * exact, "sum vs Math.exp in double, n=" + n);
        }
    }
}
