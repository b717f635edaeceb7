package dev.qlora4j.bench.kernel;

import dev.qlora4j.quant.kernel.KernelPool;
import dev.qlora4j.quant.kernel.PanamaKernels;
import dev.qlora4j.quant.weight.DenseWeight;
import dev.qlora4j.quant.weight.WeightFormat;
import java.lang.foreign.*;
import java.util.Arrays;

/**
 * The F32 decode GEMV ({@code PanamaKernels.matmul}, M = 1, 512 bits) against plain sums ({@link ReadBandwidthBench#sum},
 * 4 streams and 1 stream per thread, 2 threads) over the same cold matrices (a 256 MiB set of copies, at least two),
 * alternated in one JVM in 0.3 s slices: how close the kernel streams to what the host streams at that moment.
 *
 * <pre>java --add-modules jdk.incubator.vector -Xmx4g -cp bench/target/benchmarks.jar dev.qlora4j.bench.kernel.GemvVsRead K N</pre>
 */
public final class GemvVsRead {
    private GemvVsRead() {
    }

    public static void main(String[] a) {
        int k = Integer.parseInt(a[0]), n = Integer.parseInt(a[1]);
        long bytes = (long) k * n * 4;
        int copies = (int) Math.max(2, (256L << 20) / bytes);
        Arena arena = Arena.global();
        DenseWeight[] ws = new DenseWeight[copies];
        for (int c = 0; c < copies; c++) {
            MemorySegment s = arena.allocate(bytes, 64);
            for (long o = 0; o < bytes; o += 4) s.set(ValueLayout.JAVA_FLOAT_UNALIGNED, o, (float) ((o * 31) % 97) * 1e-3f);
            ws[c] = new DenseWeight(WeightFormat.F32, s, n, k);
        }
        PanamaKernels pk = new PanamaKernels(512);
        KernelPool pool = KernelPool.shared();
        float[] x = new float[k], y = new float[n]; // (K), (N)
        Arrays.fill(x, 0.5f);
        float[] sink = new float[32]; // (2 threads, 16) one padded slot per tile
        int rounds = 8;
        double[][] r = new double[3][rounds]; // (gemv, sum4, sum1) × rounds, GB/s
        for (int round = -2; round < rounds; round++) {
            for (int v = 0; v < 3; v++) {
                long t0 = System.nanoTime(), done = 0;
                while (System.nanoTime() - t0 < 300_000_000L) {
                    for (DenseWeight w : ws) {
                        if (v == 0) pk.matmul(x, 0, w, null, y, 0, 1);
                        else {
                            int streams = v == 1 ? 4 : 1;
                            MemorySegment s = w.data();
                            long share = bytes / 2;
                            pool.run(2, (tile, slot) -> sink[tile * 16] += ReadBandwidthBench.sum(s.asSlice(tile * share, share), streams));
                        }
                        done += bytes;
                    }
                }
                if (round >= 0) r[v][round] = done / ((System.nanoTime() - t0) / 1e9) / 1e9;
            }
        }
        for (int i = 0; i < rounds; i++) System.out.printf("round %d: gemv %.1f  sum4 %.1f  sum1 %.1f GB/s  gemv/max(sum) %.2f%n", i, r[0][i], r[1][i], r[2][i], r[0][i] / Math.max(r[1][i], r[2][i]));
        System.out.println(y[0] + sink[0]);
    }
}
