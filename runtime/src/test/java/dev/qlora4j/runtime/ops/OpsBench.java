package dev.qlora4j.runtime.ops;

import dev.qlora4j.quant.kernel.KernelPool;
import dev.qlora4j.quant.kernel.KernelProvider;
import dev.qlora4j.quant.kernel.Kernels;

import java.util.Arrays;
import java.util.Random;

/**
 * Timing main (not a unit test) for the elementwise / LayerNorm / attention-backward ops on GPT-2 124M training
 * shapes: B·T = 1024, C = 768, 4C = 3072, NH = 12, T = 256. Prints the median of {@code reps} timed calls per op.
 *
 * <pre>
 * java --add-modules jdk.incubator.vector -cp runtime/target/test-classes:runtime/target/classes:quant/target/classes \
 *     dev.qlora4j.runtime.ops.OpsBench [reps]
 * </pre>
 */
public final class OpsBench {
    static final int B = 4, T = 256, C = 768, NH = 12, HS = C / NH, BT = B * T;

    interface Op {
        void run();
    }

    static double median(Op op, int reps) {
        for (int i = 0; i < Math.max(10, reps); i++) op.run(); // warm-up (C2 / OSR)
        double[] ms = new double[reps];
        for (int i = 0; i < reps; i++) {
            long t0 = System.nanoTime();
            op.run();
            ms[i] = (System.nanoTime() - t0) / 1e6;
        }
        Arrays.sort(ms);
        return ms[reps / 2];
    }

    public static void main(String[] args) {
        int reps = args.length > 0 ? Integer.parseInt(args[0]) : 30;
        Random r = new Random(7);
        Kernels kern = KernelProvider.get();
        KernelPool pool = KernelPool.shared();
        System.out.printf("kernels=%s threads=%d reps=%d%n", kern.name(), pool.threads(), reps);

        float[] fc = randn(r, BT * 4 * C), gelu = new float[BT * 4 * C], dg = randn(r, BT * 4 * C);
        float[] dfc = new float[BT * 4 * C];
        report("gelu forward (1024x3072)", median(() -> Gelu.forward(fc, 0, gelu, 0, BT * 4 * C), reps));
        report("gelu backward (1024x3072)", median(() -> {
            System.arraycopy(dg, 0, dfc, 0, dfc.length); // in place as in DecoderBackward (copy timed separately)
            Gelu.backward(fc, 0, dfc, 0, dfc, 0, BT * 4 * C);
        }, reps));
        report("  (arraycopy 1024x3072 inside the above)", median(() -> System.arraycopy(dg, 0, dfc, 0, dfc.length), reps));

        float[] x = randn(r, BT * C), y = new float[BT * C], g = randn(r, C), be = randn(r, C);
        float[] mean = new float[BT], rstd = new float[BT];
        report("layernorm forward (1024x768)", median(() -> LayerNorm.forward(x, 0, g, be, 1e-5f, y, 0, mean, rstd, 0,
                BT, C), reps));
        float[] dy = randn(r, BT * C), dx = new float[BT * C], dgam = new float[C], dbet = new float[C];
        report("layernorm backward, frozen (accumulate)", median(() -> LayerNorm.backward(dy, 0, x, 0, g, mean, rstd,
                0, dx, 0, null, null, BT, C, true), reps));
        report("layernorm backward, dgamma/dbeta", median(() -> LayerNorm.backward(dy, 0, x, 0, g, mean, rstd, 0, dx,
                0, dgam, dbet, BT, C, false), reps));
        float[] a = randn(r, BT * C), b2 = randn(r, BT * C), o = new float[BT * C];
        report("residual add (inline loop, 1024x768)", median(() -> {
            for (int i = 0; i < BT * C; i++) o[i] = a[i] + b2[i];
        }, reps));
        benchExtra(r, reps, a, b2, o);

        // attention backward
        QkvLayout layout = QkvLayout.SPLIT_QKV;
        float[] qkv = randn(r, BT * 3 * C), dout = randn(r, BT * C);
        float[] cacheK = new float[B * NH * T * HS], cacheV = new float[B * NH * T * HS];
        float[] att = new float[BT * C], lse = new float[B * NH * T], dqkv = new float[BT * 3 * C];
        Attention.storeKv(qkv, 0, layout, cacheK, cacheV, 0, B, T, 0, T, NH, HS);
        AttentionJob fwd = new AttentionJob(pool.threads(), T);
        fwd.run(pool, kern, qkv, layout, cacheK, cacheV, att, lse, null, B, T, 0, T, NH, HS);
        report("attention forward (B=4 T=256 NH=12)", median(() -> fwd.run(pool, kern, qkv, layout, cacheK, cacheV,
                att, lse, null, B, T, 0, T, NH, HS), reps));
        AttentionBackward bwd = new AttentionBackward(pool.threads(), T);
        report("attention backward (B=4 T=256 NH=12)", median(() -> bwd.run(pool, kern, dout, qkv, layout, cacheK,
                cacheV, lse, null, dqkv, B, T, T, NH, HS), reps));
        double sum = 0;
        for (float v : dqkv) sum += v;
        System.out.printf("checksum dqkv %.6f%n", sum);
    }

    /** Ops that only exist after the change. */
    static void benchExtra(Random r, int reps, float[] a, float[] b, float[] o) {
        report("residual add (Elementwise.add, 1024x768)", median(() -> Elementwise.add(a, 0, b, 0, o, 0, BT * C), reps));
    }

    static void report(String name, double ms) {
        System.out.printf("%-45s %8.3f ms%n", name, ms);
    }

    static float[] randn(Random r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) r.nextGaussian();
        return a;
    }
}
