package dev.qlora4j.bench.ops;

import dev.qlora4j.quant.kernel.KernelPool;
import dev.qlora4j.quant.kernel.Kernels;
import dev.qlora4j.quant.kernel.PanamaKernels;
import dev.qlora4j.quant.kernel.ScalarKernels;
import dev.qlora4j.runtime.ops.Attention;
import dev.qlora4j.runtime.ops.QkvLayout;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Decode attention of one GPT-2 124M layer for one new token, one thread: the 12 heads of
 * {@link Attention#forwardHead} (scores {@code q·k}, softmax, weighted sum of V) over a KV cache of {@code len}
 * positions (head size 64). The cache of one layer at 576 positions is 3.5 MB (K and V), about what a decode step
 * at that position reads per layer. Score: µs per layer-token ({@code kernel}: scalar reference, or the Panama
 * kernels at 256 or 512 bits).
 *
 * <pre>java --add-modules jdk.incubator.vector -jar bench/target/benchmarks.jar AttentionDecodeBench</pre>
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 6, time = 1) // C2 needs ~5 s here
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
@State(Scope.Benchmark)
public class AttentionDecodeBench {

    @Param({"128", "576"})
    public int len;

    @Param({"panama512", "panama256"})
    public String kernel;

    static final int NH = 12, HS = 64, C = NH * HS;

    Kernels k;
    float[] qkv;           // (1, 1, 3C): the new token's fused q, k, v
    float[] cacheK, cacheV; // (1, NH, maxT, HS), maxT = len
    float[] out;           // (1, 1, C)
    float[] scores;        // (len)

    @Setup
    public void setup() {
        k = switch (kernel) {
            case "scalar" -> new ScalarKernels();
            case "panama512" -> new PanamaKernels(512, KernelPool.shared());
            case "panama256" -> new PanamaKernels(256, KernelPool.shared());
            default -> throw new IllegalArgumentException("kernel=" + kernel);
        };
        SplittableRandom r = new SplittableRandom(7);
        qkv = fill(r, 3 * C);
        cacheK = fill(r, NH * len * HS);
        cacheV = fill(r, NH * len * HS);
        out = new float[C];
        scores = new float[len];
    }

    static float[] fill(SplittableRandom r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) r.nextGaussian();
        return a;
    }

    @Benchmark
    public float layerToken() {
        for (int h = 0; h < NH; h++) {
            Attention.forwardHead(k, qkv, 0, QkvLayout.SPLIT_QKV, cacheK, cacheV, 0, out, 0, null, 0, null, 0, h, 1,
                    len - 1, len, NH, HS, scores);
        }
        return out[0];
    }
}
