package dev.qlora4j.runtime.ops;

import dev.qlora4j.quant.kernel.KernelPool;
import dev.qlora4j.quant.kernel.Kernels;
import dev.qlora4j.quant.kernel.PanamaKernels;
import dev.qlora4j.quant.kernel.ScalarKernels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The four-query prompt-processing attention ({@link Attention#forwardHeadBlocked}, and {@link AttentionJob} choosing
 * it) against a float64 causal softmax attention over the KV cache: cached prefixes (pos0 > 0), ALiBi, both QKV
 * layouts, query counts that are not multiples of four, key counts that end inside a 64-key pass and inside a
 * 16-key vector, head sizes that take the 64-column, 16-column and scalar paths.
 */
class BlockedAttentionTest {

    /** float64 attention of the new queries [pos0, pos0 + n) of every head: out (B, n, C). */
    static double[] attentionD(float[] qkvNew, float[] cacheK, float[] cacheV, QkvLayout layout, float[] slopes,
                               int b, int n, int pos0, int maxT, int nh, int hs) {
        int c = nh * hs;
        double scale = 1 / Math.sqrt(hs);
        double[] out = new double[b * n * c], p = new double[pos0 + n];
        for (int bi = 0; bi < b; bi++) {
            for (int h = 0; h < nh; h++) {
                int kv = (bi * nh + h) * maxT * hs, qo = layout.q(h, hs, c);
                for (int t = 0; t < n; t++) {
                    int q = (bi * n + t) * 3 * c + qo, len = pos0 + t + 1;
                    double max = Double.NEGATIVE_INFINITY, sum = 0;
                    for (int j = 0; j < len; j++) {
                        double s = 0;
                        for (int e = 0; e < hs; e++) s += (double) qkvNew[q + e] * cacheK[kv + j * hs + e];
                        p[j] = s * scale + (slopes == null ? 0 : (double) slopes[h] * j);
                        max = Math.max(max, p[j]);
                    }
                    for (int j = 0; j < len; j++) sum += p[j] = Math.exp(p[j] - max);
                    int o = (bi * n + t) * c + h * hs;
                    for (int j = 0; j < len; j++) {
                        for (int e = 0; e < hs; e++) out[o + e] += p[j] / sum * cacheV[kv + j * hs + e];
                    }
                }
            }
        }
        return out;
    }

    @ParameterizedTest(name = "{0} B={1} n={2} pos0={3} NH={4} HS={5} alibi={6}")
    @CsvSource({
            "SPLIT_QKV, 2, 70, 0, 3, 64, false",             // 64-column sums, a 64-key pass, 16-key steps, masked tail
            "SPLIT_QKV, 1, 13, 37, 2, 64, false",            // cached prefix, a last group of one query
            "PER_HEAD_INTERLEAVED, 1, 131, 5, 3, 32, true",  // BLOOM: ALiBi, 16-column sums, two 64-key passes
            "PER_HEAD_INTERLEAVED, 2, 10, 90, 6, 80, true",  // 64 + 16 columns, six heads (non power-of-two slopes)
            "SPLIT_QKV, 1, 9, 3, 2, 48, true",               // 16-column sums only, groups of 4, 4, 1
            "SPLIT_QKV, 1, 22, 11, 2, 24, false",            // HS not a whole vector: the scalar defaults
    })
    void blockedHeadMatchesFloat64(QkvLayout layout, int b, int n, int pos0, int nh, int hs, boolean alibi) {
        int c = nh * hs, maxT = pos0 + n + 3;
        Random r = new Random(1000L * n + 17 * pos0 + hs);
        float[] qkvOld = GradCheck.randn(r, b * Math.max(pos0, 1) * 3 * c, 1.2);
        float[] qkvNew = GradCheck.randn(r, b * n * 3 * c, 1.2);
        float[] slopes = alibi ? Alibi.slopes(nh) : null;
        float[] cacheK = new float[b * nh * maxT * hs], cacheV = new float[b * nh * maxT * hs];
        if (pos0 > 0) Attention.storeKv(qkvOld, 0, layout, cacheK, cacheV, 0, b, pos0, 0, maxT, nh, hs);
        Attention.storeKv(qkvNew, 0, layout, cacheK, cacheV, 0, b, n, pos0, maxT, nh, hs);
        double[] want = attentionD(qkvNew, cacheK, cacheV, layout, slopes, b, n, pos0, maxT, nh, hs);
        int total = pos0 + n, stride = total + 5; // scratch strides wider than needed, as AttentionJob's
        for (Kernels k : new Kernels[]{new ScalarKernels(), new PanamaKernels(512), new PanamaKernels(256)}) {
            float[] out = new float[b * n * c];
            Arrays.fill(out, Float.NaN); // every output element must be written
            float[] scores4 = new float[4 * stride], kt = new float[hs * stride];
            for (int bi = 0; bi < b; bi++) {
                for (int h = 0; h < nh; h++) {
                    Arrays.fill(scores4, Float.NaN); // nothing may be read before it is written
                    Attention.forwardHeadBlocked(k, qkvNew, layout, cacheK, cacheV, out, slopes, bi, h, n, pos0, maxT,
                            nh, hs, scores4, stride, kt, stride);
                }
            }
            float[] perQuery = new float[b * n * c], scores = new float[total];
            for (int bi = 0; bi < b; bi++) {
                for (int h = 0; h < nh; h++) {
                    Attention.forwardHead(k, qkvNew, 0, layout, cacheK, cacheV, 0, perQuery, 0, null, 0, slopes, bi, h,
                            n, pos0, maxT, nh, hs, scores);
                }
            }
            double worst = 0, worstPerQuery = 0;
            for (int i = 0; i < want.length; i++) {
                worst = Math.max(worst, Math.abs(out[i] - want[i]));
                worstPerQuery = Math.max(worstPerQuery, Math.abs(perQuery[i] - want[i]));
            }
            System.out.printf("[blocked-attn] %s %s n=%d pos0=%d HS=%d: max|out - f64| = %.3e (per-query path %.3e)%n",
                    label(k), layout, n, pos0, hs, worst, worstPerQuery);
            assertTrue(worst <= 1e-5, label(k) + ": blocked attention error " + worst);
        }
    }

    static String label(Kernels k) {
        return k instanceof PanamaKernels p ? "panama" + p.vectorBits() : k.name();
    }

    /** The job takes the blocked path for prompts on 512- and 256-bit kernels, and its output is the same attention. */
    @Test
    void jobChoosesBlockedForPromptsAndMatchesFloat64() {
        Kernels k512 = new PanamaKernels(512);
        assertTrue(Attention.useBlocked(k512, null, 0f, 8, 64));
        assertFalse(Attention.useBlocked(k512, null, 0f, 7, 64), "too few queries");
        assertFalse(Attention.useBlocked(k512, new float[1], 0f, 64, 64), "training saves the log-sum-exp");
        assertFalse(Attention.useBlocked(k512, null, 0.1f, 64, 64), "dropout");
        assertFalse(Attention.useBlocked(new ScalarKernels(), null, 0f, 64, 64), "no blocked kernels");
        Kernels k256 = new PanamaKernels(256);
        assertTrue(Attention.useBlocked(k256, null, 0f, 8, 64), "AVX2 has its blocked kernels too");
        assertFalse(Attention.useBlocked(k256, null, 0f, 8, 60), "256 bits: whole 8-lane head dimensions only");
        assertFalse(Attention.useBlocked(new PanamaKernels(128), null, 0f, 64, 64), "512 and 256 bits only");

        int b = 2, n = 45, pos0 = 20, nh = 4, hs = 64, c = nh * hs, maxT = 96;
        Random r = new Random(77);
        QkvLayout layout = QkvLayout.SPLIT_QKV;
        float[] qkvOld = GradCheck.randn(r, b * pos0 * 3 * c, 1), qkvNew = GradCheck.randn(r, b * n * 3 * c, 1);
        float[] cacheK = new float[b * nh * maxT * hs], cacheV = new float[b * nh * maxT * hs];
        Attention.storeKv(qkvOld, 0, layout, cacheK, cacheV, 0, b, pos0, 0, maxT, nh, hs);
        Attention.storeKv(qkvNew, 0, layout, cacheK, cacheV, 0, b, n, pos0, maxT, nh, hs);
        double[] want = attentionD(qkvNew, cacheK, cacheV, layout, null, b, n, pos0, maxT, nh, hs);
        for (Kernels k : new Kernels[] {k512, k256}) {
            AttentionJob job = new AttentionJob(KernelPool.shared().threads(), maxT);
            for (int rep = 0; rep < 2; rep++) { // the second call reuses the job's blocked scratch
                float[] out = new float[b * n * c];
                Arrays.fill(out, Float.NaN);
                job.run(KernelPool.shared(), k, qkvNew, layout, cacheK, cacheV, out, null, null, b, n, pos0, maxT, nh,
                        hs);
                double worst = 0;
                for (int i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(out[i] - want[i]));
                assertTrue(worst <= 1e-5, "attention job error " + worst + " at " + k);
            }
        }
    }

    @Test
    void transposedKeyStrideIsAnOddNumberOfLinesAtLeastTheContext() {
        // GPT-2's n_positions: 1024 floats = 4 KiB, which would put every row of kt in one L1 set
        assertEquals(1040, AttentionJob.ktStride(1024));
        assertEquals(656, AttentionJob.ktStride(640));
        assertEquals(1008, AttentionJob.ktStride(1008)); // 63 lines: already odd
        for (int ctx = 1; ctx <= 4096; ctx++) {
            int s = AttentionJob.ktStride(ctx);
            assertTrue(s >= ctx && s % 16 == 0 && (s / 16) % 2 == 1 && s < ctx + 32, "stride " + s + " at " + ctx);
        }
    }
}
