package dev.qlora4j.quant.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.MemorySegment;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The 512-bit blockwise 8-bit steps ({@link Int8Blockwise512}) bit for bit against the scalar expression
 * {@code map[code & 0xff] * absmax}, called directly: every code, several blocksizes, starts inside a block, scale
 * windows that start before the first block. (PanamaKernelsTest covers the dequantization loop that calls them.)
 */
class Int8Blockwise512Test {

    @Test
    void stepsEqualTheScalarExpression() {
        Random rnd = new Random(3);
        float[] map = new float[256];
        for (int i = 0; i < 256; i++) map[i] = (float) rnd.nextGaussian();
        byte[] codes = new byte[4096];
        for (int i = 0; i < codes.length; i++) codes[i] = (byte) rnd.nextInt(256);
        for (int i = 0; i < 256; i++) codes[i] = (byte) i; // every code at least once
        MemorySegment seg = MemorySegment.ofArray(codes);
        for (int bs : new int[] {16, 64, 256}) {
            float[] scales = new float[codes.length / bs];
            for (int b = 0; b < scales.length; b++) scales[b] = 0.01f + rnd.nextFloat();
            for (int[] r : new int[][] {{0, 4096}, {16, 1008}, {bs, 2 * bs}, {48, 16}}) {
                long e = r[0];
                int n = r[1], s0 = (int) (e / bs) - 1 < 0 ? 0 : (int) (e / bs) - 1; // scales indexed from block s0
                float[] window = new float[scales.length - s0];
                System.arraycopy(scales, s0, window, 0, window.length);
                float[] dst = new float[2 + n];
                Int8Blockwise512.steps(seg, e, n, bs, map, window, s0, dst, 2);
                for (int i = 0; i < n; i++) {
                    long el = e + i;
                    float want = map[codes[(int) el] & 0xff] * scales[(int) (el / bs)];
                    assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(dst[2 + i]),
                            "bs " + bs + ", element " + el);
                }
            }
        }
    }
}
