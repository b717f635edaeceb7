package dev.qlora4j.quant.kernel;

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
 * The paired 256-bit decode GEMV ({@link FourBitGemv256}, what {@code PanamaKernels.matmul} runs for {@code M = 1}
 * on 4-bit weights at 256 bits unless {@link FourBitGemvBytes128} is selected) and the matmul path against {@link ScalarKernels} (within fp32 reassociation) and bit for bit against
 * the width-generic one-row kernel {@link PanamaDot#fourBitAligned} it specializes — odd row counts (a last row
 * without a partner), several blocksizes, F32 and double-quantized absmax, NF4 and FP4, with and without bias.
 */
class FourBitGemv256Test {

    /** {K, N, blocksize}. */
    static final int[][] SHAPES = {{64, 7, 64}, {192, 33, 64}, {448, 2, 64}, {1024, 17, 128}, {96, 5, 32},
            {4096, 3, 4096}, {768, 16, 64}};

    @ParameterizedTest(name = "{0}")
    @EnumSource(value = Kind.class, names = {"NF4_F32_SCALES", "NF4_DOUBLE_QUANT", "FP4_F32_SCALES", "FP4_DOUBLE_QUANT"})
    void matchesScalarAndTheOneRowKernel(Kind kind) {
        PanamaKernels fast = new PanamaKernels(256, new KernelPool(2));
        ScalarKernels scalar = new ScalarKernels();
        VectorWidth vw = VectorWidth.of(256);
        Random rnd = new Random(7L + kind.ordinal());
        for (int[] s : SHAPES) {
            int k = s[0], n = s[1], bs = s[2];
            FourBitWeight w = (FourBitWeight) TestWeights.random(kind, n, k, bs, rnd);
            assertTrue(FourBitGemv256.supports(w), "shape " + k + "x" + n + " takes the paired path");
            for (boolean withBias : new boolean[] {false, true}) {
                int xOff = 3, yOff = 2;
                float[] x = TestWeights.randomArray(xOff + k, rnd); // (1, K) at xOff
                float[] bias = withBias ? TestWeights.randomArray(n, rnd) : null; // (N)
                float[] want = new float[yOff + n], got = new float[yOff + n]; // (1, N) at yOff
                scalar.matmul(x, xOff, w, bias, want, yOff, 1);
                fast.matmul(x, xOff, w, bias, got, yOff, 1);
                float[] scales = new float[BulkScales.CHUNK], pair = new float[2];
                for (int j = 0; j < n; j++) {
                    double abs = TestWeights.absTerms(w, j, x, xOff, bias);
                    int jj = j;
                    PanamaKernelsTest.check(want[yOff + j], got[yOff + j], abs,
                            () -> kind + " " + k + "x" + n + " bs " + bs + " row " + jj);
                    if (j % 2 == 1 || j + 1 == n) continue; // pairs (j, j + 1); a lone last row is the one-row kernel
                    // the kernel itself (matmul may take FourBitGemvBytes128 instead: -Dqlora.nf4Gemv256, Zen 1)
                    FourBitGemv256.pair(w, j, x, xOff, scales, pair, 0);
                    for (int u = 0; u < 2; u++) {
                        float oneRow = PanamaDot.fourBitAligned(vw, w, j + u, x, xOff, scales);
                        assertEquals(Float.floatToRawIntBits(oneRow), Float.floatToRawIntBits(pair[u]),
                                kind + " " + k + "x" + n + " bs " + bs + " row " + (j + u) + ": paired " + pair[u]
                                        + " vs one-row " + oneRow);
                    }
                }
            }
        }
    }

    @Test
    void rowsTooLongForTheScaleScratchTakeTheOneRowPath() {
        Random rnd = new Random(3);
        int bs = 64, k = bs * (BulkScales.CHUNK / 2 + 1), n = 3;
        FourBitWeight w = (FourBitWeight) TestWeights.random(Kind.NF4_DOUBLE_QUANT, n, k, bs, rnd);
        assertFalse(FourBitGemv256.supports(w));
        float[] x = TestWeights.randomArray(k, rnd), want = new float[n], got = new float[n];
        new ScalarKernels().matmul(x, 0, w, null, want, 0, 1);
        new PanamaKernels(256, new KernelPool(1)).matmul(x, 0, w, null, got, 0, 1);
        for (int j = 0; j < n; j++) {
            double abs = TestWeights.absTerms(w, j, x, 0, null);
            int jj = j;
            PanamaKernelsTest.check(want[j], got[j], abs * 4, () -> "row " + jj); // K = 8256: looser reassociation
        }
    }
}
