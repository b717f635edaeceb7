package dev.qlora4j.quant.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.qlora4j.quant.kernel.TestWeights.Kind;
import dev.qlora4j.quant.weight.StoredWeight;
import dev.qlora4j.quant.weight.WeightFormat;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Every Panama kernel against {@link ScalarKernels}, for every weight kind and every vector width (128, 256 and
 * 512 — emulated on CPUs without AVX-512), on odd and prime shapes: M covers the fused GEMV (≤ 4), the 5-row
 * (128/256 bits) and 8-row (512 bits) micro-kernels, their leftover rows and row chunks (M = 70); K and N cover partial vectors, partial slivers, partial 4-bit blocks, rows
 * starting on an odd nibble, several K panels (K > 256 below 512 bits, K > 768 at 512) and several column tiles (N, K > 128), and an N large enough
 * that {@code dY·W} runs in several passes over the rows of W.
 */
class PanamaKernelsTest {

    /** {M, K, N}. */
    static final int[][] SHAPES = {
            {1, 13, 13}, {2, 67, 131}, {3, 131, 67}, {4, 192, 130}, {1, 64, 7}, {5, 13, 67}, {7, 131, 131},
            {6, 64, 16}, {33, 67, 257}, {13, 300, 140}, {12, 257, 270}, {40, 16, 33}, {17, 16, 40}, {70, 67, 131}, {9, 1000, 40}, {10, 40, 1000},
            {7, 13, 2 * PanamaKernels.BWD_N_BLOCK + 77}, // dY·W in passes over W's rows (LM-head-like N)
            {37, 800, 300}, // row blocks shared by column tiles and two reduction passes (LazyPackedA), both ways
            {150, 100, 1100}, {150, 1100, 100}, // 256-column panels of the 12-row kernel (3 threads), fwd, then dY·W
    };
    static final int[] WIDTHS = {128, 256, 512};

    private static KernelPool pool;
    private static final ScalarKernels SCALAR = new ScalarKernels();

    @BeforeAll
    static void startPool() {
        pool = new KernelPool(3); // more threads than the CI box may have: exercises the tile split
    }

    @AfterAll
    static void dropPool() {
        pool = null;
    }

    static Stream<Arguments> kindsAndWidths() {
        List<Arguments> out = new ArrayList<>();
        for (Kind k : Kind.values()) for (int bits : WIDTHS) out.add(Arguments.of(k, bits));
        return out.stream();
    }

    @ParameterizedTest(name = "{0} @ {1} bits")
    @MethodSource("kindsAndWidths")
    void matmulMatchesScalar(Kind kind, int bits) {
        matmulMatchesScalar(kind, bits, variants(bits));
    }

    /**
     * Every GEMM variant at this width: at 512 bits the 8-row kernel reading x in place or packing it first
     * ({@link PanamaKernels#packForwardADefault}; dy in place either way) and the 12-row kernel (x and dy packed;
     * {@link MicroKernel#mr512}) with 256- and 128-column panels; below 512 bits the 5-row kernel, packed.
     */
    private static List<PanamaKernels> variants(int bits) {
        if (bits != 512) return List.of(new PanamaKernels(bits, pool, false));
        return List.of(new PanamaKernels(bits, pool, false, MicroKernel.MR_8),
                new PanamaKernels(bits, pool, true, MicroKernel.MR_8),
                new PanamaKernels(bits, pool, true, MicroKernel.MR_12, true),
                new PanamaKernels(bits, pool, true, MicroKernel.MR_12, false));
    }

