package dev.qlora4j.lora.adapter;

import dev.qlora4j.lora.params.ParamBuffer;
import dev.qlora4j.quant.kernel.KernelPool;
import dev.qlora4j.quant.kernel.KernelProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * LoraHook forward against a naive double-precision reference, and backward (dA, dB, dx) against central finite
 * differences of {@code L = Σ y ⊙ R}, on small odd shapes, with and without dropout.
 */
class LoraHookTest {

    record Setup(LoraHook hook, ParamBuffer buf, int in, int out, int r) {
    }

    static Setup setup(int in, int out, int r, double alpha, boolean rslora, double dropout, long seed) {
        return setup(in, out, r, alpha, rslora, dropout, seed, null);
    }

    /** @param jobs the compute to use, or null for the public constructor's (process-wide kernels) */
    static Setup setup(int in, int out, int r, double alpha, boolean rslora, double dropout, long seed,
                       LoraHookJobs jobs) {
        ParamBuffer.Builder pb = ParamBuffer.builder();
        ParamBuffer.Slice a = pb.add("m.lora_A.weight", true, r, in);
        ParamBuffer.Slice b = pb.add("m.lora_B.weight", true, out, r);
        ParamBuffer buf = pb.build();
        SplittableRandom rnd = new SplittableRandom(seed);
        for (int i = 0; i < buf.size(); i++) buf.params()[i] = (float) (rnd.nextDouble() * 2 - 1);
        LoraHook h = jobs == null ? new LoraHook("m", in, out, r, alpha, rslora, dropout, buf, a, b, 7, 0)
                : new LoraHook("m", in, out, r, alpha, rslora, dropout, buf, a, b, 7, 0, jobs);
        return new Setup(h, buf, in, out, r);
    }

