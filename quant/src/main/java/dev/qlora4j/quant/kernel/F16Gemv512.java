package dev.qlora4j.quant.kernel;

import dev.qlora4j.quant.weight.DenseWeight;
import dev.qlora4j.quant.weight.WeightFormat;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Collections;
import java.util.Map;
import java.util.WeakHashMap;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The decode GEMV {@code y = W·x} over F16 rows at 512 bits in three integer ops per 16 weights (the LM head of a
 * model loaded with F16 embeddings, the largest single read of an NF4 decode step). Scalar reference:
 * {@link ScalarKernels#matmul} (through {@link DenseWeight#get}, i.e. {@link Float#float16ToFloat}).
 *
 * <p>The trick: a half {@code h} whose bits are moved into float position — sign to bit 31, the 5 exponent bits to
 * bits 23..27, the 10 mantissa bits to bits 13..22, everything else zero — is the float {@code w · 2^-112}
 * <em>exactly</em>, for normal halves (a normal float) and subnormal halves (a float subnormal with 10 significant
 * bits) alike. So with x scaled by {@code 2^112} beforehand ({@link #prepare}, exact when {@code |x| < 2^15}) each
 * product {@code w' · x'} is the very real number {@code w · x}, and {@code fma(w', x', acc)} rounds to the same float
 * as {@code fma(w, x, acc)}. Only half infinities and NaNs (exponent 31) would come out wrong — finite — so a weight
 * that holds any takes the general path ({@link #allFinite}, one scan per weight, remembered; 77 ms for the GPT-2
 * head on the first decode step).
 *
 * <p>One 512-bit int load holds 32 halves; in each int lane the low half is column {@code 2l} and the high half
 * column {@code 2l + 1}. Low: {@code ((v << 16) >> 3) & 0x8FFFE000}; high: {@code (v >> 3) & 0x8FFFE000} (the
 * arithmetic shift copies the sign into bits 28..31, the mask keeps bit 31). That is five int ops per 32 weights,
 * against seven per 16 for the exact widening of {@link DenseRuns512#f16Quads} (sign-extend, shift, mask, rebias
 * multiply, infinity fix-up), which made that loop op-bound at ~30 GB/s on the Zen 4 box. x is de-interleaved to
 * match: {@link #prepare} writes, per 32 columns, the 16 even ones then the 16 odd ones.
 *
 * <p>Per row two accumulator chains (even columns, odd columns), summed at the row's end, then one lane sum — the
 * same in {@link #quads}, {@link #pairs} and {@link #row}, so a row's output does not depend on the tiling.
 */
final class F16Gemv512 {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_512;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_512;
    private static final int L = 16;
    private static final int MASK = 0x8FFF_E000; // sign | exponent | mantissa, once shifted into float position
    private static final float TWO_POW_112 = 0x1p112f;
    private static final ValueLayout.OfLong I64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final float X_LIMIT = 0x1p15f; // |x| below this: x · 2^112 stays finite with room to spare

    /** Weights already scanned for half infinities / NaNs: true when they hold none. */
    private static final Map<DenseWeight, Boolean> FINITE = Collections.synchronizedMap(new WeakHashMap<>());

    private F16Gemv512() {
    }

    /** Whether this path takes {@code w}: F16 rows of whole 32-column blocks with no half infinity or NaN. */
    static boolean supports(DenseWeight w) {
        return w.format() == WeightFormat.F16 && w.cols() % (2 * L) == 0 && allFinite(w);
    }

    /** Whether no half of {@code w} has the all-ones exponent (infinity or NaN); scanned once per weight. */
    static boolean allFinite(DenseWeight w) {
        Boolean known = FINITE.get(w);
        if (known != null) return known;
        boolean finite = scanFinite(w.data(), (long) w.rows() * w.cols() * 2);
        FINITE.put(w, finite);
        return finite;
    }

    /**
     * Whether no half in {@code seg[0, bytes)} has exponent 31. It runs once per weight, so it is plain scalar code
     * that C2 compiles on-stack within the first few thousand iterations: four halves per long, {@code t = v &
     * 0x7C00…} then {@code t ^ 0x7C00…} is zero in exactly the halves that hit, found by the zero-lane test
     * {@code (u - 0x0001…) & ~u & 0x8000…} (bit 15 of {@code u} is never set, so no half can borrow into a false
     * hit without a true one). A Vector API loop here ran boxed before it was compiled: 0.53 s for the 77 MB GPT-2
     * head, on the first decode step.
     */
    private static boolean scanFinite(MemorySegment seg, long bytes) {
        final long exp = 0x7C00_7C00_7C00_7C00L, ones = 0x0001_0001_0001_0001L, top = 0x8000_8000_8000_8000L;
        long p = 0;
        for (; p + 8 <= bytes; p += 8) {
            long u = (seg.get(I64_LE, p) & exp) ^ exp; // a half is zero here iff its exponent is all ones
            if (((u - ones) & ~u & top) != 0) return false;
        }
        for (; p < bytes; p += 2) {
            if ((seg.get(I16_LE, p) & 0x7C00) == 0x7C00) return false;
        }
        return true;
    }

    /**
     * {@code xs (K)}: x scaled by {@code 2^112}, de-interleaved per 32 columns (the 16 even ones, then the 16 odd
     * ones). Returns false — and this path must not run — when some {@code |x| >= 2^15} (or is infinite).
     */
    static boolean prepare(float[] x, int xOff, int k, float[] xs) {
        for (int j = 0; j < k; j++) {
            if (Math.abs(x[xOff + j]) >= X_LIMIT) return false;
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
     * {@code partial[(4r + u) · 16 ..]} (lane sums follow in {@link PanamaDot#denseQuads}' way, by the caller).
     *
     * @param xs      {@code (K)} from {@link #prepare}
     * @param partial {@code (4 · rows, 16)}
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
     * @param partial {@code (2 · rows, 16)}: row {@code rowA + r} at {@code 2r · 16}, row {@code rowB + r} next
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

    /** The low halves (even columns) of 16 int lanes as {@code w · 2^-112}. */
    private static FloatVector lo(IntVector v) {
        return v.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(MASK).reinterpretAsFloats();
    }

    /** The high halves (odd columns) of 16 int lanes as {@code w · 2^-112}. */
    private static FloatVector hi(IntVector v) {
        return v.lanewise(VectorOperators.ASHR, 3).and(MASK).reinterpretAsFloats();
    }
}
