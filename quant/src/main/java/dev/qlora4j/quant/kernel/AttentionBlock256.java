package dev.qlora4j.quant.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link AttentionBlock512} at 256 bits (AVX2, 16 vector registers): prompt-processing attention, four queries per
 * call, for head sizes that are whole vectors ({@code n % 8 == 0}). Scalar reference:
 * {@link AttentionKernels#dotRowsT4}, {@link AttentionKernels#weightedRowSums4}.
 *
 * <p>The same two shapes as at 512 bits, one register block narrower: four rows × 16 columns, eight accumulators
 * (enough chains for two FMA ports × 4 cycles latency), per step two vector loads, four broadcasts and eight FMAs —
 * 11 of the 16 registers, so C2 keeps everything in registers. {@link #dotRowsT4}: keys transposed, scores from FMA
 * chains over the head dimension with no lane sums (the one-query {@link PanamaAttention#dotRows} folds accumulators
 * with shuffles per key). {@link #weightedRowSums4}: four queries share each value row load; per lane the adds are in
 * the same order as {@link PanamaAttention#weightedRowSum} at 256 bits (an FMA chain over the keys from zero), so
 * each output row is bit-identical to it.
 */
final class AttentionBlock256 {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final int L = 8;
    private static final VectorMask<Float> ALL = F.maskAll(true);

    private AttentionBlock256() {
    }

    /** See {@link Kernels#dotRowsT4}; the head dimension is the loop, so any {@code n} works here. */
    static void dotRowsT4(float[] q, int q0, int q1, int q2, int q3, float[] kt, int ktOff, int ktStride, int n,
                          int len, float scale, float[] out, int o0, int o1, int o2, int o3) {
        int j = 0;
        for (; j + 2 * L <= len; j += 2 * L) {
            block4x16(q, q0, q1, q2, q3, kt, ktOff + j, ktStride, n, scale, out, o0 + j, o1 + j, o2 + j, o3 + j);
        }
        for (; j + L <= len; j += L) {
            block4x8(q, q0, q1, q2, q3, kt, ktOff + j, ktStride, n, scale, out, o0 + j, o1 + j, o2 + j, o3 + j, ALL);
        }
        if (j < len) {
            block4x8(q, q0, q1, q2, q3, kt, ktOff + j, ktStride, n, scale, out, o0 + j, o1 + j, o2 + j, o3 + j,
                    VectorMask.fromLong(F, (1L << (len - j)) - 1));
        }
    }

    /** See {@link Kernels#weightedRowSums4}; {@code n % 8 == 0}. */
    static void weightedRowSums4(float[] p, int p0, int p1, int p2, int p3, float[] v, int vOff, int stride, int n,
                                 int len, float[] y, int y0, int y1, int y2, int y3) {
        int d = 0;
        for (; d + 2 * L <= n; d += 2 * L) {
            block4x16(p, p0, p1, p2, p3, v, vOff + d, stride, len, 1f, y, y0 + d, y1 + d, y2 + d, y3 + d);
        }
        for (; d < n; d += L) {
            block4x8(p, p0, p1, p2, p3, v, vOff + d, stride, len, 1f, y, y0 + d, y1 + d, y2 + d, y3 + d, ALL);
        }
    }

    /**
     * {@code out_i[c] = scale · Σ_{t < count} b[b_i + t] · m[mOff + t·stride + c]} for the four rows i and the 16
     * columns c: eight accumulators (rows × column vectors), each chain from zero in t order (see
     * {@link AttentionBlock512}'s block4x64 for the two uses).
     */
    private static void block4x16(float[] b, int b0, int b1, int b2, int b3, float[] m, int mOff, int stride,
                                  int count, float scale, float[] out, int o0, int o1, int o2, int o3) {
        FloatVector a00 = FloatVector.zero(F), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00,
                a31 = a00;
        for (int t = 0, o = mOff; t < count; t++, o += stride) {
            FloatVector m0 = FloatVector.fromArray(F, m, o), m1 = FloatVector.fromArray(F, m, o + L);
            FloatVector c = FloatVector.broadcast(F, b[b0 + t]);
            a00 = c.fma(m0, a00);
            a01 = c.fma(m1, a01);
            c = FloatVector.broadcast(F, b[b1 + t]);
            a10 = c.fma(m0, a10);
            a11 = c.fma(m1, a11);
            c = FloatVector.broadcast(F, b[b2 + t]);
            a20 = c.fma(m0, a20);
            a21 = c.fma(m1, a21);
            c = FloatVector.broadcast(F, b[b3 + t]);
            a30 = c.fma(m0, a30);
            a31 = c.fma(m1, a31);
        }
        a00.mul(scale).intoArray(out, o0);
        a01.mul(scale).intoArray(out, o0 + L);
        a10.mul(scale).intoArray(out, o1);
        a11.mul(scale).intoArray(out, o1 + L);
        a20.mul(scale).intoArray(out, o2);
        a21.mul(scale).intoArray(out, o2 + L);
        a30.mul(scale).intoArray(out, o3);
        a31.mul(scale).intoArray(out, o3 + L);
    }

    /** {@link #block4x16} for 8 columns, the lanes of {@code lanes} only (loads and stores). */
    private static void block4x8(float[] b, int b0, int b1, int b2, int b3, float[] m, int mOff, int stride,
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
