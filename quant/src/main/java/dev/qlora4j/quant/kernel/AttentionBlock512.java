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
            scores4x64(q, q0, q1, q2, q3, kt, ktOff + j, ktStride, n, scale, out, o0 + j, o1 + j, o2 + j, o3 + j);
        }
        for (; j + L <= len; j += L) {
            scores4x16(q, q0, q1, q2, q3, kt, ktOff + j, ktStride, n, scale, out, o0 + j, o1 + j, o2 + j, o3 + j,
                    F.maskAll(true));
        }
        if (j < len) {
            scores4x16(q, q0, q1, q2, q3, kt, ktOff + j, ktStride, n, scale, out, o0 + j, o1 + j, o2 + j, o3 + j,
                    VectorMask.fromLong(F, (1L << (len - j)) - 1));
        }
    }

    /** Keys {@code [0, 64)} of {@code kt} at {@code ktOff}: sixteen accumulators, queries × key vectors. */
    private static void scores4x64(float[] q, int q0, int q1, int q2, int q3, float[] kt, int ktOff, int ktStride,
                                   int n, float scale, float[] out, int o0, int o1, int o2, int o3) {
        FloatVector a00 = FloatVector.zero(F), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00,
                a13 = a00, a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00, a32 = a00, a33 = a00;
        for (int d = 0, o = ktOff; d < n; d++, o += ktStride) {
            FloatVector k0 = FloatVector.fromArray(F, kt, o), k1 = FloatVector.fromArray(F, kt, o + L),
                    k2 = FloatVector.fromArray(F, kt, o + 2 * L), k3 = FloatVector.fromArray(F, kt, o + 3 * L);
            FloatVector b = FloatVector.broadcast(F, q[q0 + d]);
            a00 = b.fma(k0, a00);
            a01 = b.fma(k1, a01);
            a02 = b.fma(k2, a02);
            a03 = b.fma(k3, a03);
            b = FloatVector.broadcast(F, q[q1 + d]);
            a10 = b.fma(k0, a10);
            a11 = b.fma(k1, a11);
            a12 = b.fma(k2, a12);
            a13 = b.fma(k3, a13);
            b = FloatVector.broadcast(F, q[q2 + d]);
            a20 = b.fma(k0, a20);
            a21 = b.fma(k1, a21);
            a22 = b.fma(k2, a22);
            a23 = b.fma(k3, a23);
            b = FloatVector.broadcast(F, q[q3 + d]);
            a30 = b.fma(k0, a30);
            a31 = b.fma(k1, a31);
            a32 = b.fma(k2, a32);
            a33 = b.fma(k3, a33);
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

    /** Keys {@code [0, 16)} of {@code kt} at {@code ktOff}, the lanes of {@code m} only (loads and stores). */
    private static void scores4x16(float[] q, int q0, int q1, int q2, int q3, float[] kt, int ktOff, int ktStride,
                                   int n, float scale, float[] out, int o0, int o1, int o2, int o3,
                                   VectorMask<Float> m) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        for (int d = 0, o = ktOff; d < n; d++, o += ktStride) {
            FloatVector k = FloatVector.fromArray(F, kt, o, m);
            a0 = FloatVector.broadcast(F, q[q0 + d]).fma(k, a0);
            a1 = FloatVector.broadcast(F, q[q1 + d]).fma(k, a1);
            a2 = FloatVector.broadcast(F, q[q2 + d]).fma(k, a2);
            a3 = FloatVector.broadcast(F, q[q3 + d]).fma(k, a3);
        }
        a0.mul(scale).intoArray(out, o0, m);
        a1.mul(scale).intoArray(out, o1, m);
        a2.mul(scale).intoArray(out, o2, m);
        a3.mul(scale).intoArray(out, o3, m);
    }

    /** See {@link Kernels#weightedRowSums4}; {@code n % 16 == 0}. */
    static void weightedRowSums4(float[] p, int p0, int p1, int p2, int p3, float[] v, int vOff, int stride, int n,
                                 int len, float[] y, int y0, int y1, int y2, int y3) {
        int d = 0;
        for (; d + 4 * L <= n; d += 4 * L) {
            sums4x64(p, p0, p1, p2, p3, v, vOff + d, stride, len, y, y0 + d, y1 + d, y2 + d, y3 + d);
        }
        for (; d < n; d += L) {
            sums4x16(p, p0, p1, p2, p3, v, vOff + d, stride, len, y, y0 + d, y1 + d, y2 + d, y3 + d);
        }
    }

    /** Columns {@code [0, 64)} of the value rows at {@code vOff}: sixteen accumulators, queries × column vectors. */
    private static void sums4x64(float[] p, int p0, int p1, int p2, int p3, float[] v, int vOff, int stride, int len,
                                 float[] y, int y0, int y1, int y2, int y3) {
        FloatVector a00 = FloatVector.zero(F), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00,
                a13 = a00, a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00, a32 = a00, a33 = a00;
        for (int j = 0, o = vOff; j < len; j++, o += stride) {
            FloatVector v0 = FloatVector.fromArray(F, v, o), v1 = FloatVector.fromArray(F, v, o + L),
                    v2 = FloatVector.fromArray(F, v, o + 2 * L), v3 = FloatVector.fromArray(F, v, o + 3 * L);
            FloatVector b = FloatVector.broadcast(F, p[p0 + j]);
            a00 = b.fma(v0, a00);
            a01 = b.fma(v1, a01);
            a02 = b.fma(v2, a02);
            a03 = b.fma(v3, a03);
            b = FloatVector.broadcast(F, p[p1 + j]);
            a10 = b.fma(v0, a10);
            a11 = b.fma(v1, a11);
            a12 = b.fma(v2, a12);
            a13 = b.fma(v3, a13);
            b = FloatVector.broadcast(F, p[p2 + j]);
            a20 = b.fma(v0, a20);
            a21 = b.fma(v1, a21);
            a22 = b.fma(v2, a22);
            a23 = b.fma(v3, a23);
            b = FloatVector.broadcast(F, p[p3 + j]);
            a30 = b.fma(v0, a30);
            a31 = b.fma(v1, a31);
            a32 = b.fma(v2, a32);
            a33 = b.fma(v3, a33);
        }
        a00.intoArray(y, y0);
        a01.intoArray(y, y0 + L);
        a02.intoArray(y, y0 + 2 * L);
        a03.intoArray(y, y0 + 3 * L);
        a10.intoArray(y, y1);
        a11.intoArray(y, y1 + L);
        a12.intoArray(y, y1 + 2 * L);
        a13.intoArray(y, y1 + 3 * L);
        a20.intoArray(y, y2);
        a21.intoArray(y, y2 + L);
        a22.intoArray(y, y2 + 2 * L);
        a23.intoArray(y, y2 + 3 * L);
        a30.intoArray(y, y3);
        a31.intoArray(y, y3 + L);
        a32.intoArray(y, y3 + 2 * L);
        a33.intoArray(y, y3 + 3 * L);
    }

    /** Columns {@code [0, 16)} of the value rows at {@code vOff}. */
    private static void sums4x16(float[] p, int p0, int p1, int p2, int p3, float[] v, int vOff, int stride, int len,
                                 float[] y, int y0, int y1, int y2, int y3) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        for (int j = 0, o = vOff; j < len; j++, o += stride) {
            FloatVector vj = FloatVector.fromArray(F, v, o);
            a0 = FloatVector.broadcast(F, p[p0 + j]).fma(vj, a0);
            a1 = FloatVector.broadcast(F, p[p1 + j]).fma(vj, a1);
            a2 = FloatVector.broadcast(F, p[p2 + j]).fma(vj, a2);
            a3 = FloatVector.broadcast(F, p[p3 + j]).fma(vj, a3);
        }
        a0.intoArray(y, y0);
        a1.intoArray(y, y1);
        a2.intoArray(y, y2);
        a3.intoArray(y, y3);
    }
}
