package dev.qlora4j.quant.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.qlora4j.quant.codec.DynamicMap;
import dev.qlora4j.quant.weight.BlockScales;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The bulk absmax decode of double-quantized scales ({@link BulkScales#absmax}, and its 512-bit steps
 * {@link DoubleQuantScales512}) bit for bit against {@link BlockScales.DoubleQuantScales#absmax(int)}, one block at a
 * time: every code 0..255, the real signed dynamic map and random maps, nested blocksizes 16..256 (and 100, which
 * takes the scalar loop), unaligned starts and odd lengths, with and without the 512-bit steps. Off AVX-512 those
 * run emulated: slower, the same results.
 */
class DoubleQuantScalesTest {

    private static final ValueLayout.OfFloat F32_LE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @Test
    void bulkDecodeEqualsOneBlockAtATime() {
        Random rnd = new Random(5);
        for (int nb : new int[] {256, 16, 64, 100}) {
            for (int trial = 0; trial < 4; trial++) {
                BlockScales.DoubleQuantScales d = random(rnd, 3000, nb, trial == 0);
                int[][] ranges = {{0, 3000}, {1, 999}, {16, 32}, {255, 258}, {37, 1}, {2990, 10}, {0, 31}, {13, 300}};
                for (int[] r : ranges) {
                    int b0 = r[0], n = r[1];
                    for (boolean at512 : new boolean[] {true, false}) {
                        float[] dst = new float[n + 3];
                        BulkScales.absmax(d, b0, n, dst, 3, at512);
                        for (int i = 0; i < n; i++) {
                            assertEquals(Float.floatToRawIntBits(d.absmax(b0 + i)), Float.floatToRawIntBits(dst[3 + i]),
                                    "nb " + nb + ", blocks " + b0 + "+" + n + ", block " + (b0 + i) + ", 512: " + at512);
                        }
                    }
                }
            }
        }
    }

    @Test
    void vectorStepsCoverEveryCode() {
        Random rnd = new Random(9);
        BlockScales.DoubleQuantScales d = random(rnd, 1024, 256, false);
        MemorySegment q = d.qabsmax();
        for (int b = 0; b < 1024; b++) q.set(ValueLayout.JAVA_BYTE, b, (byte) (b * 7)); // each code 4 times
        float[] dst = new float[1024];
        DoubleQuantScales512.steps(q, d.nestedAbsmax(), d.nestedMap(), 256, d.offset(), 0, 0, 1024, dst, 0);
        for (int b = 0; b < 1024; b++) {
            assertEquals(Float.floatToRawIntBits(d.absmax(b)), Float.floatToRawIntBits(dst[b]), "block " + b);
        }
    }

    private static BlockScales.DoubleQuantScales random(Random rnd, int blocks, int nb, boolean realMap) {
        Arena arena = Arena.ofAuto();
        MemorySegment q = arena.allocate(blocks);
        for (int b = 0; b < blocks; b++) q.set(ValueLayout.JAVA_BYTE, b, (byte) rnd.nextInt(256));
        int groups = (blocks + nb - 1) / nb;
        MemorySegment nested = arena.allocate(groups * 4L);
        for (int g = 0; g < groups; g++) nested.set(F32_LE, g * 4L, (float) (0.01 + rnd.nextDouble() * 3));
        float[] map = new float[256];
        if (realMap) {
            map = DynamicMap.signed();
        } else {
            for (int i = 0; i < 256; i++) map[i] = (float) rnd.nextGaussian();
        }
        return new BlockScales.DoubleQuantScales(q, nested, map, nb, (float) rnd.nextGaussian() * 0.1f);
    }
}
