package dev.qlora4j.quant.kernel;

import dev.qlora4j.quant.weight.DenseWeight;
import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link PanamaDot#denseRuns}' loops at 512 bits with {@code static final} species: the same loads, products,
 * accumulator chains and row switches as the width-generic loops there (bit-identical partial sums).
 *
 * <p>Why a copy: the generic loops reach their vector intrinsics only through the call-site type profile of the
 * species ({@code vw.f()} is an instance field). These loops are long (a whole run of rows per call), so C2 may
 * compile them on-stack (OSR) with a weak profile, and a compile that misses the profile runs every vector op
 * boxed. One JFR-profiled F32 decode ran at 52 instead of ~90 tok/s with many of the loop's samples in boxed
 * vector code ({@code VectorSupport.ternaryOp}, {@code dummyVector}). Warm-up runs there too, so that profile
 * does not prove the cause. Constant species take the profile out of the question, as in {@link FourBitGemv512}.
 */
final class DenseRuns512 {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_512;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_512;
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_256;
    private static final int L = 16;

    private DenseRuns512() {
    }

    /** F32 rows: see {@link PanamaDot#denseRuns}; {@code partial} is {@code (2 · rows, 16)}. */
    static void f32(DenseWeight d, int rowA, int rowB, int rows, float[] x, int xOff, float[] partial) {
        int k = d.cols(), j = 0, o = 0;
        MemorySegment seg = d.data();
        FloatVector a0 = FloatVector.zero(F), a1 = a0, c0 = a0, c1 = a0;
        long p = (long) rowA * k * 4, q = (long) rowB * k * 4, end = p + (long) rows * k * 4;
        for (; p < end; p += 8L * L, q += 8L * L) {
            FloatVector x0 = FloatVector.fromArray(F, x, xOff + j), x1 = FloatVector.fromArray(F, x, xOff + j + L);
            a0 = FloatVector.fromMemorySegment(F, seg, p, VectorWidth.LE).fma(x0, a0);
            a1 = FloatVector.fromMemorySegment(F, seg, p + 4L * L, VectorWidth.LE).fma(x1, a1);
            c0 = FloatVector.fromMemorySegment(F, seg, q, VectorWidth.LE).fma(x0, c0);
            c1 = FloatVector.fromMemorySegment(F, seg, q + 4L * L, VectorWidth.LE).fma(x1, c1);
            j += 2 * L;
            if (j == k) { // the end of a row in both runs
                a0.add(a1).intoArray(partial, o);
                c0.add(c1).intoArray(partial, o + L);
                o += 2 * L;
                j = 0;
                a0 = a1 = c0 = c1 = FloatVector.zero(F);
            }
        }
    }

    /** BF16 rows: see {@link PanamaDot#denseRuns}; {@code partial} is {@code (2 · rows, 16)}. */
    static void bf16(DenseWeight d, int rowA, int rowB, int rows, float[] x, int xOff, float[] partial) {
        int k = d.cols(), j = 0, o = 0;
        MemorySegment seg = d.data();
        FloatVector a0 = FloatVector.zero(F), a1 = a0, c0 = a0, c1 = a0;
        long p = (long) rowA * k * 2, q = (long) rowB * k * 2, end = p + (long) rows * k * 2;
        for (; p < end; p += 4L * L, q += 4L * L) {
            FloatVector x0 = FloatVector.fromArray(F, x, xOff + j), x1 = FloatVector.fromArray(F, x, xOff + j + L);
            a0 = widen(seg, p).fma(x0, a0);
            a1 = widen(seg, p + 2L * L).fma(x1, a1);
            c0 = widen(seg, q).fma(x0, c0);
            c1 = widen(seg, q + 2L * L).fma(x1, c1);
            j += 2 * L;
            if (j == k) { // the end of a row in both runs
                a0.add(a1).intoArray(partial, o);
                c0.add(c1).intoArray(partial, o + L);
                o += 2 * L;
                j = 0;
                a0 = a1 = c0 = c1 = FloatVector.zero(F);
            }
        }
    }

