package dev.qlora4j.quant.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.qlora4j.quant.kernel.TestWeights.Kind;
import dev.qlora4j.quant.weight.DenseWeight;
import dev.qlora4j.quant.weight.WeightFormat;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * {@link F16Gemv256}, the F16 decode GEMV at 256 bits (AVX2) (weights moved into float position, x pre-scaled by 2^112),
 * against independent references: every finite half times several x values against {@link Float#float16ToFloat}
 * times x (one product per output, so the output must be that product exactly); whole GEMVs through
 * {@link PanamaKernels#matmul} against {@link ScalarKernels} within fp32 reassociation; every row of a GEMV bit for
 * bit against the one-row kernel (the output does not depend on the tiling); and the fall-backs — |x| ≥ 2^15, half
 * infinities and NaNs — against the scalar kernel, infinities and NaNs included.
 */
class F16Gemv256Test {

    private static final int K = 32;

    @Test
    void everyFiniteHalfTimesXIsTheExactProduct() {
        short[] halves = new short[63488]; // the 65536 patterns less the 2048 with exponent 31
        int count = 0;
        for (int h = 0; h < 65536; h++) {
            if ((h & 0x7C00) != 0x7C00) halves[count++] = (short) h;
        }
        assertEquals(halves.length, count);
        int rows = count; // row r holds its half in column r % 32 (two 16-column blocks), zeros elsewhere
        ByteBuffer bb = ByteBuffer.allocate(rows * K * 2).order(ByteOrder.LITTLE_ENDIAN);
        for (int r = 0; r < rows; r++) bb.putShort((r * K + r % K) * 2, halves[r]);
        DenseWeight w = new DenseWeight(WeightFormat.F16, MemorySegment.ofArray(bb.array()), rows, K);
        assertTrue(F16Gemv256.supports(w));
        PanamaKernels fast = new PanamaKernels(256, new KernelPool(2));
        float[] y = new float[rows]; // (N)
        float[] xs = {1f, -3f / 7f, 32767.5f, 1e-30f, -0x1p-149f, 0x1.fffffep14f}; // large, subnormal products too
        for (float xv : xs) {
            for (int c = 0; c < K; c++) {
                float[] x = new float[K]; // (K) one-hot
                x[c] = xv;
                fast.matmul(x, 0, w, null, y, 0, 1);
                for (int r = c; r < rows; r += K) {
                    float want = Float.float16ToFloat(halves[r]) * xv;
                    if (!(want == y[r])) { // 0 == -0: a sum of signed zeros may differ from the lone product's sign
                        fail("half 0x" + Integer.toHexString(halves[r] & 0xFFFF) + " · " + xv + ": want " + want
                                + " got " + y[r]);
                    }
                }
            }
        }
    }

    @Test
    void gemvMatchesScalarAndTheOneRowKernel() {
        VectorWidth vw = VectorWidth.of(256);
        PanamaKernels fast = new PanamaKernels(256, new KernelPool(2));
        ScalarKernels scalar = new ScalarKernels();
        Random rnd = new Random(112);
        int[][] shapes = {{16, 1}, {32, 3}, {64, 7}, {768, 131}, {48, 2}, {768, 1031}, {3072, 67}}; // {K, N}: odd N, lone rows
        for (int[] s : shapes) {
            int k = s[0], n = s[1];
            DenseWeight w = (DenseWeight) TestWeights.random(Kind.F16, n, k, 64, rnd);
            assertTrue(F16Gemv256.supports(w));
            float[] x = TestWeights.randomArray(3 + k, rnd), bias = TestWeights.randomArray(n, rnd);
            float[] got = new float[n], want = new float[n], xs = new float[k]; // (N), (N), (K)
            fast.matmul(x, 3, w, bias, got, 0, 1);
            scalar.matmul(x, 3, w, bias, want, 0, 1);
            assertTrue(F16Gemv256.prepare(x, 3, k, xs));
            for (int j = 0; j < n; j++) {
                int jj = j;
                PanamaKernelsTest.check(want[j], got[j], TestWeights.absTerms(w, j, x, 3, bias),
                        () -> k + "x" + n + " row " + jj);
                assertEquals(Float.floatToRawIntBits(F16Gemv256.row(vw, w, j, xs) + bias[j]),
                        Float.floatToRawIntBits(got[j]), k + "x" + n + " row " + j + ": the GEMV equals the one-row kernel");
            }
        }
    }

    @Test
    void largeXTakesTheExactWidening() {
        Random rnd = new Random(5);
        int k = 64, n = 9;
        DenseWeight w = (DenseWeight) TestWeights.random(Kind.F16, n, k, 64, rnd);
        float[] x = TestWeights.randomArray(k, rnd);
        x[17] = 40000f; // x · 2^112 would overflow
        assertFalse(F16Gemv256.prepare(x, 0, k, new float[k]));
        float[] got = new float[n], want = new float[n];
        new PanamaKernels(256, new KernelPool(2)).matmul(x, 0, w, null, got, 0, 1);
        new ScalarKernels().matmul(x, 0, w, null, want, 0, 1);
        for (int j = 0; j < n; j++) {
            int jj = j;
            PanamaKernelsTest.check(want[j], got[j], TestWeights.absTerms(w, j, x, 0, null), () -> "row " + jj);
        }
    }

    @Test
    void halfInfinitiesAndNaNsTakeTheExactWidening() {
        int k = 64, n = 6;
        short[] specials = {(short) 0x7C00, (short) 0xFC00, (short) 0x7E00, (short) 0x7C01, (short) 0xFFFF};
        ByteBuffer bb = ByteBuffer.allocate(n * k * 2).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < n * k; i++) bb.putShort(i * 2, Float.floatToFloat16(0.25f + (i % 7) / 8f));
        for (int r = 0; r < specials.length; r++) bb.putShort((r * k + 5 + 11 * r) * 2, specials[r]);
        DenseWeight w = new DenseWeight(WeightFormat.F16, MemorySegment.ofArray(bb.array()), n, k);
        assertFalse(F16Gemv512.allFinite(w));
        float[] x = new float[k];
        for (int i = 0; i < k; i++) x[i] = 1f + i / 64f;
        float[] got = new float[n], want = new float[n];
        new PanamaKernels(256, new KernelPool(2)).matmul(x, 0, w, null, got, 0, 1);
        new ScalarKernels().matmul(x, 0, w, null, want, 0, 1);
        for (int j = 0; j < n; j++) {
            if (Float.isNaN(want[j]) || Float.isInfinite(want[j])) {
                assertEquals(Float.floatToIntBits(want[j]), Float.floatToIntBits(got[j]), "row " + j);
            } else {
                int jj = j;
                PanamaKernelsTest.check(want[j], got[j], TestWeights.absTerms(w, j, x, 0, null), () -> "row " + jj);
            }
        }
        assertTrue(Float.isInfinite(want[0]) && Float.isNaN(want[2]), "the specials reach the scalar outputs");
    }
}