    static float[] random(int n, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) (rnd.nextDouble() * 2 - 1);
        return v;
    }

    /** L = Σ_{m,o} (hook output on zero base)[m,o] · R[m,o], in double. */
    static double loss(Setup s, float[] x, float[] rw, int m) {
        float[] y = new float[m * s.out];
        s.hook.forward(x, 0, y, 0, m);
        double l = 0;
        for (int i = 0; i < y.length; i++) l += (double) y[i] * rw[i];
        return l;
    }

    @ParameterizedTest(name = "in={0} out={1} r={2} M={3} dropout={4}")
    @CsvSource({"5,7,1,3,0", "13,11,4,5,0", "17,3,8,2,0", "9,10,3,4,0.3", "31,23,2,7,0.5"})
    void backwardMatchesFiniteDifferences(int in, int out, int r, int m, double dropout) {
        Setup s = setup(in, out, r, 3.0, false, dropout, 11);
        s.hook.setTraining(true);
        s.hook.setStep(5);
        float[] x = random(m * in, 1), rw = random(m * out, 2);
        float[] dx = new float[m * in];
        s.buf.zeroGrads();
        s.hook.backward(x, 0, rw, 0, dx, 0, m);
        float[] p = s.buf.params(), g = s.buf.grads();
        double eps = 1e-2;
        for (int i = 0; i < p.length; i++) {
            float keep = p[i];
            p[i] = (float) (keep + eps);
            double lp = loss(s, x, rw, m);
            p[i] = (float) (keep - eps);
            double lm = loss(s, x, rw, m);
            p[i] = keep;
            check((lp - lm) / (2 * eps), g[i], (i < r * in ? "dA[" : "dB[") + i + "]");
        }
        for (int i = 0; i < x.length; i++) {
            float keep = x[i];
            x[i] = (float) (keep + eps);
            double lp = loss(s, x, rw, m);
            x[i] = (float) (keep - eps);
            double lm = loss(s, x, rw, m);
            x[i] = keep;
            check((lp - lm) / (2 * eps), dx[i], "dx[" + i + "]");
        }
    }

    static void check(double want, double got, String what) {
        double tol = 2e-3 * Math.max(1, Math.abs(want));
        if (!(Math.abs(want - got) <= tol)) fail(what + ": analytic " + got + ", finite difference " + want);
    }

    @Test
    void backwardAccumulatesIntoGradsAndDx() {
        Setup s = setup(6, 5, 2, 2, false, 0, 3);
        float[] x = random(3 * 6, 4), dy = random(3 * 5, 5);
        float[] dx = new float[3 * 6];
        s.hook.backward(x, 0, dy, 0, dx, 0, 3);
        float[] g1 = s.buf.grads().clone(), dx1 = dx.clone();
        s.hook.backward(x, 0, dy, 0, dx, 0, 3);
        for (int i = 0; i < g1.length; i++) assertEquals(2 * g1[i], s.buf.grads()[i], 1e-5 * Math.max(1, Math.abs(g1[i])));
        for (int i = 0; i < dx1.length; i++) assertEquals(2 * dx1[i], dx[i], 1e-5 * Math.max(1, Math.abs(dx1[i])));
    }

    @ParameterizedTest(name = "rslora={0}")
    @CsvSource({"false", "true"})
    void forwardMatchesNaiveReference(boolean rslora) {
        int in = 19, out = 13, r = 5, m = 4;
        Setup s = setup(in, out, r, 7, rslora, 0, 9);
        float[] x = random(m * in, 6), y = random(m * out, 7), y0 = y.clone();
        int xOff = 3, yOff = 2; // offsets are honoured
        float[] xs = new float[xOff + x.length];
        System.arraycopy(x, 0, xs, xOff, x.length);
        float[] ys = new float[yOff + y.length];
        System.arraycopy(y, 0, ys, yOff, y.length);
        s.hook.forward(xs, xOff, ys, yOff, m);
        double scale = rslora ? 7 / Math.sqrt(r) : 7.0 / r;
        assertEquals(scale, s.hook.scale(), 1e-6);
        float[] p = s.buf.params();
        for (int row = 0; row < m; row++) {
            for (int o = 0; o < out; o++) {
                double acc = 0;
                for (int k = 0; k < r; k++) {
                    double u = 0;
                    for (int i = 0; i < in; i++) u += (double) p[k * in + i] * x[row * in + i];
                    acc += p[r * in + o * r + k] * u;
                }
                assertEquals(y0[row * out + o] + scale * acc, ys[yOff + row * out + o], 1e-4, "y[" + row + "," + o + "]");
            }
        }
    }

    @Test
    void dropoutIsInvertedSeededAndOffInEval() {
        int in = 4000, out = 3, r = 2;
        Setup s = setup(in, out, r, 2, false, 0.25, 1);
        s.hook.setTraining(true);
        s.hook.setStep(1);
        float[] mask = s.hook.maskOf(0);
        int dropped = 0;
        for (float v : mask) {
            if (v == 0f) dropped++;
            else assertEquals(1f / 0.75f, v, 1e-6f);
        }
        assertEquals(0.25, dropped / (double) in, 0.03, "fraction dropped");
        assertArrayEquals(mask, s.hook.maskOf(0), "same step, same row ⇒ same mask");
        assertFalse(java.util.Arrays.equals(mask, s.hook.maskOf(1)), "rows differ");
        s.hook.setStep(2);
        assertFalse(java.util.Arrays.equals(mask, s.hook.maskOf(0)), "steps differ");

        float[] x = random(in, 3);
        float[] yTrain = new float[out], yEval = new float[out], yNoDrop = new float[out];
        s.hook.forward(x, 0, yTrain, 0, 1);
        s.hook.setTraining(false);
        s.hook.forward(x, 0, yEval, 0, 1);
        Setup plain = setup(in, out, r, 2, false, 0, 1);
        plain.hook.forward(x, 0, yNoDrop, 0, 1);
        assertArrayEquals(yNoDrop, yEval, "eval mode has no dropout");
        assertFalse(java.util.Arrays.equals(yTrain, yEval), "training mode drops");
    }

    @Test
    void disabledHookDoesNothing() {
        Setup s = setup(5, 4, 2, 2, false, 0, 1);
        s.hook.setEnabled(false);
        float[] x = random(10, 1), y = random(8, 2), y0 = y.clone(), dx = new float[10];
        s.hook.forward(x, 0, y, 0, 2);
        s.hook.backward(x, 0, y, 0, dx, 0, 2);
        assertArrayEquals(y0, y);
        assertArrayEquals(new float[10], dx);
        for (float g : s.buf.grads()) assertTrue(g == 0f);
    }

    /** Shapes off every tile and vector boundary: M not a multiple of the row tile, in/out spanning several column tiles. */
    @ParameterizedTest(name = "kernels={0} in={1} out={2} r={3} M={4} dropout={5} threads={6}")
    @CsvSource({"panama,133,301,8,37,0,1", "panama,133,301,8,37,0,3", "panama,257,129,3,50,0.3,2",
            "panama,768,2304,8,35,0.1,2", "panama,31,7,1,17,0,2", "scalar,133,301,8,37,0.2,2", "scalar,5,300,2,1,0,2"})
    void parallelPathMatchesScalarReference(String kernels, int in, int out, int r, int m, double dropout,
                                            int threads) {
        KernelPool pool = new KernelPool(threads);
        LoraHookJobs jobs = new LoraHookJobs(KernelProvider.create(kernels), pool);
        Setup s = setup(in, out, r, 16, false, dropout, 21, jobs);
        s.hook.setTraining(true);
        s.hook.setStep(3);
        int xOff = 5, yOff = 3, dyOff = 7, dxOff = 2; // offsets are honoured
        float[] x = random(xOff + m * in, 31), y = random(yOff + m * out, 32), dy = random(dyOff + m * out, 33);
        float[] dx = random(dxOff + m * in, 34);
        float[] grads0 = random(s.buf.size(), 35); // accumulates into existing grads
        float[] yRef = y.clone(), dxRef = dx.clone();

        System.arraycopy(grads0, 0, s.buf.grads(), 0, grads0.length);
        s.hook.forwardReference(x, xOff, yRef, yOff, m);
        s.hook.backwardReference(x, xOff, dy, dyOff, dxRef, dxOff, m);
        float[] gRef = s.buf.grads().clone();

        System.arraycopy(grads0, 0, s.buf.grads(), 0, grads0.length);
        s.hook.forward(x, xOff, y, yOff, m);
        s.hook.backward(x, xOff, dy, dyOff, dx, dxOff, m);
        float[] g = s.buf.grads().clone();

        assertClose(yRef, y, "y");
        assertClose(dxRef, dx, "dx");
        assertClose(gRef, g, "grads");

        // deterministic: the same call again gives the same bits, and so does another thread count
        float[] yA = random(yOff + m * out, 32), yB = yA.clone(), dxA = random(dxOff + m * in, 34), dxB = dxA.clone();
        System.arraycopy(grads0, 0, s.buf.grads(), 0, grads0.length);
        s.hook.forward(x, xOff, yA, yOff, m);
        s.hook.backward(x, xOff, dy, dyOff, dxA, dxOff, m);
        float[] gA = s.buf.grads().clone();
        KernelPool other = new KernelPool(threads == 1 ? 2 : 1);
        Setup t = setup(in, out, r, 16, false, dropout, 21, new LoraHookJobs(jobs.kernels(), other));
        t.hook.setTraining(true);
        t.hook.setStep(3);
        System.arraycopy(grads0, 0, t.buf.grads(), 0, grads0.length);
        t.hook.forward(x, xOff, yB, yOff, m);
        t.hook.backward(x, xOff, dy, dyOff, dxB, dxOff, m);
        assertArrayEquals(y, yA, "forward repeatable");
        assertArrayEquals(dx, dxA, "dx repeatable");
        assertArrayEquals(g, gA, "grads repeatable");
        assertArrayEquals(yA, yB, "forward independent of thread count");
        assertArrayEquals(dxA, dxB, "dx independent of thread count");
        assertArrayEquals(gA, t.buf.grads(), "grads independent of thread count");
    }

    /** |got - want| ≤ 1e-5 · (|want| + rms(want)): relative, with the array's scale as the floor. */
    static void assertClose(float[] want, float[] got, String what) {
        assertEquals(want.length, got.length, what + " length");
        double ss = 0;
        for (float v : want) ss += (double) v * v;
        double rms = Math.sqrt(ss / Math.max(1, want.length));
        for (int i = 0; i < want.length; i++) {
            double tol = 1e-5 * (Math.abs(want[i]) + rms);
            if (!(Math.abs(want[i] - got[i]) <= tol)) {
                fail(what + "[" + i + "]: reference " + want[i] + ", parallel " + got[i] + " (tolerance " + tol + ")");
            }
        }
    }
}
