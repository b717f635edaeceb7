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
    private static final VectorMask<Float> ODD_QUARTERS = VectorMask.fromLong(F, 0xF0F0L); // lanes 4..7, 12..15
    private static final VectorShuffle<Float> SWAP4 = VectorShuffle.fromValues(F, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14,
            15, 8, 9, 10, 11), SWAP2 = VectorShuffle.fromValues(F, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13),
            SWAP1 = VectorShuffle.fromValues(F, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);

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
     * Four rows at once: {@code out[0] = W[r0, :] · x}, {@code out[8] = W[r1, :] · x}, {@code out[4] = W[r2, :] · x},
     * {@code out[12] = W[r3, :] · x} (the lanes the final reduction leaves them in; the other lanes of {@code out}
     * are scratch). The caller spreads the rows a quarter tile apart, so each of the four walks its own contiguous run
     * of memory over successive calls, as {@link #pair}'s two do.
     *
     * <p>Why four: on the AVX-512 Zen 5 this was tuned on, the lookups ({@code vpermps}) run on one pipe and bound
     * the loop; four rows share each {@code x} load and keep more independent lookups in flight (W in cache, one
     * thread: 1.26× {@link #pair}'s weights per second in a stand-alone loop). The lane sums of the four accumulators
     * are folded together — two blends and one rotation per level — so the reduction costs 5 permutes for four rows
     * where {@link #pair}'s costs 4 per row.
     *
     * @param xd     {@code (K)} x as {@link #deinterleave} leaves it
     * @param scales the absmax of row {@code ri}'s blocks at {@code si}
     * @param out    {@code (16)} scratch; the four dot products land in lanes 0, 8, 4, 12
     */
    static void quad(FourBitWeight q, int r0, int r1, int r2, int r3, float[] xd, float[] scales,
                     int s0, int s1, int s2, int s3, float[] out) {
        int k = q.cols(), bs = q.blocksize();
        boolean twoBlocks = bs == 64;
        IntVector table = FloatVector.fromArray(F, q.codeTable(), 0).reinterpretAsInts();
        MemorySegment packed = q.packed();
        long o0 = (long) r0 * k >>> 1, o1 = (long) r1 * k >>> 1, o2 = (long) r2 * k >>> 1, o3 = (long) r3 * k >>> 1;
        FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F), a2 = FloatVector.zero(F),
                a3 = FloatVector.zero(F);
        for (int e = 0; e < k; e += STEP, o0 += STEP / 2, o1 += STEP / 2, o2 += STEP / 2, o3 += STEP / 2) {
            // written out in full: helper methods here would exceed C2's inlining node budget (see FourBitGemv256)
            IntVector v0 = IntVector.fromMemorySegment(I, packed, o0, VectorWidth.LE);
            IntVector v1 = IntVector.fromMemorySegment(I, packed, o1, VectorWidth.LE);
            IntVector v2 = IntVector.fromMemorySegment(I, packed, o2, VectorWidth.LE);
            IntVector v3 = IntVector.fromMemorySegment(I, packed, o3, VectorWidth.LE);
            // two chains per row: nibbles j = 0..3 (p) and j = 4..7 (h)
            FloatVector x0 = FloatVector.fromArray(F, xd, e), x4 = FloatVector.fromArray(F, xd, e + 4 * L);
            FloatVector p0 = v0.selectFrom(table).reinterpretAsFloats().mul(x0);
            FloatVector p1 = v1.selectFrom(table).reinterpretAsFloats().mul(x0);
            FloatVector p2 = v2.selectFrom(table).reinterpretAsFloats().mul(x0);
            FloatVector p3 = v3.selectFrom(table).reinterpretAsFloats().mul(x0);
            FloatVector h0 = v0.lanewise(LSHR, 16).selectFrom(table).reinterpretAsFloats().mul(x4);
            FloatVector h1 = v1.lanewise(LSHR, 16).selectFrom(table).reinterpretAsFloats().mul(x4);
            FloatVector h2 = v2.lanewise(LSHR, 16).selectFrom(table).reinterpretAsFloats().mul(x4);
            FloatVector h3 = v3.lanewise(LSHR, 16).selectFrom(table).reinterpretAsFloats().mul(x4);
            FloatVector x1 = FloatVector.fromArray(F, xd, e + L), x5 = FloatVector.fromArray(F, xd, e + 5 * L);
            p0 = v0.lanewise(LSHR, 4).selectFrom(table).reinterpretAsFloats().fma(x1, p0);
            p1 = v1.lanewise(LSHR, 4).selectFrom(table).reinterpretAsFloats().fma(x1, p1);
            p2 = v2.lanewise(LSHR, 4).selectFrom(table).reinterpretAsFloats().fma(x1, p2);
            p3 = v3.lanewise(LSHR, 4).selectFrom(table).reinterpretAsFloats().fma(x1, p3);
            h0 = v0.lanewise(LSHR, 20).selectFrom(table).reinterpretAsFloats().fma(x5, h0);
            h1 = v1.lanewise(LSHR, 20).selectFrom(table).reinterpretAsFloats().fma(x5, h1);
            h2 = v2.lanewise(LSHR, 20).selectFrom(table).reinterpretAsFloats().fma(x5, h2);
            h3 = v3.lanewise(LSHR, 20).selectFrom(table).reinterpretAsFloats().fma(x5, h3);
            FloatVector x2 = FloatVector.fromArray(F, xd, e + 2 * L), x6 = FloatVector.fromArray(F, xd, e + 6 * L);
            p0 = v0.lanewise(LSHR, 8).selectFrom(table).reinterpretAsFloats().fma(x2, p0);
            p1 = v1.lanewise(LSHR, 8).selectFrom(table).reinterpretAsFloats().fma(x2, p1);
            p2 = v2.lanewise(LSHR, 8).selectFrom(table).reinterpretAsFloats().fma(x2, p2);
            p3 = v3.lanewise(LSHR, 8).selectFrom(table).reinterpretAsFloats().fma(x2, p3);
            h0 = v0.lanewise(LSHR, 24).selectFrom(table).reinterpretAsFloats().fma(x6, h0);
            h1 = v1.lanewise(LSHR, 24).selectFrom(table).reinterpretAsFloats().fma(x6, h1);
            h2 = v2.lanewise(LSHR, 24).selectFrom(table).reinterpretAsFloats().fma(x6, h2);
            h3 = v3.lanewise(LSHR, 24).selectFrom(table).reinterpretAsFloats().fma(x6, h3);
            FloatVector x3 = FloatVector.fromArray(F, xd, e + 3 * L), x7 = FloatVector.fromArray(F, xd, e + 7 * L);
            p0 = v0.lanewise(LSHR, 12).selectFrom(table).reinterpretAsFloats().fma(x3, p0);
            p1 = v1.lanewise(LSHR, 12).selectFrom(table).reinterpretAsFloats().fma(x3, p1);
            p2 = v2.lanewise(LSHR, 12).selectFrom(table).reinterpretAsFloats().fma(x3, p2);
            p3 = v3.lanewise(LSHR, 12).selectFrom(table).reinterpretAsFloats().fma(x3, p3);
            h0 = v0.lanewise(LSHR, 28).selectFrom(table).reinterpretAsFloats().fma(x7, h0);
            h1 = v1.lanewise(LSHR, 28).selectFrom(table).reinterpretAsFloats().fma(x7, h1);
            h2 = v2.lanewise(LSHR, 28).selectFrom(table).reinterpretAsFloats().fma(x7, h2);
            h3 = v3.lanewise(LSHR, 28).selectFrom(table).reinterpretAsFloats().fma(x7, h3);
            FloatVector c0, c1, c2, c3;
            if (twoBlocks) {
                int b = e >>> 6;
                c0 = FloatVector.broadcast(F, scales[s0 + b]).blend(FloatVector.broadcast(F, scales[s0 + b + 1]), UPPER8);
                c1 = FloatVector.broadcast(F, scales[s1 + b]).blend(FloatVector.broadcast(F, scales[s1 + b + 1]), UPPER8);
                c2 = FloatVector.broadcast(F, scales[s2 + b]).blend(FloatVector.broadcast(F, scales[s2 + b + 1]), UPPER8);
                c3 = FloatVector.broadcast(F, scales[s3 + b]).blend(FloatVector.broadcast(F, scales[s3 + b + 1]), UPPER8);
            } else {
                int b = e / bs;
                c0 = FloatVector.broadcast(F, scales[s0 + b]);
                c1 = FloatVector.broadcast(F, scales[s1 + b]);
                c2 = FloatVector.broadcast(F, scales[s2 + b]);
                c3 = FloatVector.broadcast(F, scales[s3 + b]);
            }
            a0 = p0.add(h0).fma(c0, a0);
            a1 = p1.add(h1).fma(c1, a1);
            a2 = p2.add(h2).fma(c2, a2);
            a3 = p3.add(h3).fma(c3, a3);
        }
        // fold: [a0 | a1] by halves, [a2 | a3] likewise, then quarters, then pairs and neighbours within each quarter
        FloatVector s01 = a0.blend(a1, UPPER8).add(a1.blend(a0, UPPER8).rearrange(ROT8)); // 0-7: a0, 8-15: a1
        FloatVector s23 = a2.blend(a3, UPPER8).add(a3.blend(a2, UPPER8).rearrange(ROT8)); // 0-7: a2, 8-15: a3
        FloatVector t = s01.blend(s23, ODD_QUARTERS).add(s23.blend(s01, ODD_QUARTERS).rearrange(SWAP4));
        t = t.add(t.rearrange(SWAP2)); // quarters: a0, a2, a1, a3
        t = t.add(t.rearrange(SWAP1));
        t.intoArray(out, 0);
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
