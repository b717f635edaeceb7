package dev.qlora4j.bench.kernel;

import dev.qlora4j.quant.kernel.KernelPool;
import dev.qlora4j.quant.kernel.Kernels;
import dev.qlora4j.quant.kernel.PanamaKernels;
import dev.qlora4j.quant.kernel.ScalarKernels;
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
 * Decode GEMV, M = 1: {@code y = x·Wᵀ + b} with the fused dequantize-and-dot. {@code cold = true} cycles through
 * enough copies of W (≥ 256 MiB stored, {@link BenchWeights#COLD_BYTES}) that every call streams W from DRAM, as decoding a whole model does;
 * {@code cold = false} reuses one W that stays in cache. Scores: calls/µs (primary), {@code weightBytes} = GB/s of
 * stored weight read, {@code flops} = GFLOP/s.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
@State(Scope.Benchmark)
public class GemvBench {

    @Param({"768x3072", "3072x768"}) // K x N
    public String shape;

    @Param({"F32", "NF4_DQ", "INT8_ROWWISE", "INT8_BLOCKWISE_DQ"})
    public String format;

    @Param({"true", "false"})
    public boolean cold;

    @Param({"2"})
    public int threads;

    @Param({"panama"}) // panama (the preferred width), panama256, scalar
    public String kernel;

    Kernels kernels;
    StoredWeight[] ws;
    float[] x, bias, y; // (1, K), (N), (1, N)
    int next;
    long flopsPerCall, bytesPerCall;

    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    public static class Counters {
        public long flops;
        public long weightBytes;
    }

    @Setup(Level.Trial)
    public void setup() {
        String[] kn = shape.split("x");
        int k = Integer.parseInt(kn[0]), n = Integer.parseInt(kn[1]);
        kernels = kernel.equals("scalar") ? new ScalarKernels()
                : new PanamaKernels(kernel.equals("panama256") ? 256
                : jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.vectorBitSize(), new KernelPool(threads));
        StoredWeight first = BenchWeights.random(format, n, k, 42);
        int copies = cold ? (int) Math.max(2, BenchWeights.COLD_BYTES / first.storedBytes() + 1) : 1;
        ws = new StoredWeight[copies];
        ws[0] = first;
        for (int i = 1; i < copies; i++) ws[i] = BenchWeights.random(format, n, k, 42 + i);
        x = BenchWeights.randomArray(k, 1);
        bias = BenchWeights.randomArray(n, 2);
        y = new float[n];
        flopsPerCall = 2L * n * k;
        bytesPerCall = first.storedBytes();
        BenchWeights.checkForward(kernels, x, first, bias, 1, 1);
    }

    @Benchmark
    public float gemv(Counters c) {
        StoredWeight w = ws[next];
        next = next + 1 == ws.length ? 0 : next + 1;
        kernels.matmul(x, 0, w, bias, y, 0, 1);
        c.flops += flopsPerCall;
        c.weightBytes += bytesPerCall;
        return y[0];
    }
}
