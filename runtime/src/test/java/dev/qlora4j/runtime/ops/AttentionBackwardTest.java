package dev.qlora4j.runtime.ops;

import dev.qlora4j.quant.kernel.KernelPool;
import dev.qlora4j.quant.kernel.KernelProvider;
import dev.qlora4j.quant.kernel.Kernels;
import dev.qlora4j.quant.kernel.ScalarKernels;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Random;

/**
 * Causal attention backward (recomputing probabilities from the saved log-sum-exp) against central differences of a
 * float64 reference attention, GPT-2 and BLOOM QKV layouts, with and without ALiBi, head counts that are not powers
 * of two, and a case long enough to run on the kernel pool.
 */
class AttentionBackwardTest {
    static final double H = 1e-6;

    /** float64 reference of {@code Σ attention(qkv)·dout}; qkv (B, n, 3C), dout (B, n, C). */
    static double loss(double[] qkv, QkvLayout layout, double[] dout, float[] slopes, int b, int n, int nh, int hs) {
        int c = nh * hs;
        double total = 0;
        double[] s = new double[n];
        for (int bi = 0; bi < b; bi++) {
            for (int h = 0; h < nh; h++) {
                for (int t = 0; t < n; t++) {
                    int q = (bi * n + t) * 3 * c + layout.q(h, hs, c);
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j <= t; j++) {
                        int k = (bi * n + j) * 3 * c + layout.k(h, hs, c);
                        double dot = 0;
                        for (int d = 0; d < hs; d++) dot += qkv[q + d] * qkv[k + d];
                        s[j] = dot / Math.sqrt(hs) + (slopes == null ? 0 : (double) slopes[h] * j);
                        max = Math.max(max, s[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j <= t; j++) sum += s[j] = Math.exp(s[j] - max);
                    for (int d = 0; d < hs; d++) {
                        double o = 0;
                        for (int j = 0; j <= t; j++) {
                            o += s[j] / sum * qkv[(bi * n + j) * 3 * c + layout.v(h, hs, c) + d];
                        }
                        total += o * dout[(bi * n + t) * c + h * hs + d];
                    }
                }
            }
        }
        return total;
    }

    @ParameterizedTest(name = "{0} B={1} T={2} NH={3} HS={4} alibi={5}")
    @CsvSource({
            "SPLIT_QKV, 1, 1, 1, 4, false",
            "SPLIT_QKV, 2, 9, 3, 5, false",
            "SPLIT_QKV, 2, 7, 4, 8, true",
            "PER_HEAD_INTERLEAVED, 2, 9, 3, 4, true",
            "PER_HEAD_INTERLEAVED, 1, 8, 6, 3, true",
            "PER_HEAD_INTERLEAVED, 3, 5, 5, 2, false",
            "PER_HEAD_INTERLEAVED, 2, 19, 3, 4, true", // ≥ 16 positions: tiles on the kernel pool
    })
    void matchesFiniteDifferences(QkvLayout layout, int b, int n, int nh, int hs, boolean alibi) {
        int c = nh * hs, maxT = n + 3; // a cache longer than the sequence: strides must use maxT
        Random r = new Random(1000L * n + 17L * nh + hs + (alibi ? 1 : 0));
        float[] qkv = GradCheck.randn(r, b * n * 3 * c, 0.9);
        float[] dout = GradCheck.randn(r, b * n * c, 1);
        float[] slopes = alibi ? Alibi.slopes(nh) : null;
        if (alibi) for (int h = 0; h < nh; h++) slopes[h] *= 4; // make the bias matter at these short lengths

        for (Kernels kern : new Kernels[]{new ScalarKernels(), KernelProvider.get()}) {
            float[] cacheK = new float[b * nh * maxT * hs], cacheV = new float[b * nh * maxT * hs];
            float[] out = new float[b * n * c], lse = new float[b * nh * n];
            Attention.storeKv(qkv, 0, layout, cacheK, cacheV, 0, b, n, 0, maxT, nh, hs);
            int threads = KernelPool.shared().threads();
            new AttentionJob(threads, maxT).run(KernelPool.shared(), kern, qkv, layout, cacheK, cacheV, out, lse,
                    slopes, b, n, 0, maxT, nh, hs);
            float[] dqkv = new float[b * n * 3 * c];
            java.util.Arrays.fill(dqkv, Float.NaN); // must be fully overwritten
            new AttentionBackward(threads, n).run(KernelPool.shared(), kern, dout, qkv, layout, cacheK, cacheV, lse,
                    slopes, dqkv, b, n, maxT, nh, hs);
            check(qkv, dout, dqkv, layout, slopes, b, n, nh, hs, alibi, kern.name());
        }
    }

    static void check(float[] qkv, float[] dout, float[] dqkv, QkvLayout layout, float[] slopes, int b, int n, int nh,
                      int hs, boolean alibi, String kern) {
        int c = nh * hs;
        double[] qd = GradCheck.toDouble(qkv), dd = GradCheck.toDouble(dout);
        String name = "attention (" + kern + ") " + layout + " B=" + b + " T=" + n + " NH=" + nh + " HS=" + hs + " alibi=" + alibi;
        var eq = new GradCheck.Errors(name + " dq", 1e-3);
        var ek = new GradCheck.Errors(name + " dk", 1e-3);
        var ev = new GradCheck.Errors(name + " dv", 1e-3);
        for (int bi = 0; bi < b; bi++) {
            for (int t = 0; t < n; t++) {
                for (int h = 0; h < nh; h++) {
                    for (int d = 0; d < hs; d++) {
                        int row = (bi * n + t) * 3 * c;
                        int[] idx = {row + layout.q(h, hs, c) + d, row + layout.k(h, hs, c) + d,
                                row + layout.v(h, hs, c) + d};
                        GradCheck.Errors[] es = {eq, ek, ev};
                        for (int w = 0; w < 3; w++) {
                            int i = idx[w];
                            double keep = qd[i];
                            qd[i] = keep + H;
                            double up = loss(qd, layout, dd, slopes, b, n, nh, hs);
                            qd[i] = keep - H;
                            double down = loss(qd, layout, dd, slopes, b, n, nh, hs);
                            qd[i] = keep;
                            es[w].add("b" + bi + " t" + t + " h" + h + " d" + d, (up - down) / (2 * H), dqkv[i]);
                        }
                    }
                }
            }
        }
        if (n > 1) eq.check(2e-3); // T = 1: the only probability is 1, dq ≡ 0 and dk ≡ 0
        if (n > 1) ek.check(2e-3);
        ev.check(2e-3);
    }
}
