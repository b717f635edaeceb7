package dev.qlora4j.quant.kernel;

import dev.qlora4j.quant.weight.FourBitWeight;
import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

import static jdk.incubator.vector.VectorOperators.LSHR;

/**
 * NF4/FP4 decode GEMV ({@code M = 1}) at 512 bits (AVX-512), two rows of W per step: the whole 16-entry code table
 * fits one register, so a lookup is a single {@code vpermps}, and no shuffle is spent on unpacking.
 *
 * <p>A step is 128 weights of a row: one 64-byte load gives 16 int lanes of 8 packed nibbles each (lane {@code l}
 * holds elements {@code 8l .. 8l + 7}). Shifting the lanes right by {@code 4j} ({@code j = 0..7}) brings one nibble of
 * every lane to the bottom — element {@code 8l + (j ^ 1)}, high nibble first within a byte — and {@code selectFrom}
 * wraps the index mod 16, so no mask is needed: 7 shifts and 8 lookups per 128 weights, then 8 FMAs with {@code x}
 * laid out the same way ({@link #deinterleave}, once per call, shared by every row and thread). The block scale is
 * applied once per step: at blocksize 64 lanes 0..7 belong to one block and 8..15 to the next, at blocksizes that are
 * multiples of 128 the whole step is one block.
 *
 * <p>Per output this computes {@code Σ_blocks absmax · Σ_k code(k) · x[k]} — the reference's products reassociated,
 * as {@link PanamaDot#fourBit} does — with a fixed order, so results are deterministic. Written with
 * {@code static final} species and no calls (see {@link FourBitGemv256} for why). Scalar reference:
 * {@code Σ_k w.dequantize(row·K + k) · x[k]} ({@link ScalarKernels}).
 */
final class FourBitGemv512 {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_512;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_512;
    private static final int L = 16; // float lanes
    static final int STEP = 8 * L; // weights per step and row: 64 packed bytes
    private static final VectorMask<Float> UPPER8 = VectorMask.fromLong(F, 0xFF00L); // lanes 8..15: the second block
    private static final VectorShuffle<Float> ROT8 = VectorShuffle.iota(F, 8, 1, true),
            ROT4 = VectorShuffle.iota(F, 4, 1, true), ROT2 = VectorShuffle.iota(F, 2, 1, true),
            ROT1 = VectorShuffle.iota(F, 1, 1, true);

    private FourBitGemv512() {
    }

    /** Whole 128-weight steps and whole blocks per row, and a step covers two 64-blocks or lies in one block. */
    static boolean supports(FourBitWeight q) {
        int bs = q.blocksize(), k = q.cols();
        return k % STEP == 0 && k % bs == 0 && (bs == 64 || bs % STEP == 0);
    }

    /**
     * {@code xd (K) ← x (K)} in step order: {@code xd[s + 16j + l] = x[s + 8l + (j ^ 1)]} for {@code j < 8},
     * {@code l < 16}, {@code s} a multiple of 128 ({@code K % 128 == 0}).
     */
    static void deinterleave(float[] x, int xOff, int k, float[] xd) {
        for (int s = 0; s < k; s += STEP) {
            for (int j = 0; j < 8; j++) {
                for (int l = 0; l < L; l++) xd[s + L * j + l] = x[xOff + s + 8 * l + (j ^ 1)];
            }
        }
    }

