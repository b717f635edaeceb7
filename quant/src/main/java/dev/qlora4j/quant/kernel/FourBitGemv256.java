package dev.qlora4j.quant.kernel;

import dev.qlora4j.quant.weight.FourBitWeight;
import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

import static jdk.incubator.vector.VectorOperators.LSHL;
import static jdk.incubator.vector.VectorOperators.LSHR;
import static jdk.incubator.vector.VectorOperators.LT;

/**
 * NF4/FP4 decode GEMV ({@code M = 1}) at 256 bits, two rows of W per step: the AVX2 shape of the fused
 * dequantize-and-dot, written with {@code static final} species and no calls, so C2 compiles it whole. (The
 * width-generic {@link PanamaDot#fourBitAligned} goes through {@link VectorWidth}'s accessors; at this loop size C2
 * gives up inlining them — NodeCountInliningCutoff — and boxes every vector, ~10× slower.)
 *
 * <p>Per 8 weights of a row: one 32-bit load broadcast to the lanes, {@code vpsllvd} to top-align each lane's
 * nibble, {@code vpsrld} to the index, two single-table {@code vpermd} and a blend on the nibble's top bit (the
 * 16-entry table already multiplied by the block's absmax), one FMA with {@code x}. The {@code x} loads are shared by
 * both rows and the four accumulators keep two rows' lookups in flight.
 *
 * <p>Arithmetic per output is exactly {@link PanamaDot#fourBitAligned}'s at 256 bits (same products, same FMA
 * chains, same fixed-order lane sum), so the outputs are bit-identical to it; scalar reference:
 * {@code Σ_k w.dequantize(row·K + k) · x[k]} ({@link ScalarKernels}).
 */
final class FourBitGemv256 {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    private static final int L = 8;
    private static final IntVector NIBBLE_SHIFTS = IntVector.fromArray(I, new int[] {24, 28, 16, 20, 8, 12, 0, 4}, 0);
    private static final VectorShuffle<Float> ROT4 = VectorShuffle.iota(F, 4, 1, true),
            ROT2 = VectorShuffle.iota(F, 2, 1, true), ROT1 = VectorShuffle.iota(F, 1, 1, true);

    private FourBitGemv256() {
    }

    /** Whole blocks per row, whole 16-element steps per block, and both rows' scales fit {@code BulkScales.CHUNK}. */
    static boolean supports(FourBitWeight q) {
        int bs = q.blocksize();
        return q.cols() % bs == 0 && bs % (2 * L) == 0 && 2 * (q.cols() / bs) <= BulkScales.CHUNK;
    }

    /**
     * {@code out[outOff] = W[row, :] · x}, {@code out[outOff + 1] = W[row + 1, :] · x}.
     *
     * @param x        {@code (K)} at {@code xOff}
     * @param scaleBuf {@code (2 · K / blocksize)} scratch: the absmax of both rows' blocks
     * @param out      {@code (2)} at {@code outOff}
     */
    static void pair(FourBitWeight q, int row, float[] x, int xOff, float[] scaleBuf, float[] out, int outOff) {
        int k = q.cols(), bs = q.blocksize(), blocks = k / bs;
        float[] table = q.codeTable();
        FloatVector t0 = FloatVector.fromArray(F, table, 0), t1 = FloatVector.fromArray(F, table, L);
        MemorySegment packed = q.packed();
        long base0 = (long) row * k >>> 1, base1 = base0 + (k >>> 1);
        BulkScales.absmax(q.scales(), (int) ((long) row * blocks), 2 * blocks, scaleBuf, 0, false); // consecutive rows
        FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F), c0 = FloatVector.zero(F), c1 = FloatVector.zero(F);
        for (int b = 0; b < blocks; b++) {
            float sa = scaleBuf[b], sc = scaleBuf[blocks + b];
            // the block's table times its absmax: a lookup yields the dequantized value itself (same rounding)
            IntVector p0 = t0.mul(sa).reinterpretAsInts(), p1 = t1.mul(sa).reinterpretAsInts();
            IntVector r0 = t0.mul(sc).reinterpretAsInts(), r1 = t1.mul(sc).reinterpretAsInts();
            int e0 = b * bs, e1 = e0 + bs;
            long o0 = base0 + (e0 >>> 1), o1 = base1 + (e0 >>> 1);
            for (int e = e0; e < e1; e += 2 * L, o0 += L, o1 += L) {
                // written out in full: helper methods here would exceed C2's inlining node budget (see class doc)
                FloatVector x0 = FloatVector.fromArray(F, x, xOff + e), x1 = FloatVector.fromArray(F, x, xOff + e + L);
                IntVector n0 = IntVector.broadcast(I, packed.get(VectorWidth.I32_LE, o0)).lanewise(LSHL, NIBBLE_SHIFTS);
                IntVector n1 = IntVector.broadcast(I, packed.get(VectorWidth.I32_LE, o0 + 4)).lanewise(LSHL, NIBBLE_SHIFTS);
                IntVector m0 = IntVector.broadcast(I, packed.get(VectorWidth.I32_LE, o1)).lanewise(LSHL, NIBBLE_SHIFTS);
                IntVector m1 = IntVector.broadcast(I, packed.get(VectorWidth.I32_LE, o1 + 4)).lanewise(LSHL, NIBBLE_SHIFTS);
                IntVector i0 = n0.lanewise(LSHR, 28), i1 = n1.lanewise(LSHR, 28); // selectFrom wraps them mod 8
                IntVector j0 = m0.lanewise(LSHR, 28), j1 = m1.lanewise(LSHR, 28);
                a0 = i0.selectFrom(p0).blend(i0.selectFrom(p1), n0.compare(LT, 0)).reinterpretAsFloats().fma(x0, a0);
                a1 = i1.selectFrom(p0).blend(i1.selectFrom(p1), n1.compare(LT, 0)).reinterpretAsFloats().fma(x1, a1);
                c0 = j0.selectFrom(r0).blend(j0.selectFrom(r1), m0.compare(LT, 0)).reinterpretAsFloats().fma(x0, c0);
                c1 = j1.selectFrom(r0).blend(j1.selectFrom(r1), m1.compare(LT, 0)).reinterpretAsFloats().fma(x1, c1);
            }
        }
        // VectorWidth#sum at 256 bits, written out: rotate-and-add by 4, 2, 1, then lane 0
        FloatVector v = a0.add(a1), u = c0.add(c1);
        v = v.add(v.rearrange(ROT4));
        u = u.add(u.rearrange(ROT4));
        v = v.add(v.rearrange(ROT2));
        u = u.add(u.rearrange(ROT2));
        v = v.add(v.rearrange(ROT1));
        u = u.add(u.rearrange(ROT1));
        out[outOff] = v.lane(0);
        out[outOff + 1] = u.lane(0);
    }
}
