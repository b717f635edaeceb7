package dev.qlora4j.quant.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

/**
 * The Vector API half-to-float widening of the fused F16 decode GEMV ({@link DenseRuns512#widenF16}, written out the
 * same way in {@link DenseRuns512#f16Row} and the run loops) against {@link Float#float16ToFloat} on all 65536 bit
 * patterns: zeros, subnormals, normals and infinities bit for bit; NaNs stay NaNs with their sign.
 */
class F16WidenTest {

    @Test
    void everyHalfConvertsExactly() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(2L * 65536, 64); // (65536) halves, pattern i at index i
            for (int i = 0; i < 65536; i++) seg.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, (short) i);
            float[] got = new float[16];
            int nans = 0, subnormals = 0;
            for (int i0 = 0; i0 < 65536; i0 += 16) {
                DenseRuns512.widenF16(seg, 2L * i0).intoArray(got, 0);
                for (int l = 0; l < 16; l++) {
                    int h = i0 + l;
                    float want = Float.float16ToFloat((short) h);
                    int g = Float.floatToRawIntBits(got[l]);
                    if (Float.isNaN(want)) {
                        assertTrue(Float.isNaN(got[l]), "half 0x" + Integer.toHexString(h) + " → " + got[l]);
                        assertEquals(h >>> 15, g >>> 31, "sign of NaN 0x" + Integer.toHexString(h));
                        nans++;
                    } else {
                        assertEquals(Float.floatToRawIntBits(want), g, "half 0x" + Integer.toHexString(h) + ": " + want
                                + " vs " + got[l]);
                        if ((h & 0x7C00) == 0 && (h & 0x3FF) != 0) subnormals++;
                    }
                }
            }
            assertEquals(2 * 1023, nans);
            assertEquals(2 * 1023, subnormals);
        }
    }
}