    /** Each case's scalar result and error bound are computed once and every variant is checked against them. */
    private void matmulMatchesScalar(Kind kind, int bits, List<PanamaKernels> variants) {
        Random rnd = new Random(31L * kind.ordinal() + bits);
        for (int[] shape : SHAPES) {
            int m = shape[0], k = shape[1], n = shape[2];
            StoredWeight w = TestWeights.random(kind, n, k, blocksize(shape), rnd);
            float[] wd = dequantized(w);
            for (boolean withBias : new boolean[] {false, true}) {
                int xOff = 3, yOff = 5;
                float[] x = TestWeights.randomArray(xOff + m * k, rnd); // (M, K) at xOff
                float[] bias = withBias ? TestWeights.randomArray(n, rnd) : null; // (N)
                float[] want = new float[yOff + m * n], start = TestWeights.randomArray(yOff + m * n, rnd); // (M, N)
                SCALAR.matmul(x, xOff, w, bias, want, yOff, m);
                double[] abs = new double[m * n]; // (M, N) Σ|terms|, the error scale of each output
                for (int i = 0; i < m; i++) {
                    for (int j = 0; j < n; j++) {
                        double a = bias == null ? 0 : Math.abs(bias[j]);
                        for (int c = 0; c < k; c++) a += Math.abs((double) x[xOff + i * k + c] * wd[j * k + c]);
                        abs[i * n + j] = a;
                    }
                }
                for (PanamaKernels fast : variants) {
                    float[] got = start.clone(); // (M, N) at yOff
                    fast.matmul(x, xOff, w, bias, got, yOff, m);
                    for (int i = 0; i < m * n; i++) {
                        check(want[yOff + i], got[yOff + i], abs[i],
                                () -> kind + " " + bits + " shape " + m + "x" + k + "x" + n + " bias " + withBias);
                    }
                }
            }
        }
    }

    @ParameterizedTest(name = "{0} @ {1} bits")
    @MethodSource("kindsAndWidths")
    void backwardMatchesScalar(Kind kind, int bits) {
        List<PanamaKernels> variants = variants(bits);
        Random rnd = new Random(17L * kind.ordinal() + bits);
        for (int[] shape : SHAPES) {
            int m = shape[0], k = shape[1], n = shape[2];
            StoredWeight w = TestWeights.random(kind, n, k, blocksize(shape), rnd);
            float[] wd = dequantized(w);
            for (boolean accumulate : new boolean[] {false, true}) {
                int dyOff = 2, dxOff = 7;
                float[] dy = TestWeights.randomArray(dyOff + m * n, rnd); // (M, N)
                float[] want = TestWeights.randomArray(dxOff + m * k, rnd); // (M, K)
                float[] before = want.clone();
                SCALAR.matmulBackwardInput(dy, dyOff, w, want, dxOff, m, accumulate);
                double[] abs = new double[m * k]; // (M, K) Σ|terms|, the error scale of each output
                for (int i = 0; i < m; i++) {
                    for (int c = 0; c < k; c++) {
                        double a = accumulate ? Math.abs(before[dxOff + i * k + c]) : 0;
                        for (int j = 0; j < n; j++) a += Math.abs((double) dy[dyOff + i * n + j] * wd[j * k + c]);
                        abs[i * k + c] = a;
                    }
                }
                for (PanamaKernels fast : variants) {
                    float[] got = before.clone();
                    fast.matmulBackwardInput(dy, dyOff, w, got, dxOff, m, accumulate);
                    for (int i = 0; i < dxOff; i++) assertEquals(before[i], got[i], "wrote before dxOff");
                    for (int i = 0; i < m * k; i++) {
                        check(want[dxOff + i], got[dxOff + i], abs[i],
                                () -> kind + " " + bits + " shape " + m + "x" + k + "x" + n + " acc " + accumulate);
                    }
                }
            }
        }
    }

    /** dW = dyᵀ·x: M is the reduction (several panels when > 256 (below 512 bits) or > 768), N the rows of dW, K its columns. */
    @ParameterizedTest(name = "{0} bits")
    @ValueSource(ints = {128, 256, 512})
    void weightGradMatchesScalar(int bits) {
        for (PanamaKernels fast : variants(bits)) weightGradMatchesScalar(bits, fast);
    }

