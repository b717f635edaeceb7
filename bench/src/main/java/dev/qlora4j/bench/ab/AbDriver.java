package dev.qlora4j.bench.ab;

import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A/B of two builds' decode GEMV in one JVM, for a shared host whose memory bandwidth drifts by 2× between runs
 * (bench/RESULTS.md, session 5): each build's {@code quant} classes get their own class loader, and so their own
 * kernels and pool; the driver alternates the two in 0.3 s slices (the order flips every round) and prints, per
 * config, the median GFLOP/s of each and the median and range of the per-round new/old ratios.
 *
 * <pre>java --add-modules jdk.incubator.vector [-Drounds=8] -cp bench/target/classes dev.qlora4j.bench.ab.AbDriver \
 *     OLD_QUANT_CLASSES NEW_QUANT_CLASSES BENCH_CLASSES FORMAT:K:N:THREADS:COLD ...</pre>
 * e.g. {@code NF4_DQ:768:3072:2:true} (formats as in {@code GemvBench}); {@code FORMAT:K:N:THREADS:M:fwd|bwd}, e.g.
 * {@code F32:3072:768:2:1024:fwd}, times the GEMM of {@code GemmBench} instead. {@code bench/run-ab.sh} builds both
 * sides. {@code F32/NF4_DQ:...} runs the first format on the old side and the second on the new: with one build on
 * both sides, that compares two formats alternated in one JVM.
 */
public final class AbDriver {

    private AbDriver() {
    }

    public static void main(String[] a) throws Exception {
        if (a.length < 4) {
            System.err.println("usage: AbDriver OLD_QUANT_CLASSES NEW_QUANT_CLASSES BENCH_CLASSES FORMAT:K:N:THREADS:COLD ...");
            System.exit(2);
        }
        Method[] run = new Method[2], gemm = new Method[2];
        for (int v = 0; v < 2; v++) {
            List<URL> urls = new ArrayList<>();
            urls.add(Path.of(a[v]).toUri().toURL());
            for (String c : a[2].split(":")) urls.add(Path.of(c).toUri().toURL());
            ClassLoader cl = new URLClassLoader(urls.toArray(new URL[0]), ClassLoader.getPlatformClassLoader());
            run[v] = cl.loadClass("dev.qlora4j.bench.kernel.AbRunner")
                    .getMethod("run", String.class, int.class, int.class, int.class, boolean.class, long.class);
            gemm[v] = cl.loadClass("dev.qlora4j.bench.kernel.AbRunner")
                    .getMethod("runGemm", String.class, int.class, int.class, int.class, int.class, boolean.class,
                            long.class);
        }
        int rounds = Integer.getInteger("rounds", 8);
        for (int c = 3; c < a.length; c++) {
            String[] f = a[c].split(":");
            boolean isGemm = f.length == 6;
            Method[] side = isGemm ? gemm : run;
            String[] formats = f[0].split("/"); // OLD/NEW: the old side runs the first format, the new side the second
            Object[] args = isGemm
                    ? new Object[] {formats[0], Integer.parseInt(f[1]), Integer.parseInt(f[2]), Integer.parseInt(f[3]),
                            Integer.parseInt(f[4]), "bwd".equals(f[5]), 500_000_000L}
                    : new Object[] {formats[0], Integer.parseInt(f[1]), Integer.parseInt(f[2]), Integer.parseInt(f[3]),
                            Boolean.parseBoolean(f[4]), 300_000_000L};
            Object[][] sideArgs = {args, args.clone()}; // (old, new) arguments
            sideArgs[1][0] = formats[formats.length - 1];
            for (int w = 0; w < 2; w++) { // warm-up: build weights, compile
                for (int v = 0; v < 2; v++) side[v].invoke(null, sideArgs[v]);
            }
            double[][] r = new double[2][rounds]; // (old/new, rounds) GFLOP/s
            for (int i = 0; i < rounds; i++) {
                for (int s = 0; s < 2; s++) {
                    int v = i % 2 == 0 ? s : 1 - s;
                    r[v][i] = (double) side[v].invoke(null, sideArgs[v]);
                }
            }
            double[] ratio = new double[rounds];
            for (int i = 0; i < rounds; i++) ratio[i] = r[1][i] / r[0][i];
            for (double[] x : r) Arrays.sort(x);
            Arrays.sort(ratio);
            System.out.printf("%-28s old %6.1f  new %6.1f GFLOP/s (medians)  new/old median %.2f [%.2f..%.2f]%n",
                    a[c], r[0][rounds / 2], r[1][rounds / 2], ratio[rounds / 2], ratio[0], ratio[rounds - 1]);
        }
        System.exit(0);
    }
}