    /** F32 rows in four runs: see {@link PanamaDot#denseQuads}; {@code partial} is {@code (4 · rows, 16)}. */
    static void f32Quads(DenseWeight d, int rowA, int gap, int rows, float[] x, int xOff, float[] partial) {
        int k = d.cols(), j = 0, o = 0;
        MemorySegment seg = d.data();
        FloatVector a0 = FloatVector.zero(F), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, e0 = a0, e1 = a0;
        long g = (long) gap * k * 4, p = (long) rowA * k * 4, end = p + (long) rows * k * 4;
        for (; p < end; p += 8L * L) {
            FloatVector x0 = FloatVector.fromArray(F, x, xOff + j), x1 = FloatVector.fromArray(F, x, xOff + j + L);
            a0 = FloatVector.fromMemorySegment(F, seg, p, VectorWidth.LE).fma(x0, a0);
            a1 = FloatVector.fromMemorySegment(F, seg, p + 4L * L, VectorWidth.LE).fma(x1, a1);
            b0 = FloatVector.fromMemorySegment(F, seg, p + g, VectorWidth.LE).fma(x0, b0);
            b1 = FloatVector.fromMemorySegment(F, seg, p + g + 4L * L, VectorWidth.LE).fma(x1, b1);
            c0 = FloatVector.fromMemorySegment(F, seg, p + 2 * g, VectorWidth.LE).fma(x0, c0);
            c1 = FloatVector.fromMemorySegment(F, seg, p + 2 * g + 4L * L, VectorWidth.LE).fma(x1, c1);
            e0 = FloatVector.fromMemorySegment(F, seg, p + 3 * g, VectorWidth.LE).fma(x0, e0);
            e1 = FloatVector.fromMemorySegment(F, seg, p + 3 * g + 4L * L, VectorWidth.LE).fma(x1, e1);
            j += 2 * L;
            if (j == k) { // the end of a row in all four runs
                a0.add(a1).intoArray(partial, o);
                b0.add(b1).intoArray(partial, o + L);
                c0.add(c1).intoArray(partial, o + 2 * L);
                e0.add(e1).intoArray(partial, o + 3 * L);
                o += 4 * L;
                j = 0;
                a0 = a1 = b0 = b1 = c0 = c1 = e0 = e1 = FloatVector.zero(F);
            }
        }
    }

    /** BF16 rows in four runs: see {@link PanamaDot#denseQuads}; {@code partial} is {@code (4 · rows, 16)}. */
    static void bf16Quads(DenseWeight d, int rowA, int gap, int rows, float[] x, int xOff, float[] partial) {
        int k = d.cols(), j = 0, o = 0;
        MemorySegment seg = d.data();
        FloatVector a0 = FloatVector.zero(F), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, e0 = a0, e1 = a0;
        long g = (long) gap * k * 2, p = (long) rowA * k * 2, end = p + (long) rows * k * 2;
        for (; p < end; p += 4L * L) {
            FloatVector x0 = FloatVector.fromArray(F, x, xOff + j), x1 = FloatVector.fromArray(F, x, xOff + j + L);
            a0 = widen(seg, p).fma(x0, a0);
            a1 = widen(seg, p + 2L * L).fma(x1, a1);
            b0 = widen(seg, p + g).fma(x0, b0);
            b1 = widen(seg, p + g + 2L * L).fma(x1, b1);
            c0 = widen(seg, p + 2 * g).fma(x0, c0);
            c1 = widen(seg, p + 2 * g + 2L * L).fma(x1, c1);
            e0 = widen(seg, p + 3 * g).fma(x0, e0);
            e1 = widen(seg, p + 3 * g + 2L * L).fma(x1, e1);
            j += 2 * L;
            if (j == k) { // the end of a row in all four runs
                a0.add(a1).intoArray(partial, o);
                b0.add(b1).intoArray(partial, o + L);
                c0.add(c1).intoArray(partial, o + 2 * L);
                e0.add(e1).intoArray(partial, o + 3 * L);
                o += 4 * L;
                j = 0;
                a0 = a1 = b0 = b1 = c0 = c1 = e0 = e1 = FloatVector.zero(F);
            }
        }
    }

