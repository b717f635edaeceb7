package dev.qlora4j.quant.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link PanamaAttention}'s loops at 512 bits with {@code static final} species (see {@link DenseRuns512} for why),
 * for head sizes that are whole vectors ({@code n % 16 == 0}; GPT-2 and BLOOM use 64). Scalar reference:
 * {@link AttentionKernels}.
 *
 * <p>{@link #dotRows16}: sixteen keys per pass, one accumulator each (the same FMA chain over the head as
 * {@link PanamaAttention#dotRows}), then one butterfly that folds the sixteen accumulators into one vector of sixteen
 * sums: four levels, at level {@code s} (8, 4, 2, 1) pairs of vectors {@code x, y} become
 * {@code x.blend(y, M_s) + swap_s(y.blend(x, M_s))}, where {@code M_s} selects the lanes with bit {@code s} set and
 * {@code swap_s} exchanges lanes {@code l} and {@code l ^ s}. Each key's lanes are added in the same tree as
 * {@link VectorWidth#sum} (pairs by lane bit 3, then 2, 1, 0), so every score is bit-identical to the one-key-at-a-time
 * loop, for 60 vector ops per sixteen keys instead of 128 and one vector store instead of sixteen scalar ones.
 *
 * <p>{@link #weightedRowSum}: four vectors of the output row per pass over the value rows (four independent FMA
 * chains instead of two, one broadcast per row instead of two); the per-lane order of the adds is unchanged.
 */
final class Attention512 {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_512;
    private static final int L = 16;
    private static final VectorMask<Float> M8 = bit(8), M4 = bit(4), M2 = bit(2), M1 = bit(1);
    private static final VectorShuffle<Float> S8 = swap(8), S4 = swap(4), S2 = swap(2), S1 = swap(1);

    private Attention512() {
    }

    private static VectorMask<Float> bit(int s) {
        boolean[] m = new boolean[L];
        for (int l = 0; l < L; l++) m[l] = (l & s) != 0;
        return VectorMask.fromArray(F, m, 0);
    }

    private static VectorShuffle<Float> swap(int s) {
        int[] src = new int[L];
        for (int l = 0; l < L; l++) src[l] = l ^ s;
        return VectorShuffle.fromValues(F, src);
    }

    /** One butterfly step: lanes without bit s from x's pair sums, lanes with it from y's. */
    private static FloatVector fold(FloatVector x, FloatVector y, VectorMask<Float> m, VectorShuffle<Float> swap) {
        return x.blend(y, m).add(y.blend(x, m).rearrange(swap));
    }

    /**
     * Scores of keys {@code j0 .. j0 + 15}: {@code out[outOff + j0 + i] = scale · q·k_{j0+i}}, key j at
     * {@code k[kOff + j·stride, +n)}; {@code n % 16 == 0}. Two steps, each small enough for C2 to compile whole (one
     * method with both ran every vector op boxed: NodeCountInliningCutoff).
     *
     * @param acc {@code (16, 16)} scratch: the sixteen keys' accumulators
     */
    static void dotRows16(float[] q, int qOff, float[] k, int kOff, int stride, int n, int j0, float scale,
                          float[] out, int outOff, float[] acc) {
        accumulate(q, qOff, k, kOff + j0 * stride, stride, n, acc, 0);
        accumulate(q, qOff, k, kOff + (j0 + 8) * stride, stride, n, acc, 8 * L);
        butterfly(acc, scale, out, outOff + j0);
    }

    /** Accumulators of the eight keys at {@code k[b + i·stride]} into {@code acc[accOff + 16i, +16)}. */
    private static void accumulate(float[] q, int qOff, float[] k, int b, int stride, int n, float[] acc, int accOff) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        for (int d = 0; d < n; d += L) {
            FloatVector qv = FloatVector.fromArray(F, q, qOff + d);
            int o = b + d;
            a0 = qv.fma(FloatVector.fromArray(F, k, o), a0);
            a1 = qv.fma(FloatVector.fromArray(F, k, o + stride), a1);
            a2 = qv.fma(FloatVector.fromArray(F, k, o + 2 * stride), a2);
            a3 = qv.fma(FloatVector.fromArray(F, k, o + 3 * stride), a3);
            a4 = qv.fma(FloatVector.fromArray(F, k, o + 4 * stride), a4);
            a5 = qv.fma(FloatVector.fromArray(F, k, o + 5 * stride), a5);
            a6 = qv.fma(FloatVector.fromArray(F, k, o + 6 * stride), a6);
            a7 = qv.fma(FloatVector.fromArray(F, k, o + 7 * stride), a7);
        }
        a0.intoArray(acc, accOff);
        a1.intoArray(acc, accOff + L);
        a2.intoArray(acc, accOff + 2 * L);
        a3.intoArray(acc, accOff + 3 * L);
        a4.intoArray(acc, accOff + 4 * L);
        a5.intoArray(acc, accOff + 5 * L);
        a6.intoArray(acc, accOff + 6 * L);
        a7.intoArray(acc, accOff + 7 * L);
    }

    /**
     * {@code out[outOff + i] = scale · Σ lanes of acc[16i, +16)} for i < 16, by the butterfly of the class comment, in
     * two methods: all four levels in one exceeded C2's node budget on JDK 25 (NodeCountInliningCutoff), so the last
     * two {@code fold}s were called out of line with boxed vectors (JFR, session 11: 5% of decode samples).
     */
    private static void butterfly(float[] acc, float scale, float[] out, int outOff) {
        butterflyHigh(acc);
        butterflyLow(acc, scale, out, outOff);
    }

    /** Levels 8 and 4: {@code acc[16i, +16) ← v_i} for i < 4 (v_i holds key i + 4·bit2(lane) + 8·bit3(lane)). */
    private static void butterflyHigh(float[] acc) {
        // level 8: u_i holds key i (lanes 0-7) and key i + 8 (lanes 8-15)
        FloatVector u0 = fold(acc, 0, 8, M8, S8), u1 = fold(acc, 1, 9, M8, S8), u2 = fold(acc, 2, 10, M8, S8),
                u3 = fold(acc, 3, 11, M8, S8), u4 = fold(acc, 4, 12, M8, S8), u5 = fold(acc, 5, 13, M8, S8),
                u6 = fold(acc, 6, 14, M8, S8), u7 = fold(acc, 7, 15, M8, S8);
        fold(u0, u4, M4, S4).intoArray(acc, 0);
        fold(u1, u5, M4, S4).intoArray(acc, L);
        fold(u2, u6, M4, S4).intoArray(acc, 2 * L);
        fold(u3, u7, M4, S4).intoArray(acc, 3 * L);
    }

    /** Levels 2 and 1 over {@code acc[0, 64)} as {@link #butterflyHigh} leaves it: lane l holds key l. */
    private static void butterflyLow(float[] acc, float scale, float[] out, int outOff) {
        FloatVector w0 = fold(acc, 0, 2, M2, S2), w1 = fold(acc, 1, 3, M2, S2);
        fold(w0, w1, M1, S1).mul(scale).intoArray(out, outOff);
    }

    private static FloatVector fold(float[] acc, int x, int y, VectorMask<Float> m, VectorShuffle<Float> swap) {
        return fold(FloatVector.fromArray(F, acc, x * L), FloatVector.fromArray(F, acc, y * L), m, swap);
    }

    /** {@link PanamaAttention#weightedRowSum} for {@code n % 16 == 0}: the same per-lane adds, four vectors per pass. */
    static void weightedRowSum(float[] p, int pOff, float[] v, int vOff, int stride, int n, int len, float[] y,
                               int yOff, boolean accumulate) {
        int d = 0;
        for (; d + 4 * L <= n; d += 4 * L) {
            int yo = yOff + d;
            FloatVector a0 = accumulate ? FloatVector.fromArray(F, y, yo) : FloatVector.zero(F);
            FloatVector a1 = accumulate ? FloatVector.fromArray(F, y, yo + L) : FloatVector.zero(F);
            FloatVector a2 = accumulate ? FloatVector.fromArray(F, y, yo + 2 * L) : FloatVector.zero(F);
            FloatVector a3 = accumulate ? FloatVector.fromArray(F, y, yo + 3 * L) : FloatVector.zero(F);
            for (int j = 0, vo = vOff + d; j < len; j++, vo += stride) {
                FloatVector pj = FloatVector.broadcast(F, p[pOff + j]);
                a0 = pj.fma(FloatVector.fromArray(F, v, vo), a0);
                a1 = pj.fma(FloatVector.fromArray(F, v, vo + L), a1);
                a2 = pj.fma(FloatVector.fromArray(F, v, vo + 2 * L), a2);
                a3 = pj.fma(FloatVector.fromArray(F, v, vo + 3 * L), a3);
            }
            a0.intoArray(y, yo);
            a1.intoArray(y, yo + L);
            a2.intoArray(y, yo + 2 * L);
            a3.intoArray(y, yo + 3 * L);
        }
        for (; d < n; d += L) {
            FloatVector a = accumulate ? FloatVector.fromArray(F, y, yOff + d) : FloatVector.zero(F);
            for (int j = 0, vo = vOff + d; j < len; j++, vo += stride) {
                a = FloatVector.broadcast(F, p[pOff + j]).fma(FloatVector.fromArray(F, v, vo), a);
            }
            a.intoArray(y, yOff + d);
        }
    }
}
