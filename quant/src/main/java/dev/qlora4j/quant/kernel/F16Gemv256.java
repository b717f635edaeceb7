package dev.qlora4j.quant.kernel;

import dev.qlora4j.quant.weight.DenseWeight;
import dev.qlora4j.quant.weight.WeightFormat;
import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link F16Gemv512} at 256 bits (AVX2): the decode GEMV {@code y = W·x} over F16 rows in five integer ops per 16
 * weights (the LM head of a model loaded with F16 embeddings, the largest single read of an NF4 decode step). Scalar
 * reference: {@link ScalarKernels#matmul} (through {@link DenseWeight#get}, i.e. {@link Float#float16ToFloat}).
 *
 * <p>The same trick as {@link F16Gemv512} (see there for why it is exact): a half's bits moved into float position
 * are {@code w · 2^-112} exactly, x is pre-scaled by {@code 2^112} ({@link #prepare}, exact when {@code |x| < 2^15}),
 * so every FMA rounds as {@code fma(w, x, acc)} would; a weight holding a half infinity or NaN takes the general path
 * ({@link F16Gemv512#allFinite}, scanned once per weight). One 256-bit int load holds 16 halves: low halves (even
 * columns) {@code ((v << 16) >> 3) & 0x8FFFE000}, high halves (odd columns) {@code (v >> 3) & 0x8FFFE000}; x is
 * de-interleaved per 16 columns to match. The general path at this width widens each row into a buffer
 * ({@link PanamaDequant#dense}) and then runs the dense dot: a store and a reload more per weight.
 *
 * <p>Written with {@code static final} species and no width-generic calls, so C2 compiles each loop whole (see
 * {@link FourBitGemv256}). Per row two accumulator chains (even columns, odd columns), summed at the row's end, then
 * one lane sum — the same in {@link #quads}, {@link #pairs} and {@link #row}, so a row's output does not depend on
 * the tiling.
 */
final class F16Gemv256 {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    static final int L = 8;
    private static final int MASK = 0x8FFF_E000; // sign | exponent | mantissa, once shifted into float position
    private static final float TWO_POW_112 = 0x1p112f;
    private static final float X_LIMIT = 0x1p15f; // |x| below this: x · 2^112 stays finite with room to spare

    private F16Gemv256() {
    }

    /** Whether this path takes {@code w}: F16 rows of whole 16-column blocks with no half infinity or NaN. */
    static boolean supports(DenseWeight w) {
        return w.format() == WeightFormat.F16 && w.cols() % (2 * L) == 0 && F16Gemv512.allFinite(w);
    }

    /**
     * {@code xs (K)}: x scaled by {@code 2^112}, de-interleaved per 16 columns (the 8 even ones, then the 8 odd
     * ones). Returns false — and this path must not run — when some {@code |x| >= 2^15} (or is infinite or NaN).
     */
    static boolean prepare(float[] x, int xOff, int k, float[] xs) {
        for (int j = 0; j < k; j++) {
            if (!(Math.abs(x[xOff + j]) < X_LIMIT)) return false;
        }
        for (int b = 0; b < k; b += 2 * L) {
            for (int l = 0; l < L; l++) {
                xs[b + l] = x[xOff + b + 2 * l] * TWO_POW_112;
                xs[b + L + l] = x[xOff + b + 2 * l + 1] * TWO_POW_112;
            }
        }
        return true;
    }

    /**
     * Rows {@code rowA + u·gap + r} · x for {@code u < 4}, {@code r < rows}: each row's two chains summed into
     * {@code partial[(4r + u) · 8 ..]} (lane sums follow, by the caller).
     *
     * @param xs      {@code (K)} from {@link #prepare}
     * @param partial {@code (4 · rows, 8)}
     */
    static void quads(DenseWeight d, int rowA, int gap, int rows, float[] xs, float[] partial) {
        int k = d.cols(), j = 0, o = 0;
        MemorySegment seg = d.data();
        FloatVector a0 = FloatVector.zero(F), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, e0 = a0, e1 = a0;
        long g = (long) gap * k * 2, p = (long) rowA * k * 2, end = p + (long) rows * k * 2;
        for (; p < end; p += 4L * L) {
            FloatVector xe = FloatVector.fromArray(F, xs, j), xo = FloatVector.fromArray(F, xs, j + L);
            IntVector va = IntVector.fromMemorySegment(I, seg, p, VectorWidth.LE);
            IntVector vb = IntVector.fromMemorySegment(I, seg, p + g, VectorWidth.LE);
            IntVector vc = IntVector.fromMemorySegment(I, seg, p + 2 * g, VectorWidth.LE);
            IntVector ve = IntVector.fromMemorySegment(I, seg, p + 3 * g, VectorWidth.LE);
            a0 = lo(va).fma(xe, a0);
            a1 = hi(va).fma(xo, a1);
            b0 = lo(vb).fma(xe, b0);
            b1 = hi(vb).fma(xo, b1);
            c0 = lo(vc).fma(xe, c0);
            c1 = hi(vc).fma(xo, c1);
            e0 = lo(ve).fma(xe, e0);
            e1 = hi(ve).fma(xo, e1);
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
     * Rows {@code rowA + r} and {@code rowB + r} · x for {@code r < rows}: as {@link #quads} for two runs.
     *
     * @param partial {@code (2 · rows, 8)}: row {@code rowA + r} at {@code 2r · 8}, row {@code rowB + r} next
     */
    static void pairs(DenseWeight d, int rowA, int rowB, int rows, float[] xs, float[] partial) {
        int k = d.cols(), j = 0, o = 0;
        MemorySegment seg = d.data();
        FloatVector a0 = FloatVector.zero(F), a1 = a0, c0 = a0, c1 = a0;
        long p = (long) rowA * k * 2, q = (long) rowB * k * 2, end = p + (long) rows * k * 2;
        for (; p < end; p += 4L * L, q += 4L * L) {
            FloatVector xe = FloatVector.fromArray(F, xs, j), xo = FloatVector.fromArray(F, xs, j + L);
            IntVector va = IntVector.fromMemorySegment(I, seg, p, VectorWidth.LE);
            IntVector vc = IntVector.fromMemorySegment(I, seg, q, VectorWidth.LE);
            a0 = lo(va).fma(xe, a0);
            a1 = hi(va).fma(xo, a1);
            c0 = lo(vc).fma(xe, c0);
            c1 = hi(vc).fma(xo, c1);
            j += 2 * L;
            if (j == k) {
                a0.add(a1).intoArray(partial, o);
                c0.add(c1).intoArray(partial, o + L);
                o += 2 * L;
                j = 0;
                a0 = a1 = c0 = c1 = FloatVector.zero(F);
            }
        }
    }

    /** One row · x: the same two chains and lane sum as {@link #quads} / {@link #pairs}. */
    static float row(VectorWidth vw, DenseWeight d, int row, float[] xs) {
        int k = d.cols();
        MemorySegment seg = d.data();
        FloatVector a0 = FloatVector.zero(F), a1 = a0;
        for (long p = (long) row * k * 2, j = 0; j < k; j += 2 * L, p += 4L * L) {
            IntVector v = IntVector.fromMemorySegment(I, seg, p, VectorWidth.LE);
            a0 = lo(v).fma(FloatVector.fromArray(F, xs, (int) j), a0);
            a1 = hi(v).fma(FloatVector.fromArray(F, xs, (int) j + L), a1);
        }
        return vw.sum(a0.add(a1));
    }

    /** The low halves (even columns) of 8 int lanes as {@code w · 2^-112}. */
    private static FloatVector lo(IntVector v) {
        return v.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(MASK).reinterpretAsFloats();
    }

    /** The high halves (odd columns) of 8 int lanes as {@code w · 2^-112}. */
    private static FloatVector hi(IntVector v) {
        return v.lanewise(VectorOperators.ASHR, 3).and(MASK).reinterpretAsFloats();
    }
}