    /**
     * F16 rows in four runs, as {@link #bf16Quads} but with one accumulator chain per row, 16 columns per step:
     * {@code partial} is {@code (4 · rows, 16)}. Each half is widened exactly as {@link Float#float16ToFloat} (see
     * {@link #f16Row}); the conversion is written out at every use, because as a method C2 declines to inline it
     * into loops this large (PrintInlining: "callee is too large", "NodeCountInliningCutoff") and a vector returned
     * from an out-of-line call is boxed.
     */
    static void f16Quads(DenseWeight d, int rowA, int gap, int rows, float[] x, int xOff, float[] partial) {
        int k = d.cols(), j = 0, o = 0;
        MemorySegment seg = d.data();
        FloatVector a = FloatVector.zero(F), b = a, c = a, e = a;
        long g = (long) gap * k * 2, p = (long) rowA * k * 2, end = p + (long) rows * k * 2;
        for (; p < end; p += 2L * L) {
            FloatVector xv = FloatVector.fromArray(F, x, xOff + j);
            IntVector hwa = (IntVector) ShortVector.fromMemorySegment(S, seg, p, VectorWidth.LE)
                    .convertShape(VectorOperators.S2I, I, 0);
            IntVector mwa = hwa.lanewise(VectorOperators.LSHL, 13).and(0x8FFF_E000); // sign | exponent, mantissa
            FloatVector wa = mwa.reinterpretAsFloats().mul(TWO_POW_112).reinterpretAsInts().lanewise(VectorOperators.OR,
                    0x7F80_0000, mwa.and(0x0F80_0000).compare(VectorOperators.EQ, 0x0F80_0000)).reinterpretAsFloats();
            IntVector hwb = (IntVector) ShortVector.fromMemorySegment(S, seg, p + g, VectorWidth.LE)
                    .convertShape(VectorOperators.S2I, I, 0);
            IntVector mwb = hwb.lanewise(VectorOperators.LSHL, 13).and(0x8FFF_E000); // sign | exponent, mantissa
            FloatVector wb = mwb.reinterpretAsFloats().mul(TWO_POW_112).reinterpretAsInts().lanewise(VectorOperators.OR,
                    0x7F80_0000, mwb.and(0x0F80_0000).compare(VectorOperators.EQ, 0x0F80_0000)).reinterpretAsFloats();
            IntVector hwc = (IntVector) ShortVector.fromMemorySegment(S, seg, p + 2 * g, VectorWidth.LE)
                    .convertShape(VectorOperators.S2I, I, 0);
            IntVector mwc = hwc.lanewise(VectorOperators.LSHL, 13).and(0x8FFF_E000); // sign | exponent, mantissa
            FloatVector wc = mwc.reinterpretAsFloats().mul(TWO_POW_112).reinterpretAsInts().lanewise(VectorOperators.OR,
                    0x7F80_0000, mwc.and(0x0F80_0000).compare(VectorOperators.EQ, 0x0F80_0000)).reinterpretAsFloats();
            IntVector hwe = (IntVector) ShortVector.fromMemorySegment(S, seg, p + 3 * g, VectorWidth.LE)
                    .convertShape(VectorOperators.S2I, I, 0);
            IntVector mwe = hwe.lanewise(VectorOperators.LSHL, 13).and(0x8FFF_E000); // sign | exponent, mantissa
            FloatVector we = mwe.reinterpretAsFloats().mul(TWO_POW_112).reinterpretAsInts().lanewise(VectorOperators.OR,
                    0x7F80_0000, mwe.and(0x0F80_0000).compare(VectorOperators.EQ, 0x0F80_0000)).reinterpretAsFloats();
            a = wa.fma(xv, a);
            b = wb.fma(xv, b);
            c = wc.fma(xv, c);
            e = we.fma(xv, e);
            j += L;
            if (j == k) { // the end of a row in all four runs
                a.intoArray(partial, o);
                b.intoArray(partial, o + L);
                c.intoArray(partial, o + 2 * L);
                e.intoArray(partial, o + 3 * L);
                o += 4 * L;
                j = 0;
                a = b = c = e = FloatVector.zero(F);
            }
        }
    }

