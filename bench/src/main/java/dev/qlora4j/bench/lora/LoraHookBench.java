package dev.qlora4j.bench.lora;

import dev.qlora4j.lora.adapter.LoraHook;
import dev.qlora4j.lora.params.ParamBuffer;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Micro benchmark of one {@link LoraHook}'s forward and backward (GPT-2 124M c_attn shape by default:
 * M = B·T = 1024, in = 768, out = 2304, r = 8), median over rounds.
 *
 * <pre>
 * java --add-modules jdk.incubator.vector -cp ... dev.qlora4j.bench.lora.LoraHookBench [M in out r dropout rounds iters]
 * </pre>
 */
public final class LoraHookBench {
    private LoraHookBench() {
    }

    public static void main(String[] args) {
        int m = arg(args, 0, 1024), in = arg(args, 1, 768), out = arg(args, 2, 2304), r = arg(args, 3, 8);
        double dropout = args.length > 4 ? Double.parseDouble(args[4]) : 0.0;
        int rounds = arg(args, 5, 15), iters = arg(args, 6, 10);

        ParamBuffer.Builder pb = ParamBuffer.builder();
        ParamBuffer.Slice a = pb.add("m.lora_A.weight", true, r, in);
        ParamBuffer.Slice b = pb.add("m.lora_B.weight", true, out, r);
        ParamBuffer buf = pb.build();
        SplittableRandom rnd = new SplittableRandom(42);
        for (int i = 0; i < buf.size(); i++) buf.params()[i] = (float) (rnd.nextDouble() * 2 - 1) * 0.05f;
        LoraHook h = new LoraHook("m", in, out, r, 16, false, dropout, buf, a, b, 7, 0);
        h.setTraining(true);
        h.setStep(1);
        float[] x = fill(new float[m * in], rnd), dy = fill(new float[m * out], rnd);
        float[] y = new float[m * out], dx = new float[m * in];

        double[] fwd = new double[rounds], bwd = new double[rounds];
        for (int w = 0; w < 3; w++) { // warm-up rounds, not recorded
            for (int i = 0; i < iters; i++) {
                h.forward(x, 0, y, 0, m);
                h.backward(x, 0, dy, 0, dx, 0, m);
            }
        }
        for (int k = 0; k < rounds; k++) {
            long t0 = System.nanoTime();
            for (int i = 0; i < iters; i++) h.forward(x, 0, y, 0, m);
            long t1 = System.nanoTime();
            for (int i = 0; i < iters; i++) h.backward(x, 0, dy, 0, dx, 0, m);
            long t2 = System.nanoTime();
            fwd[k] = (t1 - t0) / 1e6 / iters;
            bwd[k] = (t2 - t1) / 1e6 / iters;
            buf.zeroGrads();
            Arrays.fill(y, 0f);
            Arrays.fill(dx, 0f);
        }
        double f = median(fwd), bk = median(bwd);
        System.out.printf("LoraHookBench M=%d in=%d out=%d r=%d dropout=%.2f threads=%s: forward %.3f ms, backward %.3f ms,"
                        + " forward+backward %.3f ms (median of %d rounds × %d iters; min f+b %.3f ms)%n",
                m, in, out, r, dropout, System.getProperty("qlora.threads", "default"), f, bk, f + bk, rounds, iters,
                minSum(fwd, bwd));
    }

    private static double minSum(double[] a, double[] b) {
        double best = Double.MAX_VALUE;
        for (int i = 0; i < a.length; i++) best = Math.min(best, a[i] + b[i]);
        return best;
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    private static float[] fill(float[] v, SplittableRandom rnd) {
        for (int i = 0; i < v.length; i++) v[i] = (float) (rnd.nextDouble() * 2 - 1);
        return v;
    }

    private static int arg(String[] args, int i, int def) {
        return args.length > i ? Integer.parseInt(args[i]) : def;
    }
}
