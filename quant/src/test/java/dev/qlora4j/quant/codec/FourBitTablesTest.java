package dev.qlora4j.quant.codec;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The published NF4/FP4 tables and decision thresholds (SPECS.md §1, bitsandbytes csrc/kernels.cu). */
class FourBitTablesTest {

    // SPECS.md §1, index = 4-bit code
    private static final double[] NF4_PUBLISHED = {
            -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
            -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
            0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
            0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0};
    private static final double[] FP4_LUT_PUBLISHED = {
            0.0, 0.005208333333, 0.66666667, 1.0, 0.33333333, 0.5, 0.16666667, 0.25};
    private static final String[] NF4_MIDPOINTS = {
            "-0.8480964004993439", "-0.6106329262256622", "-0.4599952697753906", "-0.33967943489551544",
            "-0.23460740596055984", "-0.13791173323988914", "-0.045525018125772476", "0.03979014977812767",
            "0.1202552504837513", "0.2035212516784668", "0.2920137718319893", "0.3893125355243683",
            "0.5016634166240692", "0.6427869200706482", "0.8614784181118011"};
    // dQuantizeFP4: |x| above threshold k -> magnitude code; ascending thresholds
    private static final String[] FP4_THRESHOLDS = {
            "0.00260417", "0.0859375", "0.20833333", "0.29166667", "0.4166667", "0.583333", "0.8333333"};
    private static final int[] FP4_CODE_ABOVE = {0b001, 0b110, 0b111, 0b100, 0b101, 0b010, 0b011};

    @Test
    void nf4TableIsTheLiteralPublishedOne() {
        for (int q = 0; q < 16; q++) {
            assertEquals(Float.floatToRawIntBits((float) NF4_PUBLISHED[q]),
                    Float.floatToRawIntBits(FourBitCodec.NF4.value(q)), "NF4 code " + q);
        }
        assertEquals(16, FourBitCodec.NF4.table().length);
    }

    @Test
    void fp4TableIsLutTimesSignBit() {
        for (int q = 0; q < 16; q++) {
            float expected = (float) FP4_LUT_PUBLISHED[q & 7] * ((q & 8) != 0 ? -1f : 1f);
            assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(FourBitCodec.FP4.value(q)),
                    "FP4 code " + q);
        }
    }

    @Test
    void nf4TieAtAMidpointGoesToTheLowerCodeAndTheNextFloatUp() {
        for (int k = 0; k < NF4_MIDPOINTS.length; k++) {
            float m = Float.parseFloat(NF4_MIDPOINTS[k]); // decimal rounded once, like the kernel's f literal
            assertEquals(k, FourBitCodec.NF4.code(m), "at midpoint " + NF4_MIDPOINTS[k]);
            assertEquals(k + 1, FourBitCodec.NF4.code(Math.nextUp(m)), "just above " + NF4_MIDPOINTS[k]);
            assertEquals(k, FourBitCodec.NF4.code(Math.nextDown(m)), "just below " + NF4_MIDPOINTS[k]);
        }
    }

    @Test
    void nf4MapsEveryTableValueToItself() {
        for (int q = 0; q < 16; q++) assertEquals(q, FourBitCodec.NF4.code((float) NF4_PUBLISHED[q]));
        assertEquals(0, FourBitCodec.NF4.code(-1.5f));
        assertEquals(15, FourBitCodec.NF4.code(1.5f));
        assertEquals(7, FourBitCodec.NF4.code(-0.0f));
    }

    @Test
    void fp4ThresholdsFollowDQuantizeFp4() {
        for (int k = 0; k < FP4_THRESHOLDS.length; k++) {
            float t = Float.parseFloat(FP4_THRESHOLDS[k]);
            int below = k == 0 ? 0 : FP4_CODE_ABOVE[k - 1];
            assertEquals(below, FourBitCodec.FP4.code(t), "at threshold " + FP4_THRESHOLDS[k]);
            assertEquals(FP4_CODE_ABOVE[k], FourBitCodec.FP4.code(Math.nextUp(t)), "above " + FP4_THRESHOLDS[k]);
            assertEquals(below | 8, FourBitCodec.FP4.code(-t), "at -" + FP4_THRESHOLDS[k]);
            assertEquals(FP4_CODE_ABOVE[k] | 8, FourBitCodec.FP4.code(-Math.nextUp(t)));
        }
        for (int q = 0; q < 8; q++) assertEquals(q, FourBitCodec.FP4.code((float) FP4_LUT_PUBLISHED[q]));
        assertEquals(0, FourBitCodec.FP4.code(-0.0f), "-0.0 is not < 0: no sign bit");
    }

    @Test
    void nanFromAnAllZeroBlockIsCodeZeroAndDequantizesToZero() {
        assertEquals(0, FourBitCodec.NF4.code(Float.NaN));
        assertEquals(0, FourBitCodec.FP4.code(Float.NaN));
        float[] x = new float[5]; // (5) all zero, odd
        byte[] packed = new byte[3];
        float[] absmax = new float[1];
        for (FourBitCodec codec : FourBitCodec.values()) {
            codec.quantize(x, 5, 64, packed, absmax);
            assertArrayEquals(new byte[3], packed, codec + " all-zero block");
            assertEquals(0f, absmax[0]);
            float[] back = new float[5];
            codec.dequantize(packed, absmax, 5, 64, back);
            for (float v : back) assertEquals(0f, v, 0f, codec + " dequantized all-zero block");
        }
    }

    @Test
    void oddCountPadsTheLowNibbleWithTheCodeOfZero() {
        float[] x = {1f, -1f, 0.5f}; // (3)
        byte[] packed = new byte[2];
        float[] absmax = new float[1];
        FourBitCodec.NF4.quantize(x, 3, 64, packed, absmax);
        assertEquals((byte) 0xf0, packed[0]);
        assertEquals(0x07, packed[1] & 0x0f, "padding is 0.0 -> NF4 code 7");
        assertEquals(12, (packed[1] & 0xff) >>> 4, "0.5 lies between 0.4407 and 0.5626, below midpoint 0.5017");
        FourBitCodec.FP4.quantize(x, 3, 64, packed, absmax);
        assertEquals((byte) 0x3b, packed[0]);
        assertEquals((byte) 0x50, packed[1], "0.5 -> FP4 0b0101, padding -> 0");
    }

    @ParameterizedTest
    @ValueSource(ints = {0, -64, 16, 31, 48, 100, 8192, 5000})
    void invalidFourBitBlocksizesAreRejected(int bs) {
        var e = assertThrows(IllegalArgumentException.class,
                () -> FourBitCodec.NF4.quantize(new float[64], 64, bs, new byte[32], new float[64]));
        assertTrue(e.getMessage().contains("blocksize") && e.getMessage().contains(String.valueOf(bs)),
                e.getMessage());
    }

    @ParameterizedTest
    @ValueSource(ints = {32, 64, 128, 256, 512, 1024, 2048, 4096})
    void validFourBitBlocksizes(int bs) {
        assertEquals(bs, Blocksize.checkFourBit(bs));
    }

    @Test
    void blockwise8BitAcceptsOnlyBitsandbytesSizes() {
        assertThrows(IllegalArgumentException.class, () -> Blocksize.checkBlockwise(32));
        assertThrows(IllegalArgumentException.class, () -> Blocksize.checkBlockwise(8192));
        assertThrows(IllegalArgumentException.class, () -> Blocksize.checkBlockwise(96));
        assertEquals(64, Blocksize.checkBlockwise(64));
        assertEquals(4096, Blocksize.checkBlockwise(4096));
    }
}
