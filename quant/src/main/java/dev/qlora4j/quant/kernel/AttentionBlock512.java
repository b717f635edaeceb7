package dev.qlora4j.quant.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

/**
 * Prompt-processing attention at 512 bits, four queries per call, for head sizes that are whole vectors
 * ({@code n % 16 == 0}). Scalar reference: {@link AttentionKernels#dotRowsT4}, {@link AttentionKernels#weightedRowSums4}.
 *
 * <p>{@link #dotRowsT4}: the keys are held transposed ({@code kt (n, ktStride)}, key j in column j), so a vector
 * holds sixteen keys and the scores come out of plain FMA chains over the head dimension — {@code s_j += q[d] ·
 * kt[d][j]} — with no lane sums at all (the one-query {@link Attention512#dotRows16} spends 60 vector ops per sixteen
 * keys folding its accumulators). Four queries × 64 keys per pass: per head dimension four key loads, four
 * broadcasts of {@code q} and sixteen FMAs into sixteen accumulators; then 16-key steps and one masked tail.
 *
 * <p>{@link #weightedRowSums4}: four queries share each value row load: per key four loads, four broadcasts of the
 * probabilities and sixteen FMAs. Per lane the adds are in the same order as {@link Attention512#weightedRowSum}
 * (an FMA chain over the keys from zero), so each output row is bit-identical to it.
 *
 * <p>Each method is small enough for C2 to compile whole with every vector op intrinsified (see {@link Attention512}).
 */
final class AttentionBlock512 {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_512;
    private static final int L = 16;

    private AttentionBlock512() {
    }

    /** See {@link Kernels#dotRowsT4}; {@code n % 16 == 0} is not needed here (the head dimension is the loop). */
    static void dotRowsT4(float[] q, int q0, int q1, int q2, int q3, float[] kt, int ktOff, int ktStride, int n,
                          int len, float scale, float[] out, int o0, int o1, int o2, int o3) {
        int j = 0;
        for (; j + 4 * L <= len; j += 4 * L) {
            block4x64(q, q0, q1, q2, q3, kt, ktOff + j, ktStride, n, scale, out, o0 + j, o1 + j, o2 + j, o3 + j);
        }
        for (; j + L <= len; j += L) {
            block4x16(q, q0, q1, q2, q3, kt, ktOff + j, ktStride, n, scale, out, o0 + j, o1 + j, o2 + j, o3 + j, ALL);
        }
        if (j < len) {
            block4x16(q, q0, q1, q2, q3, kt, ktOff + j, ktStride, n, scale, out, o0 + j, o1 + j, o2 + j, o3 + j,
                    VectorMask.fromLong(F, (1L << (len - j)) - 1));
        }
    }

    /** See {@link Kernels#weightedRowSums4}; {@code n % 16 == 0}. */
    static void weightedRowSums4(float[] p, int p0, int p1, int p2, int p3, float[] v, int vOff, int stride, int n,
                                 int len, float[] y, int y0, int y1, int y2, int y3) {
        int d = 0;
        for (; d + 4 * L <= n; d += 4 * L) {
            block4x64(p, p0, p1, p2, p3, v, vOff + d, stride, len, 1f, y, y0 + d, y1 + d, y2 + d, y3 + d);
        }
        for (; d < n; d += L) {
            block4x16(p, p0, p1, p2, p3, v, vOff + d, stride, len, 1f, y, y0 + d, y1 + d, y2 + d, y3 + d, ALL);
        }
    }

    private static final VectorMask<Float> ALL = F.maskAll(true);

