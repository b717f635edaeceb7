package dev.qlora4j.bench.ops;

import dev.qlora4j.quant.kernel.KernelPool;
import dev.qlora4j.quant.kernel.Kernels;
import dev.qlora4j.quant.kernel.PanamaKernels;
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
 * Prompt-processing attention of one GPT-2 124M layer (12 heads, head size 64) over {@code n} new tokens from an
 * empty cache, one thread: per head either the per-query {@link Attention#forwardHead} ({@code path=perQuery}) or
 * the four-query {@link Attention#forwardHeadBlocked} ({@code path=blocked}), on the Panama kernels at 256 or 512
 * bits. Both compute the same causal attention; score: µs per layer. FLOPs per layer ≈ 2 · 2 · NH · HS · n(n+1)/2
 * (scores and weighted sums), 403 MFLOP at n = 512.
 *
 * <pre>java --add-modules jdk.incubator.vector -jar bench/target/benchmarks.jar AttentionPromptBench</pre>
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 5, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
@State(Scope.Benchmark)
public class AttentionPromptBench {

    @Param({"512"})
    public int n;

    @Param({"panama256", "panama512"})
    public String kernel;

    @Param({"perQuery", "blocked"})
    public String path;

    /**
     * Row stride of the blocked path's transposed keys (floats, ≥ n): n + 16 is what the bench always used; a
     * workspace used to pass its max context (640 = InferenceBench's 512 + 128, 1024 = GPT-2's n_positions, whose
     * 4 KiB multiple maps the 64 rows to one L1 set); it now pads to an odd number of 64-byte lines (656, 1040).
     */
    @Param({"528"})
    public int ktStride;

    static final int NH = 12, HS = 64, C = NH * HS;

    Kernels k;
    float[] qkv;            // (1, n, 3C): the prompt's fused q, k, v
    float[] cacheK, cacheV; // (1, NH, n, HS), filled from qkv
    float[] out;            // (1, n, C)
    float[] scores;         // (n) the per-query path's score row
    float[] scores4;        // (4, n) the blocked path's score rows
    float[] kt;             // (HS, ktStride) the blocked path's transposed keys

    @Setup
    public void setup() {
        k = switch (kernel) {
            case "panama512" -> new PanamaKernels(512, new KernelPool(1));
            case "panama256" -> new PanamaKernels(256, new KernelPool(1));
            default -> throw new IllegalArgumentException("kernel=" + kernel);
        };
        if ("blocked".equals(path) && !k.blockedAttention(HS)) {
            throw new IllegalStateException(kernel + " has no blocked attention for head size " + HS);
        }
        SplittableRandom r = new SplittableRandom(11);
        qkv = new float[n * 3 * C];
        for (int i = 0; i < qkv.length; i++) qkv[i] = (float) r.nextGaussian();
        cacheK = new float[NH * n * HS];
        cacheV = new float[NH * n * HS];
        Attention.storeKv(qkv, 0, QkvLayout.SPLIT_QKV, cacheK, cacheV, 0, 1, n, 0, n, NH, HS);
        out = new float[n * C];
        scores = new float[n];
        scores4 = new float[4 * n];
        kt = new float[HS * ktStride];
    }

    @Benchmark
    public float layer() {
        for (int h = 0; h < NH; h++) {
            if ("blocked".equals(path)) {
                Attention.forwardHeadBlocked(k, qkv, QkvLayout.SPLIT_QKV, cacheK, cacheV, out, null, 0, h, n, 0, n,
                        NH, HS, scores4, n, kt, ktStride);
            } else {
                Attention.forwardHead(k, qkv, 0, QkvLayout.SPLIT_QKV, cacheK, cacheV, 0, out, 0, null, 0, null, 0, h,
                        n, 0, n, NH, HS, scores, 0f, 0L);
            }
        }
        return out[0];
    }
}
