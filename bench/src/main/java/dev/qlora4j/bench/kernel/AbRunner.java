package dev.qlora4j.bench.kernel;

import dev.qlora4j.quant.kernel.KernelPool;
import dev.qlora4j.quant.kernel.Kernels;
import dev.qlora4j.quant.kernel.PanamaKernels;
import dev.qlora4j.quant.weight.StoredWeight;
import java.util.HashMap;
import java.util.Map;

/**
 * One side of an A/B comparison of decode GEMV builds ({@link dev.qlora4j.bench.ab.AbDriver}): loaded once per build
 * in its own class loader, it runs {@code y = x·Wᵀ + b} (M = 1) exactly as {@link GemvBench} does, with the same
 * weights, the same fast-vs-scalar check and the same "cold" cycling through 64 MiB of copies of W.
 */
public final class AbRunner {

    private record Setup(Kernels kernels, StoredWeight[] ws, float[] x, float[] bias, float[] y, int[] next) {
    }

    private static final Map<String, Setup> SETUPS = new HashMap<>();
    private static final Map<Integer, Kernels> KERNELS = new HashMap<>();

    private AbRunner() {
    }

    /** GFLOP/s of back-to-back GEMV calls for {@code nanos}; the weights are built on the first call of a config. */
    public static double run(String format, int k, int n, int threads, boolean cold, long nanos) {
        String key = format + " " + k + "x" + n + " " + threads + " " + cold;
        Setup s = SETUPS.computeIfAbsent(key, z -> {
            Kernels kernels = KERNELS.computeIfAbsent(threads, t -> new PanamaKernels(
                    jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.vectorBitSize(), new KernelPool(t)));
            StoredWeight first = BenchWeights.random(format, n, k, 42);
            int copies = cold ? (int) Math.max(2, (64L << 20) / first.storedBytes() + 1) : 1;
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
}