    /**
     * The one shape both methods are made of: {@code out_i[c] = scale · Σ_{t < count} b[b_i + t] · m[mOff + t·stride
     * + c]} for the four rows i and the 64 columns c — sixteen accumulators (rows × column vectors), per t four
     * vector loads of m, four broadcasts of b and sixteen FMAs, each chain from zero in t order. Scores: b = the
     * queries, m = the transposed keys, t = the head dimension; sums: b = the probabilities, m = the values, t = the
     * keys, scale 1 (exact).
     */
    private static void block4x64(float[] b, int b0, int b1, int b2, int b3, float[] m, int mOff, int stride,
                                  int count, float scale, float[] out, int o0, int o1, int o2, int o3) {
        FloatVector a00 = FloatVector.zero(F), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00,
                a13 = a00, a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00, a32 = a00, a33 = a00;
        for (int t = 0, o = mOff; t < count; t++, o += stride) {
            FloatVector m0 = FloatVector.fromArray(F, m, o), m1 = FloatVector.fromArray(F, m, o + L),
                    m2 = FloatVector.fromArray(F, m, o + 2 * L), m3 = FloatVector.fromArray(F, m, o + 3 * L);
            FloatVector c = FloatVector.broadcast(F, b[b0 + t]);
            a00 = c.fma(m0, a00);
            a01 = c.fma(m1, a01);
            a02 = c.fma(m2, a02);
            a03 = c.fma(m3, a03);
            c = FloatVector.broadcast(F, b[b1 + t]);
            a10 = c.fma(m0, a10);
            a11 = c.fma(m1, a11);
            a12 = c.fma(m2, a12);
            a13 = c.fma(m3, a13);
            c = FloatVector.broadcast(F, b[b2 + t]);
            a20 = c.fma(m0, a20);
            a21 = c.fma(m1, a21);
            a22 = c.fma(m2, a22);
            a23 = c.fma(m3, a23);
            c = FloatVector.broadcast(F, b[b3 + t]);
            a30 = c.fma(m0, a30);
            a31 = c.fma(m1, a31);
            a32 = c.fma(m2, a32);
            a33 = c.fma(m3, a33);
        }
        a00.mul(scale).intoArray(out, o0);
        a01.mul(scale).intoArray(out, o0 + L);
        a02.mul(scale).intoArray(out, o0 + 2 * L);
        a03.mul(scale).intoArray(out, o0 + 3 * L);
        a10.mul(scale).intoArray(out, o1);
        a11.mul(scale).intoArray(out, o1 + L);
        a12.mul(scale).intoArray(out, o1 + 2 * L);
        a13.mul(scale).intoArray(out, o1 + 3 * L);
        a20.mul(scale).intoArray(out, o2);
        a21.mul(scale).intoArray(out, o2 + L);
        a22.mul(scale).intoArray(out, o2 + 2 * L);
        a23.mul(scale).intoArray(out, o2 + 3 * L);
        a30.mul(scale).intoArray(out, o3);
        a31.mul(scale).intoArray(out, o3 + L);
        a32.mul(scale).intoArray(out, o3 + 2 * L);
        a33.mul(scale).intoArray(out, o3 + 3 * L);
    }

    /** {@link #block4x64} for 16 columns, the lanes of {@code lanes} only (loads and stores). */
    private static void block4x16(float[] b, int b0, int b1, int b2, int b3, float[] m, int mOff, int stride,
                                  int count, float scale, float[] out, int o0, int o1, int o2, int o3,
                                  VectorMask<Float> lanes) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        for (int t = 0, o = mOff; t < count; t++, o += stride) {
            FloatVector mt = FloatVector.fromArray(F, m, o, lanes);
            a0 = FloatVector.broadcast(F, b[b0 + t]).fma(mt, a0);
            a1 = FloatVector.broadcast(F, b[b1 + t]).fma(mt, a1);
            a2 = FloatVector.broadcast(F, b[b2 + t]).fma(mt, a2);
            a3 = FloatVector.broadcast(F, b[b3 + t]).fma(mt, a3);
        }
        a0.mul(scale).intoArray(out, o0, lanes);
        a1.mul(scale).intoArray(out, o1, lanes);
        a2.mul(scale).intoArray(out, o2, lanes);
        a3.mul(scale).intoArray(out, o3, lanes);
    }
}
