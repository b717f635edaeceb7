package dev.qlora4j.quant.kernel;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

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

    /**
     * The four-query prompt kernels: the scalar {@code dotRowsT4} against double precision over a transposed copy of
     * random keys; the vector kernels (blocked at 512 bits, the scalar fallback below) against the scalar ones, with
     * a repeated query, a masked key tail, and nothing written past {@code len} or outside the four rows.
     */
    @ParameterizedTest
    @ValueSource(ints = {128, 256, 512})
    void fourQueryScoresAndSumsMatchScalar(int bits) {
        PanamaKernels fast = new PanamaKernels(bits, new KernelPool(1));
        SplittableRandom rng = new SplittableRandom(40 + bits);
        for (int n : new int[]{7, 16, 64, 80}) {
            for (int len : new int[]{1, 5, 16, 17, 63, 64, 65, 130}) {
                int ktStride = len + 19, qStride = 3 * n + 5, rowStride = len + 23;
                float[] q = rand(rng, 4 * qStride), k = rand(rng, len * n), kt = rand(rng, n * ktStride + 3);
                for (int j = 0; j < len; j++) {
                    for (int d = 0; d < n; d++) kt[3 + d * ktStride + j] = k[j * n + d];
                }
                int[] qs = {2, 2 + qStride, 2 + 2 * qStride, 2 + 2 * qStride}; // the third query twice
                int[] os = {1, 1 + rowStride, 1 + 2 * rowStride, 1 + 2 * rowStride};
                float[] want = new float[4 * rowStride], got = new float[4 * rowStride];
                java.util.Arrays.fill(got, Float.NaN);
                AttentionKernels.dotRowsT4(q, qs[0], qs[1], qs[2], qs[3], kt, 3, ktStride, n, len, 0.37f, want,
                        os[0], os[1], os[2], os[3]);
                fast.dotRowsT4(q, qs[0], qs[1], qs[2], qs[3], kt, 3, ktStride, n, len, 0.37f, got, os[0], os[1],
                        os[2], os[3]);
                for (int i = 0; i < 3; i++) {
                    for (int j = 0; j < len; j++) {
                        double exact = 0, mag = 0;
                        for (int d = 0; d < n; d++) {
                            exact += (double) q[qs[i] + d] * k[j * n + d];
                            mag += Math.abs((double) q[qs[i] + d] * k[j * n + d]);
                        }
                        String at = "bits=" + bits + " n=" + n + " len=" + len + " query " + i + " key " + j;
                        assertEquals(exact * 0.37f, want[os[i] + j], 1e-5 * mag + 1e-7, "scalar " + at);
                        assertEquals(want[os[i] + j], got[os[i] + j], 1e-5 * mag + 1e-7, "vector " + at);
                    }
                }
                for (int x = 0; x < got.length; x++) {
                    int row = (x - 1) / rowStride, col = (x - 1) % rowStride;
                    boolean inside = x >= 1 && row < 3 && col < len;
                    if (!inside) assertTrue(Float.isNaN(got[x]), "bits=" + bits + " wrote outside the rows at " + x);
                }
                // weighted sums over the same rows: v (len, n) with stride n + 9, p rows of the four queries
                int vStride = n + 9;
                float[] v = rand(rng, len * vStride + 4), p = rand(rng, 4 * rowStride);
                float[] y0 = new float[4 * (n + 3)], y1 = new float[4 * (n + 3)];
                java.util.Arrays.fill(y1, Float.NaN);
                int[] ys = {0, n + 3, 2 * (n + 3), 2 * (n + 3)};
                AttentionKernels.weightedRowSums4(p, os[0], os[1], os[2], os[3], v, 4, vStride, n, len, y0,
                        ys[0], ys[1], ys[2], ys[3]);
                fast.weightedRowSums4(p, os[0], os[1], os[2], os[3], v, 4, vStride, n, len, y1, ys[0], ys[1],
                        ys[2], ys[3]);
                for (int i = 0; i < 3; i++) {
                    float[] one = new float[n];
                    fast.weightedRowSum(p, os[i], v, 4, vStride, n, len, one, 0, false);
                    for (int d = 0; d < n; d++) {
                        String at = "bits=" + bits + " n=" + n + " len=" + len + " query " + i + " d " + d;
                        assertEquals(y0[ys[i] + d], y1[ys[i] + d], 1e-5 * (len + 1), "sums " + at);
                        if (fast.blockedAttention(n)) { // same per-lane FMA chain as the one-query kernel
                            assertEquals(Float.floatToRawIntBits(one[d]), Float.floatToRawIntBits(y1[ys[i] + d]),
                                    "bit-identical to weightedRowSum, " + at);
                        }
                    }
                }
                for (int x = 3 * (n + 3); x < y1.length; x++) assertTrue(Float.isNaN(y1[x]), "wrote past row 3");
            }
        }
    }

    static float[] rand(SplittableRandom rng, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (rng.nextDouble() * 2 - 1);
        return x;
    }
}