    /** F16 rows in two runs: as {@link #f16Quads} for two; {@code partial} is {@code (2 · rows, 16)}. */
    static void f16(DenseWeight d, int rowA, int rowB, int rows, float[] x, int xOff, float[] partial) {
        int k = d.cols(), j = 0, o = 0;
        MemorySegment seg = d.data();
        FloatVector a = FloatVector.zero(F), c = a;
        long p = (long) rowA * k * 2, q = (long) rowB * k * 2, end = p + (long) rows * k * 2;
        for (; p < end; p += 2L * L, q += 2L * L) {
            FloatVector xv = FloatVector.fromArray(F, x, xOff + j);
            IntVector hwa = (IntVector) ShortVector.fromMemorySegment(S, seg, p, VectorWidth.LE)
                    .convertShape(VectorOperators.S2I, I, 0);
            IntVector mwa = hwa.lanewise(VectorOperators.LSHL, 13).and(0x8FFF_E000); // sign | exponent, mantissa
            FloatVector wa = mwa.reinterpretAsFloats().mul(TWO_POW_112).reinterpretAsInts().lanewise(VectorOperators.OR,
                    0x7F80_0000, mwa.and(0x0F80_0000).compare(VectorOperators.EQ, 0x0F80_0000)).reinterpretAsFloats();
            IntVector hwc = (IntVector) ShortVector.fromMemorySegment(S, seg, q, VectorWidth.LE)
                    .convertShape(VectorOperators.S2I, I, 0);
            IntVector mwc = hwc.lanewise(VectorOperators.LSHL, 13).and(0x8FFF_E000); // sign | exponent, mantissa
            FloatVector wc = mwc.reinterpretAsFloats().mul(TWO_POW_112).reinterpretAsInts().lanewise(VectorOperators.OR,
                    0x7F80_0000, mwc.and(0x0F80_0000).compare(VectorOperators.EQ, 0x0F80_0000)).reinterpretAsFloats();
            a = wa.fma(xv, a);
            c = wc.fma(xv, c);
            j += L;
            if (j == k) { // the end of a row in both runs
                a.intoArray(partial, o);
                c.intoArray(partial, o + L);
                o += 2 * L;
                j = 0;
                a = c = FloatVector.zero(F);
            }
        }
    }

    /**
     * One F16 row · x, the kernel {@link #f16Quads} and {@link #f16} match bit for bit: one accumulator chain over
     * whole vectors, its lane sum, then the tail in scalar code. The widening is exact, in 7 vector ops: sign-extend
     * each half to an int and shift it up 13 bits, which puts exponent and mantissa in float position and a copy of
     * the sign in bit 31; clear the other sign copies (bits 28..30) and multiply by 2^112 — which rebiases normals,
     * turns subnormals into the right normal floats and keeps the sign — then give infinities and NaNs (half exponent
     * 31) the all-ones float exponent.
     */
    static float f16Row(VectorWidth vw, DenseWeight d, int row, float[] x, int xOff) {
        int k = d.cols(), j = 0;
        MemorySegment seg = d.data();
        long start = (long) row * k;
        FloatVector a = FloatVector.zero(F);
        for (; j + L <= k; j += L) {
            long p = (start + j) * 2;
            IntVector hwa = (IntVector) ShortVector.fromMemorySegment(S, seg, p, VectorWidth.LE)
                    .convertShape(VectorOperators.S2I, I, 0);
            IntVector mwa = hwa.lanewise(VectorOperators.LSHL, 13).and(0x8FFF_E000); // sign | exponent, mantissa
            FloatVector wa = mwa.reinterpretAsFloats().mul(TWO_POW_112).reinterpretAsInts().lanewise(VectorOperators.OR,
                    0x7F80_0000, mwa.and(0x0F80_0000).compare(VectorOperators.EQ, 0x0F80_0000)).reinterpretAsFloats();
            a = wa.fma(FloatVector.fromArray(F, x, xOff + j), a);
        }
        float sum = vw.sum(a);
        for (; j < k; j++) sum += d.get(start + j) * x[xOff + j];
        return sum;
    }

    /** 16 halves at {@code byteOff} widened as in {@link #f16Row} (for the exhaustive conversion test). */
    static FloatVector widenF16(MemorySegment seg, long byteOff) {
        long p = byteOff;
        IntVector hwa = (IntVector) ShortVector.fromMemorySegment(S, seg, p, VectorWidth.LE)
                .convertShape(VectorOperators.S2I, I, 0);
        IntVector mwa = hwa.lanewise(VectorOperators.LSHL, 13).and(0x8FFF_E000); // sign | exponent, mantissa
        FloatVector wa = mwa.reinterpretAsFloats().mul(TWO_POW_112).reinterpretAsInts().lanewise(VectorOperators.OR,
                0x7F80_0000, mwa.and(0x0F80_0000).compare(VectorOperators.EQ, 0x0F80_0000)).reinterpretAsFloats();
        return wa;
    }

    private static final float TWO_POW_112 = 0x1p112f;

    /** 16 BF16 values at {@code byteOff} as floats ({@link VectorWidth#bf16} at 512 bits). */
    private static FloatVector widen(MemorySegment seg, long byteOff) {
        return ((IntVector) ShortVector.fromMemorySegment(S, seg, byteOff, VectorWidth.LE)
                .convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }
}
