package dev.qlora4j.quant.weight;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

/** F32 → BF16/F16 conversion and transposition of dense weights, against hand-worked IEEE bit patterns. */
class DenseConvertTest {
    static DenseWeight f32(float[] v, int rows, int cols) {
        MemorySegment s = Arena.ofAuto().allocate(v.length * 4L);
        for (int i = 0; i < v.length; i++) s.set(DenseWeight.F32_LE, i * 4L, v[i]);
        return new DenseWeight(WeightFormat.F32, s, rows, cols);
    }

    @Test
    void bf16RoundsToNearestEven() {
        float[] v = {
                1.0f,                                   // 0x3f800000 → 0x3f80 exactly
                Float.intBitsToFloat(0x3f808000),       // halfway, even below → 0x3f80
                Float.intBitsToFloat(0x3f818000),       // halfway, odd below → up to 0x3f82
                Float.intBitsToFloat(0x3f80c000),       // above halfway → 0x3f81
                -2.5f,                                  // 0xc0200000 → 0xc020
                0f};
        try (Arena a = Arena.ofConfined()) {
            DenseWeight w = DenseConvert.convert(f32(v, 2, 3), WeightFormat.BF16, a);
            short[] want = {0x3f80, 0x3f80, 0x3f82, 0x3f81, (short) 0xc020, 0};
            for (int i = 0; i < want.length; i++) {
                assertEquals(want[i], w.data().get(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), i * 2L),
                        "element " + i);
            }
            assertEquals(2, w.rows());
            assertEquals(3, w.cols());
            assertEquals(-2.5f, w.get(4));
        }
    }

    @Test
    void f16AndIdentity() {
        float[] v = {1f, 0.5f, 65504f, -0.000061035156f}; // exact in F16: 0x3c00, 0x3800, 0x7bff, 0x8400
        try (Arena a = Arena.ofConfined()) {
            DenseWeight src = f32(v, 2, 2);
            DenseWeight w = DenseConvert.convert(src, WeightFormat.F16, a);
            short[] want = {0x3c00, 0x3800, 0x7bff, (short) 0x8400};
            for (int i = 0; i < 4; i++) {
                assertEquals(want[i], w.data().get(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), i * 2L));
            }
            assertSame(src, DenseConvert.convert(src, WeightFormat.F32, a));
        }
    }

    @Test
    void transposeSwapsIndices() {
        float[] v = new float[7 * 5]; // (7, 5)
        for (int i = 0; i < v.length; i++) v[i] = i;
        try (Arena a = Arena.ofConfined()) {
            DenseWeight t = DenseTranspose.transpose(f32(v, 7, 5), a); // (5, 7)
            assertEquals(5, t.rows());
            assertEquals(7, t.cols());
            for (int r = 0; r < 7; r++) for (int c = 0; c < 5; c++) assertEquals(r * 5 + c, t.get((long) c * 7 + r));
        }
    }
}
