package dev.qlora4j.quant.kernel;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Blockwise 8-bit dequantization at 512 bits, 16 elements per step: {@code dst[i] = map[code[e + i]] · absmax},
 * bit-identical to the scalar {@code map[code & 0xff] * absmax} of {@link PanamaDequant#blockwiseInt8}.
 *
 * <p>The 256-entry map is held and looked up as in {@link DoubleQuantScales512}: 8 tables of 32 entries in 16
 * registers, 8 two-table lookups and a 3-level blend tree on code bits 5, 6 and 7. The tree is repeated here rather
 * than shared, because a helper call in the loop would exceed C2's inlining budget (see {@link FourBitGemv256}).
 * The scalar loop measured 6.8 GB/s written on the Zen 5 box (session 4), a map lookup per element.
 */
final class Int8Blockwise512 {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_512;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_512;
    private static final VectorSpecies<Byte> B = ByteVector.SPECIES_128;
    static final int L = 16; // elements per step

    private Int8Blockwise512() {
    }

    /**
     * {@code dst[off + i] = map[codes[e + i]] · scales[(e + i) / bs - s0]} for {@code i < n}; {@code n}, {@code e} and
     * {@code bs} are multiples of 16, so no step straddles two blocks.
     *
     * @param map    {@code (256)} the dynamic map
     * @param scales absmax of block {@code s0 + j} at index {@code j}
     */
    static void steps(MemorySegment codes, long e, int n, int bs, float[] map, float[] scales, int s0, float[] dst,
                      int off) {
        IntVector t0 = tab(map, 0), u0 = tab(map, 16), t1 = tab(map, 32), u1 = tab(map, 48);
        IntVector t2 = tab(map, 64), u2 = tab(map, 80), t3 = tab(map, 96), u3 = tab(map, 112);
        IntVector t4 = tab(map, 128), u4 = tab(map, 144), t5 = tab(map, 160), u5 = tab(map, 176);
        IntVector t6 = tab(map, 192), u6 = tab(map, 208), t7 = tab(map, 224), u7 = tab(map, 240);
        int stepsPerBlock = bs / L, left = stepsPerBlock - (int) (e % bs) / L, b = (int) (e / bs) - s0;
        for (int i = 0; i < n; i += L) {
            // sign-extended codes: bits 0..7 are the code's, which is all the lookups and the masks read
            IntVector c = (IntVector) ByteVector.fromMemorySegment(B, codes, e + i, ByteOrder.LITTLE_ENDIAN)
                    .convertShape(VectorOperators.B2I, I, 0);
            VectorMask<Integer> m5 = c.lanewise(VectorOperators.AND, 32).compare(VectorOperators.NE, 0);
            VectorMask<Integer> m6 = c.lanewise(VectorOperators.AND, 64).compare(VectorOperators.NE, 0);
            VectorMask<Integer> m7 = c.lanewise(VectorOperators.AND, 128).compare(VectorOperators.NE, 0);
            IntVector s0v = c.selectFrom(t0, u0).blend(c.selectFrom(t1, u1), m5); // codes 0..63
            IntVector s1v = c.selectFrom(t2, u2).blend(c.selectFrom(t3, u3), m5); // 64..127
            IntVector s2v = c.selectFrom(t4, u4).blend(c.selectFrom(t5, u5), m5); // 128..191
            IntVector s3v = c.selectFrom(t6, u6).blend(c.selectFrom(t7, u7), m5); // 192..255
            IntVector v = s0v.blend(s1v, m6).blend(s2v.blend(s3v, m6), m7);
            v.reinterpretAsFloats().mul(scales[b]).intoArray(dst, off + i);
            if (--left == 0) {
                left = stepsPerBlock;
                b++;
            }
        }
    }

    private static IntVector tab(float[] map, int from) {
        return FloatVector.fromArray(F, map, from).reinterpretAsInts();
    }
}
