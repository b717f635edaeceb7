package dev.qlora4j.quant.kernel;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The Vector API attention loops against the scalar ones, and the scalar ones against double precision. */
class AttentionKernelsTest {

    @ParameterizedTest
    @ValueSource(ints = {128, 256, 512})
    void dotRowsAndWeightedSumMatchScalar(int bits) {
        PanamaAttention fast = new PanamaAttention(VectorWidth.of(bits));
        SplittableRandom rng = new SplittableRandom(bits);
        for (int n : new int[]{1, 3, 7, 16, 31, 64, 67}) {
            for (int len : new int[]{1, 2, 3, 5, 9, 33}) {
                int stride = n + 3;
                float[] q = rand(rng, n + 2), k = rand(rng, len * stride + 5), p = rand(rng, len + 1);
                float[] want = new float[len + 1], got = new float[len + 1];
                AttentionKernels.dotRows(q, 2, k, 5, stride, n, len, 0.37f, want, 1);
                fast.dotRows(q, 2, k, 5, stride, n, len, 0.37f, got, 1);
                for (int j = 0; j < len; j++) {
                    double exact = 0, mag = 0;
                    for (int d = 0; d < n; d++) {
                        exact += (double) q[2 + d] * k[5 + j * stride + d];
                        mag += Math.abs((double) q[2 + d] * k[5 + j * stride + d]);
                    }
                    assertEquals(exact * 0.37f, want[1 + j], 1e-5 * mag + 1e-7, "scalar dot n=" + n + " j=" + j);
                    assertEquals(want[1 + j], got[1 + j], 1e-5 * mag + 1e-7, "vector dot n=" + n + " j=" + j);
                }
                for (boolean acc : new boolean[]{false, true}) {
                    float[] y0 = rand(rng, n + 4), y1 = y0.clone();
                    AttentionKernels.weightedRowSum(p, 1, k, 5, stride, n, len, y0, 2, acc);
                    fast.weightedRowSum(p, 1, k, 5, stride, n, len, y1, 2, acc);
                    for (int d = 0; d < n; d++) {
                        assertEquals(y0[2 + d], y1[2 + d], 1e-5 * (len + 1), "weighted sum n=" + n + " len=" + len);
                    }
                }
            }
        }
    }

    /**
     * At 512 bits, sixteen keys per pass ({@link Attention512}'s butterfly) give every score bit for bit as the key
     * computed alone (one accumulator chain, then {@link VectorWidth#sum}); the scalar-tolerance test above covers
     * its values.
     */
    @org.junit.jupiter.api.Test
    void sixteenKeyButterflyIsBitIdenticalToOneKeyAtATime() {
        PanamaAttention fast = new PanamaAttention(VectorWidth.of(512));
        SplittableRandom rng = new SplittableRandom(16);
        for (int n : new int[]{16, 32, 64, 80}) {
            for (int len : new int[]{16, 35, 64, 79, 576}) {
                int stride = n + 16;
                float[] q = rand(rng, n + 2), k = rand(rng, len * stride + 5);
                float[] all = new float[len + 1], one = new float[1];
                fast.dotRows(q, 2, k, 5, stride, n, len, 0.125f, all, 1);
                for (int j = 0; j < len; j++) {
                    fast.dotRows(q, 2, k, 5 + j * stride, stride, n, 1, 0.125f, one, 0);
                    assertEquals(Float.floatToRawIntBits(one[0]), Float.floatToRawIntBits(all[1 + j]),
                            "n=" + n + " len=" + len + " key " + j + ": " + one[0] + " vs " + all[1 + j]);
                }
            }
        }
    }

    static float[] rand(SplittableRandom rng, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (rng.nextDouble() * 2 - 1);
        return x;
    }
}
