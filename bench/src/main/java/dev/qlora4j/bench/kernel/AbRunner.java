package dev.qlora4j.bench.kernel;

import dev.qlora4j.quant.kernel.KernelPool;
import dev.qlora4j.quant.kernel.Kernels;
import dev.qlora4j.quant.kernel.PanamaKernels;
import dev.qlora4j.quant.weight.StoredWeight;
import java.util.HashMap;
import java.util.Map;

/**
 * One side of an A/B comparison of kernel builds ({@link dev.qlora4j.bench.ab.AbDriver}): loaded once per build
 * in its own class loader, it runs the decode GEMV {@code y = x·Wᵀ + b} (M = 1) exactly as {@link GemvBench} does,
 * with the same weights, the same fast-vs-scalar check and the same "cold" cycling through 256 MiB of copies of W, or
 * ({@link #runGemm}) the forward or {@code dY·W} GEMM as {@link GemmBench} does.
 */
public final class AbRunner {

    private record Setup(Kernels kernels, StoredWeight[] ws, float[] x, float[] bias, float[] y, int[] next) {
    }

    private record GemmSetup(Kernels kernels, StoredWeight w, float[] x, float[] bias, float[] y, float[] dy,
                             float[] dx) {
    }

    private static final Map<String, Setup> SETUPS = new HashMap<>();
    private static final Map<String, GemmSetup> GEMM_SETUPS = new HashMap<>();
    private static final Map<Integer, Kernels> KERNELS = new HashMap<>();

    private AbRunner() {
    }

    /** {@code -Dqlora.vectorBits} (as the kernels read it), else the CPU's preferred width. */
    static int vectorBits() {
        return Integer.getInteger("qlora.vectorBits", jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.vectorBitSize());
    }

    /** GFLOP/s of back-to-back GEMV calls for {@code nanos}; the weights are built on the first call of a config. */
    public static double run(String format, int k, int n, int threads, boolean cold, long nanos) {
        String key = format + " " + k + "x" + n + " " + threads + " " + cold;
        Setup s = SETUPS.computeIfAbsent(key, z -> {
            Kernels kernels = KERNELS.computeIfAbsent(threads, t -> new PanamaKernels(vectorBits(), new KernelPool(t)));
            StoredWeight first = BenchWeights.random(format, n, k, 42);
            int copies = cold ? (int) Math.max(2, BenchWeights.COLD_BYTES / first.storedBytes() + 1) : 1;
            StoredWeight[] ws = new StoredWeight[copies];
            ws[0] = first;
            for (int i = 1; i < copies; i++) ws[i] = BenchWeights.random(format, n, k, 42 + i);
            float[] x = BenchWeights.randomArray(k, 1), bias = BenchWeights.randomArray(n, 2);
            BenchWeights.checkForward(kernels, x, first, bias, 1, 1);
            return new Setup(kernels, ws, x, bias, new float[n], new int[1]);
        });
        long t0 = System.nanoTime(), calls = 0;
        while (System.nanoTime() - t0 < nanos) {
            for (int i = 0; i < 20; i++) {
                s.kernels.matmul(s.x, 0, s.ws[s.next[0]], s.bias, s.y, 0, 1);
                s.next[0] = s.next[0] + 1 == s.ws.length ? 0 : s.next[0] + 1;
            }
            calls += 20;
        }
        return 2.0 * n * k * calls / ((System.nanoTime() - t0) / 1e9) / 1e9;
    }

    /**
     * GFLOP/s of back-to-back GEMM calls for {@code nanos}: {@code y = x·Wᵀ + b} or ({@code backward})
     * {@code dx = dY·W}, M rows, W of {@code format} (N, K); checked against the scalar kernels on the first call.
     */
    public static double runGemm(String format, int k, int n, int threads, int m, boolean backward, long nanos) {
        String key = format + " " + k + "x" + n + " " + threads + " " + m;
        GemmSetup s = GEMM_SETUPS.computeIfAbsent(key, z -> {
            Kernels kernels = KERNELS.computeIfAbsent(threads, t -> new PanamaKernels(vectorBits(), new KernelPool(t)));
            StoredWeight w = BenchWeights.random(format, n, k, 42);
            float[] x = BenchWeights.randomArray(m * k, 1), bias = BenchWeights.randomArray(n, 2); // (M, K), (N)
            float[] dy = BenchWeights.randomArray(m * n, 3); // (M, N)
            BenchWeights.checkForward(kernels, x, w, bias, m, 8);
            BenchWeights.checkBackward(kernels, dy, w, m, 8);
            return new GemmSetup(kernels, w, x, bias, new float[m * n], dy, new float[m * k]);
        });
        long t0 = System.nanoTime(), calls = 0;
        while (System.nanoTime() - t0 < nanos) {
            if (backward) {
                s.kernels.matmulBackwardInput(s.dy, 0, s.w, s.dx, 0, m, false);
            } else {
                s.kernels.matmul(s.x, 0, s.w, s.bias, s.y, 0, m);
            }
            calls++;
        }
        return 2.0 * m * n * k * calls / ((System.nanoTime() - t0) / 1e9) / 1e9;
    }
}
