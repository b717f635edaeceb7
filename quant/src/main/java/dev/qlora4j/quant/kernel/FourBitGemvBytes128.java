package dev.qlora4j.quant.kernel;

import dev.qlora4j.quant.weight.FourBitWeight;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

import static jdk.incubator.vector.VectorOperators.AND;
import static jdk.incubator.vector.VectorOperators.LSHL;
import static jdk.incubator.vector.VectorOperators.LSHR;

/**
 * NF4/FP4 decode GEMV ({@code M = 1}) for AVX2 cores that split 256-bit operations into two 128-bit halves (AMD
 * Zen and Zen+, {@link CpuVendor#zen1()}): the 16-entry code lookup done with in-lane byte shuffles ({@code vpshufb})
 * instead of {@link FourBitGemv256}'s 256-bit {@code vpermd}, which those cores split and serialize. On a Zen 1
 * EPYC (bench/RESULTS.md "Session 22") this kernel ran the NF4+DQ decode GEMV 1.4–1.6× faster than
 * {@link FourBitGemv256} (GemvBench) and the model's block GEMVs 1.5–1.7× faster.
 *
 * <p>The code table's 16 float32 values are split into four byte planes ({@link #planes}: plane {@code j} holds byte
 * {@code j} of each value). Per 16 packed bytes (32 weights): the high and the low nibbles become two 16-lane index
 * vectors; each indexes the four planes ({@code 4 vpshufb}), and shifts and byte blends reassemble the planes into
 * four vectors of exact float32 code values. Their lane order is fixed and {@link #permute} puts {@code x} in the same
 * order once per call, so no lane shuffle is needed after the lookups. The products are summed per quantization block
 * and each block's sum is scaled by its absmax with one FMA.
 *
 * <p>Arithmetic: {@code y = Σ_b absmax_b · Σ_{k∈b} code[n_k] · x_k}, in float32 with FMA; the code values are exact,
 * only the order of the sums differs from the scalar reference {@code Σ_k (code[n_k] · absmax) · x_k}
 * ({@link ScalarKernels}), so the results agree to float32 rounding. Written with {@code static final} species and no
 * calls in the loop (see {@link FourBitGemv256} for why). C2 pitfalls found on the way (bench/RESULTS.md
 * "Session 22"):
 * <ul>
 *   <li>the packed bytes are loaded as a vector of longs directly: loading bytes and reinterpreting them made C2
 *       allocate the vector every step;</li>
 *   <li>the lookups are {@code selectFrom}, not {@code rearrange(toShuffle())}, which costs a wrap-and-check per
 *       index vector;</li>
 *   <li>this is the one 128-bit kernel in a 256-bit process, so it keeps off the Vector API call sites the 256-bit
 *       kernels share: a shared site that sees a second vector class loses its intrinsic. With
 *       {@code IntVector} shifts and {@code reinterpretAsFloats} here, the F16 head's 256-bit
 *       {@code reinterpretAsFloats} fell back to Java ({@code AbstractVector.convert0}) and took 13-14 ms instead
 *       of 4 per token. Hence {@code LongVector} for the integer work (no 256-bit kernel uses it) and
 *       {@code reinterpretShape} for the floats.</li>
 * </ul>
 */
final class FourBitGemvBytes128 {

    private static final VectorSpecies<Byte> B = ByteVector.SPECIES_128;
    private static final VectorSpecies<Long> LG = LongVector.SPECIES_128;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_128;
    /** Weights per step: 16 packed bytes. */
    static final int CHUNK = 32;
    /** Bytes 1 and 3 of each 4-byte group (one float's bytes). */
    private static final VectorMask<Byte> ODD_BYTES = VectorMask.fromLong(B, 0xAAAAL);
    /** Bytes 2 and 3 of each 4-byte group. */
    private static final VectorMask<Byte> HIGH_HALVES = VectorMask.fromLong(B, 0xCCCCL);
    /**
     * Which weight of a step's 8-weight group each of the eight 4-float vectors of a step holds, in the order the
     * kernel produces them: high nibbles (weights 2p) then low nibbles (2p + 1), each as a, b, c, d below.
     */
    private static final int[] GROUP_OFFSET = {0, 4, 2, 6, 1, 5, 3, 7};

    private FourBitGemvBytes128() {
    }

