package dev.qlora4j.bench.kernel;

import dev.qlora4j.quant.kernel.KernelPool;
import dev.qlora4j.quant.kernel.PanamaKernels;
import dev.qlora4j.quant.weight.StoredWeight;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * GEMM at GPT-2 124M shapes, M = 1024 tokens: forward {@code y = x·Wᵀ + b} and backward {@code dx = dy·W}, for fp32
 * and NF4 with double-quantized scales (and any other format by {@code -p format=}). Score {@code flops} is GFLOP/s
 * ({@code 2·M·N·K} per call, ops/ns); the primary score is calls/ns.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
@State(Scope.Benchmark)
public class GemmBench {

    @Param({"768x2304", "768x768", "768x3072", "3072x768"}) // K x N (in x out)
    public String shape;

    @Param({"F32", "NF4_DQ"})
    public String format;

    @Param({"2"})
    public int threads;

    @Param({"1024"})
    public int m;

    @Param({"0"}) // 0: the preferred width
    public int vectorBits;

    PanamaKernels kernels;
    StoredWeight w;
    float[] x, bias, y, dy, dx; // (M, K), (N), (M, N), (M, N), (M, K)
    long flopsPerCall;

    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    public static class Flops {
        public long flops;
    }

    @Setup(Level.Trial)
    public void setup() {
        String[] kn = shape.split("x");
        int k = Integer.parseInt(kn[0]), n = Integer.parseInt(kn[1]);
        KernelPool pool = new KernelPool(threads);
        kernels = vectorBits == 0 ? new PanamaKernels(jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.vectorBitSize(),
                pool) : new PanamaKernels(vectorBits, pool);
        w = BenchWeights.random(format, n, k, 42);
        x = BenchWeights.randomArray(m * k, 1);
        bias = BenchWeights.randomArray(n, 2);
        dy = BenchWeights.randomArray(m * n, 3);
        y = new float[m * n];
        dx = new float[m * k];
        flopsPerCall = 2L * m * n * k;
        BenchWeights.checkForward(kernels, x, w, bias, m, 8);
        BenchWeights.checkBackward(kernels, dy, w, m, 8);
    }

    @Benchmark
    public float forward(Flops f) {
        kernels.matmul(x, 0, w, bias, y, 0, m);
        f.flops += flopsPerCall;
        return y[0];
    }

    @Benchmark
    public float backward(Flops f) {
        kernels.matmulBackwardInput(dy, 0, w, dx, 0, m, false);
        f.flops += flopsPerCall;
        return dx[0];
    }
}
