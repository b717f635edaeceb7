package dev.qlora4j.quant.codec;

import dev.qlora4j.quant.weight.BlockScales;
import dev.qlora4j.quant.weight.BlockwiseInt8Weight;
import dev.qlora4j.quant.weight.DenseWeight;
import dev.qlora4j.quant.weight.FourBitWeight;
import dev.qlora4j.quant.weight.Quantizer;
import dev.qlora4j.quant.weight.RowwiseInt8Weight;
import dev.qlora4j.quant.weight.StoredWeight;
import dev.qlora4j.quant.weight.WeightFormat;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Quantizer} over dense F32/F16/BF16 weights of odd and prime shapes: quantize, dequantize through the
 * {@link StoredWeight} contract, and bound every element's error by the format's worst case, derived from the
 * published tables (half the widest gap between neighbouring codes, times the block's absmax).
 */
class QuantizerRoundTripTest {

    // half the widest gap between neighbouring codes of each published table (SPECS.md §1)
    private static final float NF4_HALF_GAP = (-0.6961928009986877f + 1.0f) / 2 * 1.0001f; // codes 0..1: 0.1519
    private static final float FP4_HALF_GAP = (1.0f - 0.66666667f) / 2 * 1.0001f;         // codes 2..3: 0.1667
    private static final float DYNAMIC_HALF_GAP = widestHalfGap(DynamicMap.signed()) * 1.0001f; // 0.9/64/2
    private static final float EPS = 1e-6f;

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @ParameterizedTest
    @CsvSource({
            "NF4, F32, 1, 1, 64, false", "NF4, F32, 3, 7, 64, true", "NF4, BF16, 13, 101, 32, true",
            "NF4, F16, 1, 4099, 4096, false", "NF4, F32, 257, 263, 64, true", "NF4, F32, 31, 67, 128, false",
            "FP4, F32, 1, 1, 64, false", "FP4, F16, 17, 19, 64, true", "FP4, BF16, 7, 4099, 256, false",
            "FP4, F32, 257, 263, 32, true"})
    void fourBitRoundTrip(WeightFormat format, WeightFormat dtype, int rows, int cols, int bs, boolean dq) {
        try (Arena arena = Arena.ofConfined()) {
            float[] x = randomWeights(rows * cols, rows * 31L + cols);
            DenseWeight dense = dense(arena, dtype, x, rows, cols);
            float[] src = new float[x.length];
            dense.dequantize(0, x.length, src, 0); // the values actually stored (F16/BF16 rounding)

            var w = (FourBitWeight) Quantizer.quantize(dense, format, bs, dq, arena);
            assertEquals(format, w.format());
            assertEquals((x.length + 1) / 2, w.packed().byteSize());
            assertEquals((x.length + bs - 1) / bs, w.scales().blocks());
            assertEquals(dq, w.scales() instanceof BlockScales.DoubleQuantScales);

            float halfGap = format == WeightFormat.NF4 ? NF4_HALF_GAP : FP4_HALF_GAP;
            float[] back = new float[x.length];
            w.dequantize(0, x.length, back, 0);
            float maxNested = 0;
            for (int b = 0; b * bs < x.length; b++) {
                int len = Math.min(bs, x.length - b * bs);
                float trueAbsmax = BlockAbsmax.of(src, b * bs, len);
                float stored = w.scales().absmax(b);
                float scaleErr = Math.abs(stored - trueAbsmax);
                if (!dq) assertEquals(trueAbsmax, stored, 0f, "block " + b + " absmax");
                maxNested = Math.max(maxNested, scaleErr);
                for (int j = b * bs; j < b * bs + len; j++) {
                    float bound = trueAbsmax * halfGap + scaleErr + EPS;
                    assertTrue(Math.abs(back[j] - src[j]) <= bound,
                            "element " + j + ": " + src[j] + " -> " + back[j] + ", bound " + bound);
                }
            }
            if (dq) { // the dequantized scales are within the 8-bit map's resolution of the true ones
                var scales = (BlockScales.DoubleQuantScales) w.scales();
                float nestedMax = 0;
                for (int i = 0; i < scales.nestedAbsmax().byteSize() / 4; i++) {
                    nestedMax = Math.max(nestedMax, scales.nestedAbsmax().getAtIndex(F32, i));
                }
                assertTrue(maxNested <= nestedMax * DYNAMIC_HALF_GAP + EPS, "scale error " + maxNested);
            }
        }
    }

    @ParameterizedTest
    @CsvSource({"F32, 1, 1, 64", "F32, 5, 1999, 4096", "BF16, 13, 101, 256", "F16, 257, 263, 64"})
    void blockwiseInt8RoundTrip(WeightFormat dtype, int rows, int cols, int bs) {
        try (Arena arena = Arena.ofConfined()) {
            float[] x = randomWeights(rows * cols, rows * 7L + cols);
            DenseWeight dense = dense(arena, dtype, x, rows, cols);
            float[] src = new float[x.length];
            dense.dequantize(0, x.length, src, 0);
            var w = (BlockwiseInt8Weight) Quantizer.quantize(dense, WeightFormat.INT8_BLOCKWISE, bs, false, arena);
            float[] back = new float[x.length];
            w.dequantize(0, x.length, back, 0);
            for (int j = 0; j < x.length; j++) {
                float absmax = BlockAbsmax.of(src, j / bs * bs, Math.min(bs, x.length - j / bs * bs));
                float bound = absmax * DYNAMIC_HALF_GAP + EPS;
                assertTrue(Math.abs(back[j] - src[j]) <= bound, "element " + j + ": " + src[j] + " -> " + back[j]);
            }
        }
    }

    @ParameterizedTest
    @CsvSource({"F32, 1, 1", "F32, 11, 37", "BF16, 13, 101", "F16, 3, 4099"})
    void rowwiseInt8RoundTrip(WeightFormat dtype, int rows, int cols) {
        try (Arena arena = Arena.ofConfined()) {
            float[] x = randomWeights(rows * cols, rows * 5L + cols);
            DenseWeight dense = dense(arena, dtype, x, rows, cols);
            float[] src = new float[x.length];
            dense.dequantize(0, x.length, src, 0);
            var w = (RowwiseInt8Weight) Quantizer.quantize(dense, WeightFormat.INT8_ROWWISE, 0, false, arena);
            float[] row = new float[cols];
            for (int r = 0; r < rows; r++) {
                w.dequantizeRow(r, row, 0);
                float rowmax = BlockAbsmax.of(src, r * cols, cols);
                for (int c = 0; c < cols; c++) {
                    float bound = rowmax / 127f * 0.5f * 1.0001f + EPS;
                    assertTrue(Math.abs(row[c] - src[r * cols + c]) <= bound, "row " + r + " col " + c);
                }
            }
        }
    }

    @Test
    void allZeroWeightDequantizesToZerosInEveryFormat() {
        try (Arena arena = Arena.ofConfined()) {
            DenseWeight dense = dense(arena, WeightFormat.F32, new float[3 * 67], 3, 67);
            StoredWeight[] ws = {
                    Quantizer.quantize(dense, WeightFormat.NF4, 64, true, arena),
                    Quantizer.quantize(dense, WeightFormat.FP4, 32, false, arena),
                    Quantizer.quantize(dense, WeightFormat.INT8_BLOCKWISE, 64, false, arena),
                    Quantizer.quantize(dense, WeightFormat.INT8_ROWWISE, 0, false, arena)};
            float[] back = new float[3 * 67];
            for (StoredWeight w : ws) {
                w.dequantize(0, back.length, back, 0);
                for (float v : back) assertEquals(0f, v, 0f, w.format() + " must give zeros, not NaN");
            }
        }
    }

    @Test
    void defaultIsNf4Blocksize64DoubleQuant() {
        try (Arena arena = Arena.ofConfined()) {
            FourBitWeight w = Quantizer.nf4(dense(arena, WeightFormat.F32, randomWeights(130, 1), 2, 65), arena);
            assertEquals(WeightFormat.NF4, w.format());
            assertEquals(64, w.blocksize());
            assertTrue(w.scales() instanceof BlockScales.DoubleQuantScales);
        }
    }

    @Test
    void invalidRequestsAreRejected() {
        try (Arena arena = Arena.ofConfined()) {
            DenseWeight dense = dense(arena, WeightFormat.F32, randomWeights(64, 2), 1, 64);
            assertThrows(IllegalArgumentException.class,
                    () -> Quantizer.quantize(dense, WeightFormat.NF4, 48, false, arena));
            assertThrows(IllegalArgumentException.class,
                    () -> Quantizer.quantize(dense, WeightFormat.FP4, 8192, true, arena));
            assertThrows(IllegalArgumentException.class,
                    () -> Quantizer.quantize(dense, WeightFormat.INT8_BLOCKWISE, 32, false, arena));
            assertThrows(IllegalArgumentException.class,
                    () -> Quantizer.quantize(dense, WeightFormat.INT8_BLOCKWISE, 64, true, arena));
            assertThrows(IllegalArgumentException.class,
                    () -> Quantizer.quantize(dense, WeightFormat.BF16, 64, false, arena));
        }
    }

    private static float widestHalfGap(float[] sortedCodes) {
        float g = 0;
        for (int i = 1; i < sortedCodes.length; i++) g = Math.max(g, (sortedCodes[i] - sortedCodes[i - 1]) / 2);
        return g;
    }

    private static float[] randomWeights(int n, long seed) {
        Random rnd = new Random(seed);
        float[] x = new float[n]; // (n)
        for (int i = 0; i < n; i++) x[i] = (float) (rnd.nextGaussian() * 0.02 * (rnd.nextInt(50) == 0 ? 30 : 1));
        return x;
    }

    /** {@code x} stored off-heap as {@code dtype} (F16/BF16 rounded to nearest even) in a dense weight. */
    private static DenseWeight dense(Arena arena, WeightFormat dtype, float[] x, int rows, int cols) {
        int width = DenseWeight.bytesPerElement(dtype);
        MemorySegment seg = arena.allocate((long) x.length * width, 16);
        for (int i = 0; i < x.length; i++) {
            switch (dtype) {
                case F32 -> seg.setAtIndex(F32, i, x[i]);
                case F16 -> seg.setAtIndex(I16, i, Float.floatToFloat16(x[i]));
                case BF16 -> {
                    int bits = Float.floatToRawIntBits(x[i]);
                    seg.setAtIndex(I16, i, (short) ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16));
                }
                default -> throw new IllegalArgumentException(dtype.toString());
            }
        }
        return new DenseWeight(dtype, seg, rows, cols);
    }
}
