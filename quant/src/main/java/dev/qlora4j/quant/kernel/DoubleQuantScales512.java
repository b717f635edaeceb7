package dev.qlora4j.quant.kernel;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Double-quantized absmax decode at 512 bits, 16 blocks per step: {@code dst[i] = map[q[b0 + i]] · nested[(b0 + i) /
 * nb] + offset}, bit-identical to the scalar expression in {@link BulkScales} (a float multiply, then a float add).
 *
 * <p>The 256-entry map lives in 16 registers as 8 tables of 32 entries. A step does 8 two-table lookups
 * ({@code vpermt2ps}, wrapping the code mod 32) and picks one of the 8 results per lane with a 3-level blend tree on
 * code bits 5, 6 and 7. The Vector API's gather takes its indices from an {@code int[]}, and measured no faster
 * than the scalar loop (session 4). Steps are aligned to 16 blocks, so that with {@code nb % 16 == 0} a step never
 * straddles two nested groups; the unaligned head and the tail take the scalar loop.
 *
 * <p>Written with {@code static final} species and no calls in the loop (see {@link FourBitGemv256} for why).
 * Scalar reference: {@link BulkScales#absmax}'s loop, which is {@code BlockScales.DoubleQuantScales#absmax(int)}.
 */
final class DoubleQuantScales512 {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_512;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_512;
    private static final VectorSpecies<Byte> B = ByteVector.SPECIES_128;
    private static final int L = 16; // blocks per step
    private static final ValueLayout.OfFloat F32_LE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private DoubleQuantScales512() {
    }

    /**
     * Whole 16-block steps {@code [from, to)} of {@code dst[off + i] = absmax(b0 + i)}; {@code b0 + from} must be a
     * multiple of 16 and {@code nb} a multiple of 16.
     *
     * @param q      the 8-bit codes, one byte per block
     * @param nested F32 nested absmax, one per {@code nb} blocks
     * @param map    {@code (256)} the nested dynamic map
     */
    static void steps(MemorySegment q, MemorySegment nested, float[] map, int nb, float offset, int b0, int from,
                      int to, float[] dst, int off) {
        IntVector t0 = tab(map, 0), u0 = tab(map, 16), t1 = tab(map, 32), u1 = tab(map, 48);
        IntVector t2 = tab(map, 64), u2 = tab(map, 80), t3 = tab(map, 96), u3 = tab(map, 112);
        IntVector t4 = tab(map, 128), u4 = tab(map, 144), t5 = tab(map, 160), u5 = tab(map, 176);
        IntVector t6 = tab(map, 192), u6 = tab(map, 208), t7 = tab(map, 224), u7 = tab(map, 240);
        for (int i = from; i < to; i += L) {
            int b = b0 + i;
            // sign-extended codes: bits 0..7 are the code's, which is all the lookups and the masks read
            IntVector c = (IntVector) ByteVector.fromMemorySegment(B, q, b, ByteOrder.LITTLE_ENDIAN)
                    .convertShape(VectorOperators.B2I, I, 0);
            VectorMask<Integer> m5 = c.lanewise(VectorOperators.AND, 32).compare(VectorOperators.NE, 0);
            VectorMask<Integer> m6 = c.lanewise(VectorOperators.AND, 64).compare(VectorOperators.NE, 0);
            VectorMask<Integer> m7 = c.lanewise(VectorOperators.AND, 128).compare(VectorOperators.NE, 0);
            IntVector s0 = c.selectFrom(t0, u0).blend(c.selectFrom(t1, u1), m5); // codes 0..63
            IntVector s1 = c.selectFrom(t2, u2).blend(c.selectFrom(t3, u3), m5); // 64..127
            IntVector s2 = c.selectFrom(t4, u4).blend(c.selectFrom(t5, u5), m5); // 128..191
            IntVector s3 = c.selectFrom(t6, u6).blend(c.selectFrom(t7, u7), m5); // 192..255
            IntVector v = s0.blend(s1, m6).blend(s2.blend(s3, m6), m7);
            float na = nested.get(F32_LE, (long) (b / nb) * 4);
            v.reinterpretAsFloats().mul(na).add(offset).intoArray(dst, off + i);
        }
    }

    private static IntVector tab(float[] map, int from) {
        return FloatVector.fromArray(F, map, from).reinterpretAsInts();
    }
}
