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
 * Dequantize alone: rows of a 3072×768 weight (2.4 M elements) into fp32, the scalar reference against the vector
 * kernel, single-threaded, every format. Score {@code bytesWritten} = GB/s of fp32 written (ops/ns); each call
 * writes a 256-row slice (768 KiB, L2-resident) so the figure is decode speed, not DRAM write bandwidth.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
@State(Scope.Benchmark)
public class DequantBench {

    static final int ROWS = 3072, COLS = 768, SLICE = 256;

    @Param({"F32", "F16", "BF16", "NF4", "NF4_DQ", "FP4_DQ", "INT8_BLOCKWISE_DQ", "INT8_ROWWISE"})
    public String format;

    @Param({"scalar", "panama"})
    public String kernel;

    Kernels kernels;
    StoredWeight w;
    float[] dst; // (SLICE, COLS)
    int row0;

    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    public static class Bytes {
        public long bytesWritten;
    }

    @Setup(Level.Trial)
    public void setup() {
        kernels = kernel.equals("scalar") ? new ScalarKernels()
                : new PanamaKernels(jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.vectorBitSize(), new KernelPool(1));
        w = BenchWeights.random(format, ROWS, COLS, 7);
        dst = new float[SLICE * COLS];
        float[] want = new float[SLICE * COLS];
        kernels.dequantizeRows(w, 5, SLICE, dst, 0);
        new ScalarKernels().dequantizeRows(w, 5, SLICE, want, 0);
        if (!java.util.Arrays.equals(want, dst)) throw new IllegalStateException(kernel + " dequantize differs");
    }

    @Benchmark
    public float dequantize(Bytes b) {
        kernels.dequantizeRows(w, row0, SLICE, dst, 0);
        row0 = row0 + 2 * SLICE > ROWS ? 0 : row0 + SLICE;
        b.bytesWritten += (long) SLICE * COLS * 4;
        return dst[17];
    }
}
