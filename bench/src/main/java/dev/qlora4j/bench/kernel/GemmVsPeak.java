package dev.qlora4j.bench.kernel;

import dev.qlora4j.quant.kernel.KernelPool;
import dev.qlora4j.quant.kernel.PanamaKernels;
import dev.qlora4j.quant.weight.StoredWeight;
import java.util.Arrays;
import jdk.incubator.vector.FloatVector;

/**
 * The GEMM of {@link GemmBench} against the FMA peak of {@link FmaPeakBench} on the same threads, alternated in one
 * JVM in 0.5 s slices: the fraction of the peak the GEMM reaches at that moment. On a shared host the peak itself
 * moves by ±30% between JMH trials, so a GEMM trial divided by a separate peak trial says little; a slice of each,
 * back to back, round after round, does.
 *
 * <pre>java --add-modules jdk.incubator.vector -Drounds=8 -Dthreads=2 -Dm=1024 -cp bench/target/benchmarks.jar \
 *   dev.qlora4j.bench.kernel.GemmVsPeak F32:768:2304:fwd NF4_DQ:3072:768:bwd ...</pre>
 *
 * Each config is {@code FORMAT:K:N:fwd|bwd} (forward {@code y = x·Wᵀ + b}, or {@code dx = dy·W}); every GEMM is
 * checked against {@code ScalarKernels} first. Prints the peak, the GEMM and their ratio per round, then medians.
 */
public final class GemmVsPeak {
    private static final long SLICE_NS = 500_000_000L;
    private static final int PEAK_TILES = 16; // FmaPeakBench.chains calls per pool job, shared out dynamically

    private GemmVsPeak() {
    }

    public static void main(String[] args) {
        if (args.length == 0) throw new IllegalArgumentException("usage: GemmVsPeak FORMAT:K:N:fwd|bwd ...");
        int rounds = Integer.getInteger("rounds", 8), threads = Integer.getInteger("threads", 2);
        int m = Integer.getInteger("m", 1024);
        KernelPool pool = new KernelPool(threads);
        PanamaKernels kernels = new PanamaKernels(FloatVector.SPECIES_PREFERRED.vectorBitSize(), pool);
        int c = args.length;
        StoredWeight[] w = new StoredWeight[c];
        boolean[] fwd = new boolean[c];
        float[][] in = new float[c][], bias = new float[c][], out = new float[c][];
        long[] flops = new long[c];
        for (int i = 0; i < c; i++) {
            String[] p = args[i].split(":");
            if (p.length != 4 || !(p[3].equals("fwd") || p[3].equals("bwd"))) {
                throw new IllegalArgumentException("config '" + args[i] + "': want FORMAT:K:N:fwd|bwd");
            }
            int k = Integer.parseInt(p[1]), n = Integer.parseInt(p[2]);
            fwd[i] = p[3].equals("fwd");
            w[i] = BenchWeights.random(p[0], n, k, 42);
            in[i] = BenchWeights.randomArray(m * (fwd[i] ? k : n), 1); // x (M, K) or dy (M, N)
            bias[i] = BenchWeights.randomArray(n, 2); // (N)
            out[i] = new float[m * (fwd[i] ? n : k)]; // y (M, N) or dx (M, K)
            flops[i] = 2L * m * n * k;
            if (fwd[i]) BenchWeights.checkForward(kernels, in[i], w[i], bias[i], m, 8);
            else BenchWeights.checkBackward(kernels, in[i], w[i], m, 8);
        }
        float[] sink = new float[PEAK_TILES]; // (tiles) one result per peak tile, so the chains are not dead code
        long peakFlopsPerTile = (long) FmaPeakBench.ITER * FmaPeakBench.CHAINS * FmaPeakBench.S.length() * 2;
        double[] peak = new double[rounds]; // (rounds) GFLOP/s
        double[][] gemm = new double[c][rounds]; // (configs, rounds) GFLOP/s
        for (int round = -2; round < rounds; round++) { // two warm-up rounds
            long t0 = System.nanoTime(), done = 0;
            while (System.nanoTime() - t0 < SLICE_NS) {
                pool.run(PEAK_TILES, (tile, slot) -> sink[tile] += FmaPeakBench.chains(0.999999f, 1e-7f));
                done += PEAK_TILES * peakFlopsPerTile;
            }
            if (round >= 0) peak[round] = done / (double) (System.nanoTime() - t0);
            for (int i = 0; i < c; i++) {
                long s0 = System.nanoTime(), f = 0;
                while (System.nanoTime() - s0 < SLICE_NS) {
                    if (fwd[i]) kernels.matmul(in[i], 0, w[i], bias[i], out[i], 0, m);
                    else kernels.matmulBackwardInput(in[i], 0, w[i], out[i], 0, m, false);
                    f += flops[i];
                }
                if (round >= 0) gemm[i][round] = f / (double) (System.nanoTime() - s0);
            }
            if (round >= 0) {
                StringBuilder line = new StringBuilder(String.format("round %d: peak %.1f", round, peak[round]));
                for (int i = 0; i < c; i++) line.append(String.format("  %s %.1f (%.2f)", args[i], gemm[i][round], gemm[i][round] / peak[round]));
                System.out.println(line);
            }
        }
        System.out.printf("peak (%d threads) median %.1f GFLOP/s [%.1f..%.1f]%n", threads, median(peak), min(peak), max(peak));
        for (int i = 0; i < c; i++) {
            double[] ratio = new double[rounds];
            for (int r = 0; r < rounds; r++) ratio[r] = gemm[i][r] / peak[r];
            System.out.printf("%-24s M=%d  GEMM median %.1f GFLOP/s  of peak median %.2f [%.2f..%.2f]%n", args[i], m,
                    median(gemm[i]), median(ratio), min(ratio), max(ratio));
        }
        float s = 0;
        for (float v : sink) s += v;
        for (float[] o : out) s += o[0];
        System.out.println("(checksum " + s + ")");
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    private static double min(double[] v) {
        return Arrays.stream(v).min().orElse(Double.NaN);
    }

    private static double max(double[] v) {
        return Arrays.stream(v).max().orElse(Double.NaN);
    }
}
