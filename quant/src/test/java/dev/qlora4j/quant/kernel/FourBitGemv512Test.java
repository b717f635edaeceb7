package dev.qlora4j.quant.kernel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qlora4j.quant.kernel.TestWeights.Kind;
import dev.qlora4j.quant.weight.FourBitWeight;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The paired 512-bit decode GEMV ({@link FourBitGemv512}, what {@code PanamaKernels.matmul} runs for {@code M = 1}
 * on 4-bit weights at 512 bits) against {@link ScalarKernels} (within fp32 reassociation, bounded by the sum of
 * |products| computed in float64) — odd row counts (a last row without a partner, which takes the one-row kernel),
 * several blocksizes, F32 and double-quantized absmax, NF4 and FP4, with and without bias, and an x that is not at
 * offset 0. On a CPU without AVX-512 the 512-bit species run emulated: slower, the same results.
 */
class FourBitGemv512Test {

    /** {K, N, blocksize}. */
    static final int[][] SHAPES = {{128, 7, 64}, {384, 33, 64}, {640, 2, 64}, {1024, 17, 128}, {512, 5, 256},
            {4096, 3, 4096}, {768, 16, 64}, {3072, 9, 64}, {3072, 131, 64},
            {768, 300, 64}, {768, 2304, 64}}; // the last two take page-aligned tiles

    @ParameterizedTest(name = "{0}")
    @EnumSource(value = Kind.class, names = {"NF4_F32_SCALES", "NF4_DOUBLE_QUANT", "FP4_F32_SCALES", "FP4_DOUBLE_QUANT"})
    void matchesScalar(Kind kind) {
        PanamaKernels fast = new PanamaKernels(512, new KernelPool(2));
        ScalarKernels scalar = new ScalarKernels();
        Random rnd = new Random(11L + kind.ordinal());
        for (int[] s : SHAPES) {
            int k = s[0], n = s[1], bs = s[2];
            FourBitWeight w = (FourBitWeight) TestWeights.random(kind, n, k, bs, rnd);
            assertTrue(FourBitGemv512.supports(w), "shape " + k + "x" + n + " takes the paired path");
            for (boolean withBias : new boolean[] {false, true}) {
                int xOff = 5, yOff = 1;
                float[] x = TestWeights.randomArray(xOff + k, rnd); // (1, K) at xOff
                float[] bias = withBias ? TestWeights.randomArray(n, rnd) : null; // (N)
                float[] want = new float[yOff + n], got = new float[yOff + n]; // (1, N) at yOff
                scalar.matmul(x, xOff, w, bias, want, yOff, 1);
                fast.matmul(x, xOff, w, bias, got, yOff, 1);
                for (int j = 0; j < n; j++) {
                    double abs = TestWeights.absTerms(w, j, x, xOff, bias);
                    int jj = j;
                    PanamaKernelsTest.check(want[yOff + j], got[yOff + j], abs,
                            () -> kind + " " + k + "x" + n + " bs " + bs + " row " + jj);
                }
                float[] again = new float[yOff + n];
                fast.matmul(x, xOff, w, bias, again, yOff, 1);
                assertArrayEquals(got, again, "the same call gives the same bits");
            }
        }
    }

    @Test
    void deinterleaveLaysEachStepOutByNibblePosition() {
        float[] x = new float[3 + 256];
        for (int i = 0; i < x.length; i++) x[i] = i;
        float[] xd = new float[256];
        FourBitGemv512.deinterleave(x, 3, 256, xd);
        // lane l of the lookup after a shift by 4j holds element 8l + 1 (j = 0: the low nibble of byte 4l), 8l (j = 1:
        // its high nibble), 8l + 3, 8l + 2, ... (high nibble first within each byte, bytes little-endian in the lane)
        int[] elementOfShift = {1, 0, 3, 2, 5, 4, 7, 6};
        for (int s = 0; s < 256; s += 128) {
            for (int j = 0; j < 8; j++) {
                for (int l = 0; l < 16; l++) assertEquals(3 + s + 8 * l + elementOfShift[j], xd[s + 16 * j + l], 0f);
            }
        }
    }

    @Test
    void layoutsItCannotTakeFallBackToTheOneRowPath() {
        Random rnd = new Random(5);
        int[][] shapes = {{100, 3, 64}, {96, 3, 32}, {192, 3, 64}}; // blocks straddle rows; blocksize 32; K % 128 != 0
        for (int[] s : shapes) {
            int k = s[0], n = s[1], bs = s[2];
            FourBitWeight w = (FourBitWeight) TestWeights.random(Kind.NF4_DOUBLE_QUANT, n, k, bs, rnd);
            assertFalse(FourBitGemv512.supports(w));
            float[] x = TestWeights.randomArray(k, rnd), want = new float[n], got = new float[n];
            new ScalarKernels().matmul(x, 0, w, null, want, 0, 1);
            new PanamaKernels(512, new KernelPool(1)).matmul(x, 0, w, null, got, 0, 1);
            for (int j = 0; j < n; j++) {
                double abs = TestWeights.absTerms(w, j, x, 0, null);
                int jj = j;
                PanamaKernelsTest.check(want[j], got[j], abs, () -> "K " + k + " row " + jj);
            }
        }
    }
}
