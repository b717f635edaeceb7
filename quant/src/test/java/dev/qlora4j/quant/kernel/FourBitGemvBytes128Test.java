package dev.qlora4j.quant.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qlora4j.quant.kernel.TestWeights.Kind;
import dev.qlora4j.quant.weight.FourBitWeight;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The byte-shuffle decode GEMV ({@link FourBitGemvBytes128}, the 256-bit-width choice on Zen/Zen+) against
 * {@link ScalarKernels} within fp32 reassociation, on every machine: several blocksizes (32 to 4096), odd row
 * counts, F32 and double-quantized absmax, NF4 and FP4; plus its byte planes against the float bits and the
 * {@code -Dqlora.nf4Gemv256} choice.
 */
class FourBitGemvBytes128Test {

    /** {K, N, blocksize}. */
    static final int[][] SHAPES = {{64, 7, 64}, {192, 33, 64}, {96, 5, 32}, {1024, 17, 128}, {768, 16, 256},
            {4096, 3, 4096}, {3072, 9, 64}};

    @ParameterizedTest(name = "{0}")
    @EnumSource(value = Kind.class, names = {"NF4_F32_SCALES", "NF4_DOUBLE_QUANT", "FP4_F32_SCALES", "FP4_DOUBLE_QUANT"})
    void matchesScalar(Kind kind) {
        ScalarKernels scalar = new ScalarKernels();
        Random rnd = new Random(11L + kind.ordinal());
        byte[] planes = new byte[64]; // (4, 16)
        float[] scales = new float[BulkScales.CHUNK]; // (K / blocksize)
        for (int[] s : SHAPES) {
            int k = s[0], n = s[1], bs = s[2], xOff = 5;
            FourBitWeight w = (FourBitWeight) TestWeights.random(kind, n, k, bs, rnd);
            assertTrue(FourBitGemvBytes128.supports(w), "shape " + k + "x" + n + " bs " + bs);
            float[] x = TestWeights.randomArray(xOff + k, rnd); // (1, K) at xOff
            float[] want = new float[n], xp = new float[k]; // (1, N), (K)
            scalar.matmul(x, xOff, w, null, want, 0, 1);
            FourBitGemvBytes128.permute(x, xOff, k, xp);
            FourBitGemvBytes128.planes(w.codeTable(), planes);
            for (int j = 0; j < n; j++) {
                BulkScales.absmax(w.scales(), j * (k / bs), k / bs, scales, 0, false);
                float got = FourBitGemvBytes128.row(w, j, xp, planes, scales);
                int jj = j;
                PanamaKernelsTest.check(want[j], got, TestWeights.absTerms(w, j, x, xOff, null),
                        () -> kind + " " + k + "x" + n + " bs " + bs + " row " + jj);
            }
        }
    }

    @Test
    void planesHoldTheBytesOfEachCodeValue() {
        float[] table = new float[16];
        for (int c = 0; c < 16; c++) table[c] = (c - 7.5f) / 7.3f;
        byte[] planes = new byte[64];
        FourBitGemvBytes128.planes(table, planes);
        for (int c = 0; c < 16; c++) {
            int bits = (planes[c] & 0xff) | (planes[16 + c] & 0xff) << 8 | (planes[32 + c] & 0xff) << 16
                    | (planes[48 + c] & 0xff) << 24;
            assertEquals(Float.floatToRawIntBits(table[c]), bits, "code " + c);
        }
    }

    @Test
    void blocksizesBelowOneStepAreNotSupported() {
        FourBitWeight w = (FourBitWeight) TestWeights.random(Kind.NF4_F32_SCALES, 3, 64, 16, new Random(1));
        assertFalse(FourBitGemvBytes128.supports(w));
    }

    @Test
    void propertyChoosesTheKernel() {
        assertTrue(PanamaKernels.nf4GemvBytes(null, true));
        assertFalse(PanamaKernels.nf4GemvBytes(null, false));
        assertTrue(PanamaKernels.nf4GemvBytes("bytes", false));
        assertFalse(PanamaKernels.nf4GemvBytes(" permute ", true));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> PanamaKernels.nf4GemvBytes("pshufb", true));
        assertTrue(e.getMessage().contains("qlora.nf4Gemv256"), e.getMessage());
    }
}