    /**
     * {@code out[outOff] = W[row, :] · x}, {@code out[outOff + 1] = W[row2, :] · x}. The caller pairs rows half a
     * tile apart ({@code row2 = row + rows / 2}), so that over successive calls each of the two rows walks its own
     * contiguous run of memory: two clean sequential streams for the hardware prefetcher, where adjacent rows make
     * one stream that jumps back and forth (measured with W streamed from DRAM: 768→3072 about 1.4× faster).
     *
     * @param xd     {@code (K)} x as {@link #deinterleave} leaves it
     * @param scales the absmax of {@code row}'s blocks at {@code sOff}, of {@code row2}'s at {@code sOff2}
     * @param out    {@code (2)} at {@code outOff}
     */
    static void pair(FourBitWeight q, int row, int row2, float[] xd, float[] scales, int sOff, int sOff2,
                     float[] out, int outOff) {
        int k = q.cols(), bs = q.blocksize();
        boolean twoBlocks = bs == 64;
        IntVector table = FloatVector.fromArray(F, q.codeTable(), 0).reinterpretAsInts();
        MemorySegment packed = q.packed();
        long o0 = (long) row * k >>> 1, o1 = (long) row2 * k >>> 1;
        FloatVector a = FloatVector.zero(F), c = FloatVector.zero(F);
        for (int e = 0; e < k; e += STEP, o0 += STEP / 2, o1 += STEP / 2) {
            // written out in full: helper methods here would exceed C2's inlining node budget (see FourBitGemv256)
            IntVector v = IntVector.fromMemorySegment(I, packed, o0, VectorWidth.LE);
            IntVector u = IntVector.fromMemorySegment(I, packed, o1, VectorWidth.LE);
            FloatVector x0 = FloatVector.fromArray(F, xd, e), x4 = FloatVector.fromArray(F, xd, e + 4 * L);
            // two chains per row: nibbles j = 0..3 and j = 4..7
            FloatVector va = v.selectFrom(table).reinterpretAsFloats().mul(x0);
            FloatVector ua = u.selectFrom(table).reinterpretAsFloats().mul(x0);
            FloatVector vb = v.lanewise(LSHR, 16).selectFrom(table).reinterpretAsFloats().mul(x4);
            FloatVector ub = u.lanewise(LSHR, 16).selectFrom(table).reinterpretAsFloats().mul(x4);
            FloatVector x1 = FloatVector.fromArray(F, xd, e + L), x5 = FloatVector.fromArray(F, xd, e + 5 * L);
            va = v.lanewise(LSHR, 4).selectFrom(table).reinterpretAsFloats().fma(x1, va);
            ua = u.lanewise(LSHR, 4).selectFrom(table).reinterpretAsFloats().fma(x1, ua);
            vb = v.lanewise(LSHR, 20).selectFrom(table).reinterpretAsFloats().fma(x5, vb);
            ub = u.lanewise(LSHR, 20).selectFrom(table).reinterpretAsFloats().fma(x5, ub);
            FloatVector x2 = FloatVector.fromArray(F, xd, e + 2 * L), x6 = FloatVector.fromArray(F, xd, e + 6 * L);
            va = v.lanewise(LSHR, 8).selectFrom(table).reinterpretAsFloats().fma(x2, va);
            ua = u.lanewise(LSHR, 8).selectFrom(table).reinterpretAsFloats().fma(x2, ua);
            vb = v.lanewise(LSHR, 24).selectFrom(table).reinterpretAsFloats().fma(x6, vb);
            ub = u.lanewise(LSHR, 24).selectFrom(table).reinterpretAsFloats().fma(x6, ub);
            FloatVector x3 = FloatVector.fromArray(F, xd, e + 3 * L), x7 = FloatVector.fromArray(F, xd, e + 7 * L);
            va = v.lanewise(LSHR, 12).selectFrom(table).reinterpretAsFloats().fma(x3, va);
            ua = u.lanewise(LSHR, 12).selectFrom(table).reinterpretAsFloats().fma(x3, ua);
            vb = v.lanewise(LSHR, 28).selectFrom(table).reinterpretAsFloats().fma(x7, vb);
            ub = u.lanewise(LSHR, 28).selectFrom(table).reinterpretAsFloats().fma(x7, ub);
            FloatVector sa, sc;
            if (twoBlocks) {
                int b = sOff + (e >>> 6), d = sOff2 + (e >>> 6);
                sa = FloatVector.broadcast(F, scales[b]).blend(FloatVector.broadcast(F, scales[b + 1]), UPPER8);
                sc = FloatVector.broadcast(F, scales[d]).blend(FloatVector.broadcast(F, scales[d + 1]), UPPER8);
            } else {
                sa = FloatVector.broadcast(F, scales[sOff + e / bs]);
                sc = FloatVector.broadcast(F, scales[sOff2 + e / bs]);
            }
            a = va.add(vb).fma(sa, a);
            c = ua.add(ub).fma(sc, c);
        }
        // VectorWidth#sum at 512 bits, written out: rotate-and-add by 8, 4, 2, 1, then lane 0
        a = a.add(a.rearrange(ROT8));
        c = c.add(c.rearrange(ROT8));
        a = a.add(a.rearrange(ROT4));
        c = c.add(c.rearrange(ROT4));
        a = a.add(a.rearrange(ROT2));
        c = c.add(c.rearrange(ROT2));
        a = a.add(a.rearrange(ROT1));
        c = c.add(c.rearrange(ROT1));
        out[outOff] = a.lane(0);
        out[outOff + 1] = c.lane(0);
    }
}