    private void weightGradMatchesScalar(int bits, PanamaKernels fast) {
        Random rnd = new Random(23L + bits);
        int[][] shapes = {{1, 13, 13}, {2, 67, 131}, {7, 131, 67}, {5, 16, 5}, {33, 67, 257}, {300, 140, 13},
                {517, 270, 12}, {64, 33, 401}, {800, 20, 9}};
        for (int[] shape : shapes) {
            int m = shape[0], k = shape[1], n = shape[2];
            int dyOff = 3, xOff = 2, dwOff = 5;
            float[] dy = TestWeights.randomArray(dyOff + m * n, rnd); // (M, N)
            float[] x = TestWeights.randomArray(xOff + m * k, rnd);   // (M, K)
            float[] want = TestWeights.randomArray(dwOff + n * k + 4, rnd); // (N, K) at dwOff, accumulated into
            float[] before = want.clone(), got = want.clone();
            SCALAR.matmulWeightGrad(dy, dyOff, x, xOff, m, n, k, want, dwOff);
            fast.matmulWeightGrad(dy, dyOff, x, xOff, m, n, k, got, dwOff);
            for (int i = 0; i < dwOff; i++) assertEquals(before[i], got[i], "wrote before dwOff");
            for (int i = dwOff + n * k; i < got.length; i++) assertEquals(before[i], got[i], "wrote past dw");
            for (int j = 0; j < n; j++) {
                for (int c = 0; c < k; c++) {
                    double abs = Math.abs(before[dwOff + j * k + c]);
                    for (int i = 0; i < m; i++) abs += Math.abs((double) dy[dyOff + i * n + j] * x[xOff + i * k + c]);
                    check(want[dwOff + j * k + c], got[dwOff + j * k + c], abs,
                            () -> bits + " bits dw shape " + m + "x" + k + "x" + n);
                }
            }
        }
    }

    @ParameterizedTest(name = "{0} @ {1} bits")
    @MethodSource("kindsAndWidths")
    void dequantizeRowsIsBitExact(Kind kind, int bits) {
        PanamaKernels fast = new PanamaKernels(bits, pool);
        Random rnd = new Random(5L * kind.ordinal() + bits);
        for (int[] shape : new int[][] {{0, 13, 5}, {0, 67, 31}, {0, 64, 9}, {0, 131, 600}}) {
            int k = shape[1], n = shape[2];
            StoredWeight w = TestWeights.random(kind, n, k, blocksize(shape), rnd);
            assertBitExact(fast, w);
        }
    }

    @ParameterizedTest(name = "{0} raw bits")
    @ValueSource(strings = {"F16", "BF16"})
    void halfDequantizeHandlesNanInfSubnormal(String format) {
        Random rnd = new Random(9);
        StoredWeight w = TestWeights.rawHalf(WeightFormat.valueOf(format), 67, 131, rnd);
        for (int bits : WIDTHS) assertBitExact(new PanamaKernels(bits, pool), w);
    }

    private static void assertBitExact(PanamaKernels fast, StoredWeight w) {
        int n = w.rows(), k = w.cols();
        for (int[] range : new int[][] {{0, n}, {1, n - 1}, {n / 2, n - n / 2}, {n - 1, 1}}) {
            int off = 3;
            float[] want = new float[off + range[1] * k], got = new float[off + range[1] * k]; // (nrows, K) at off
            SCALAR.dequantizeRows(w, range[0], range[1], want, off);
            fast.dequantizeRows(w, range[0], range[1], got, off);
            for (int i = 0; i < want.length; i++) {
                if (Float.floatToIntBits(want[i]) != Float.floatToIntBits(got[i])) {
                    fail(w.format() + " " + fast.vectorBits() + " bits rows " + range[0] + "+" + range[1] + " elem "
                            + (i - off) + ": want " + want[i] + " got " + got[i]);
                }
            }
        }
    }

    private static int blocksize(int[] shape) {
        return shape[1] % 64 == 0 ? 64 : 32; // row-aligned blocks on some shapes, straddling blocks on the rest
    }

    private static float[] dequantized(StoredWeight w) {
        float[] d = new float[w.rows() * w.cols()]; // (N, K)
        w.dequantize(0, d.length, d, 0);
        return d;
    }

    /** Error relative to the sum of |terms| of the output: fp32 reassociation over K ≤ 300 terms. */
    static void check(float want, float got, double absTerms, java.util.function.Supplier<String> what) {
        double tol = 2e-6 * absTerms + 1e-30;
        if (!(Math.abs((double) want - got) <= tol)) {
            fail(what.get() + ": want " + want + " got " + got + " (tol " + tol + ")");
        }
        assertTrue(Float.isFinite(got));
    }
}