    /** Whole 32-weight steps per block and whole blocks per row, and one row's scales fit {@code BulkScales.CHUNK}. */
    static boolean supports(FourBitWeight q) {
        int bs = q.blocksize();
        return bs % CHUNK == 0 && q.cols() % bs == 0 && q.cols() / bs <= BulkScales.CHUNK;
    }

    /**
     * The four byte planes of a 16-entry float32 code table.
     *
     * @param table  {@code (16)} code values
     * @param planes {@code (4, 16)}: {@code planes[16·j + c]} = byte {@code j} (little-endian) of {@code table[c]}
     */
    static void planes(float[] table, byte[] planes) {
        for (int c = 0; c < 16; c++) {
            int bits = Float.floatToRawIntBits(table[c]);
            for (int j = 0; j < 4; j++) planes[16 * j + c] = (byte) (bits >>> (8 * j));
        }
    }

    /**
     * {@code x} in the kernel's lane order: in the step of weights {@code s .. s + 31} ({@code s} a multiple of 32),
     * vector {@code v} (4 floats) lane {@code t}, {@code xp[s + 4·v + t]}, holds {@code x[s + 8·t + GROUP_OFFSET[v]]}.
     *
     * @param x  {@code (K)} at {@code xOff}, {@code K} a multiple of {@link #CHUNK}
     * @param xp {@code (K)} out
     */
    static void permute(float[] x, int xOff, int k, float[] xp) {
        for (int s = 0; s < k; s += CHUNK) {
            for (int v = 0; v < 8; v++) {
                for (int t = 0; t < 4; t++) xp[s + 4 * v + t] = x[xOff + s + 8 * t + GROUP_OFFSET[v]];
            }
        }
    }

    /**
     * {@code W[row, :] · x}.
     *
     * @param xp     {@code (K)} x in the kernel's order ({@link #permute})
     * @param planes {@code (64)} the code table's byte planes ({@link #planes})
     * @param scales {@code (K / blocksize)} the row's block absmax
     */
    static float row(FourBitWeight q, int row, float[] xp, byte[] planes, float[] scales) {
        int k = q.cols(), bs = q.blocksize(), blocks = k / bs;
        ByteVector t0 = ByteVector.fromArray(B, planes, 0), t1 = ByteVector.fromArray(B, planes, 16);
        ByteVector t2 = ByteVector.fromArray(B, planes, 32), t3 = ByteVector.fromArray(B, planes, 48);
        MemorySegment packed = q.packed();
        long o = (long) row * k >>> 1;
        FloatVector total = FloatVector.zero(F);
        for (int b = 0; b < blocks; b++) {
            FloatVector a0 = FloatVector.zero(F), a1 = a0;
            for (int e = b * bs, e1 = e + bs; e < e1; e += CHUNK, o += CHUNK / 2) {
                // written out in full: helper methods here would exceed C2's inlining budget (see FourBitGemv256)
                LongVector iv = LongVector.fromMemorySegment(LG, packed, o, ByteOrder.LITTLE_ENDIAN); // 16 packed bytes
                ByteVector hi = iv.lanewise(LSHR, 4).lanewise(AND, 0x0F0F0F0F0F0F0F0FL).reinterpretAsBytes();
                ByteVector lo = iv.lanewise(AND, 0x0F0F0F0F0F0F0F0FL).reinterpretAsBytes();
                // high nibbles: weights 2p of the step. pj = byte j of each weight's code value
                LongVector p0 = hi.selectFrom(t0).reinterpretAsLongs(), p1 = hi.selectFrom(t1).reinterpretAsLongs();
                LongVector p2 = hi.selectFrom(t2).reinterpretAsLongs(), p3 = hi.selectFrom(t3).reinterpretAsLongs();
                // 16-bit halves: e = weights 8t, 8t+4 (bytes 0 and 2 of each lane), o = weights 8t+2, 8t+6
                LongVector e01 = p0.reinterpretAsBytes().blend(p1.lanewise(LSHL, 8).reinterpretAsBytes(), ODD_BYTES).reinterpretAsLongs();
                LongVector o01 = p0.lanewise(LSHR, 8).reinterpretAsBytes().blend(p1.reinterpretAsBytes(), ODD_BYTES).reinterpretAsLongs();
                LongVector e23 = p2.reinterpretAsBytes().blend(p3.lanewise(LSHL, 8).reinterpretAsBytes(), ODD_BYTES).reinterpretAsLongs();
                LongVector o23 = p2.lanewise(LSHR, 8).reinterpretAsBytes().blend(p3.reinterpretAsBytes(), ODD_BYTES).reinterpretAsLongs();
                // whole floats: a = weights 8t, b = 8t+4, c = 8t+2, d = 8t+6
                FloatVector wa = (FloatVector) e01.reinterpretAsBytes().blend(e23.lanewise(LSHL, 16).reinterpretAsBytes(), HIGH_HALVES).reinterpretShape(F, 0);
                FloatVector wb = (FloatVector) e01.lanewise(LSHR, 16).reinterpretAsBytes().blend(e23.reinterpretAsBytes(), HIGH_HALVES).reinterpretShape(F, 0);
                FloatVector wc = (FloatVector) o01.reinterpretAsBytes().blend(o23.lanewise(LSHL, 16).reinterpretAsBytes(), HIGH_HALVES).reinterpretShape(F, 0);
                FloatVector wd = (FloatVector) o01.lanewise(LSHR, 16).reinterpretAsBytes().blend(o23.reinterpretAsBytes(), HIGH_HALVES).reinterpretShape(F, 0);
                a0 = wa.fma(FloatVector.fromArray(F, xp, e), a0);
                a1 = wb.fma(FloatVector.fromArray(F, xp, e + 4), a1);
                a0 = wc.fma(FloatVector.fromArray(F, xp, e + 8), a0);
                a1 = wd.fma(FloatVector.fromArray(F, xp, e + 12), a1);
                // low nibbles: weights 2p + 1, the same steps
                LongVector q0 = lo.selectFrom(t0).reinterpretAsLongs(), q1 = lo.selectFrom(t1).reinterpretAsLongs();
                LongVector q2 = lo.selectFrom(t2).reinterpretAsLongs(), q3 = lo.selectFrom(t3).reinterpretAsLongs();
                LongVector f01 = q0.reinterpretAsBytes().blend(q1.lanewise(LSHL, 8).reinterpretAsBytes(), ODD_BYTES).reinterpretAsLongs();
                LongVector g01 = q0.lanewise(LSHR, 8).reinterpretAsBytes().blend(q1.reinterpretAsBytes(), ODD_BYTES).reinterpretAsLongs();
                LongVector f23 = q2.reinterpretAsBytes().blend(q3.lanewise(LSHL, 8).reinterpretAsBytes(), ODD_BYTES).reinterpretAsLongs();
                LongVector g23 = q2.lanewise(LSHR, 8).reinterpretAsBytes().blend(q3.reinterpretAsBytes(), ODD_BYTES).reinterpretAsLongs();
                FloatVector va = (FloatVector) f01.reinterpretAsBytes().blend(f23.lanewise(LSHL, 16).reinterpretAsBytes(), HIGH_HALVES).reinterpretShape(F, 0);
                FloatVector vb = (FloatVector) f01.lanewise(LSHR, 16).reinterpretAsBytes().blend(f23.reinterpretAsBytes(), HIGH_HALVES).reinterpretShape(F, 0);
                FloatVector vc = (FloatVector) g01.reinterpretAsBytes().blend(g23.lanewise(LSHL, 16).reinterpretAsBytes(), HIGH_HALVES).reinterpretShape(F, 0);
                FloatVector vd = (FloatVector) g01.lanewise(LSHR, 16).reinterpretAsBytes().blend(g23.reinterpretAsBytes(), HIGH_HALVES).reinterpretShape(F, 0);
                a0 = va.fma(FloatVector.fromArray(F, xp, e + 16), a0);
                a1 = vb.fma(FloatVector.fromArray(F, xp, e + 20), a1);
                a0 = vc.fma(FloatVector.fromArray(F, xp, e + 24), a0);
                a1 = vd.fma(FloatVector.fromArray(F, xp, e + 28), a1);
            }
            total = a0.add(a1).fma(FloatVector.broadcast(F, scales[b]), total);
        }
        // fixed-order lane sum (reduceLanes' order differs between the interpreter and C2)
        return (total.lane(0) + total.lane(1)) + (total.lane(2) + total.lane(3));
    }
}
