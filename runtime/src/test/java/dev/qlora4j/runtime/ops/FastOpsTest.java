package dev.qlora4j.runtime.ops;

import dev.qlora4j.quant.kernel.KernelPool;
import dev.qlora4j.quant.kernel.KernelProvider;
import dev.qlora4j.quant.kernel.Kernels;
import dev.qlora4j.quant.kernel.ScalarKernels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The fast paths of the row ops: GELU's float exp against {@link Math#exp} over a dense range, GELU / LayerNorm on
 * sizes large enough for the kernel pool against float64 references and against their own small-size (single-thread)
 * path bit for bit, and the blocked attention backward against a float64 analytic backward with several blocks.
 */
class FastOpsTest {

    static double geluD(double v) {
        return 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
    }

    static double geluGradD(double v) {
        double k = Math.sqrt(2 / Math.PI), th = Math.tanh(k * (v + 0.044715 * v * v * v));
        return 0.5 * (1 + th) + 0.5 * v * (1 - th * th) * k * (1 + 3 * 0.044715 * v * v);
    }

    @Test
    void expMatchesMathExp() {
        double worst = 0;
        for (int i = -8_700_000; i <= 8_800_000; i++) { // [-87, 88] step 1e-5
            float z = i * 1e-5f;
            double want = Math.exp(z);
            worst = Math.max(worst, Math.abs(Gelu.exp(z) - want) / want);
        }
        System.out.printf("[fastops] max |exp - Math.exp| / Math.exp on [-87, 88] = %.3e%n", worst);
        assertTrue(worst <= 2e-7, "exp error " + worst);
        assertEquals(1f, Gelu.exp(0f));
        assertEquals(1f, Gelu.exp(-0f));
        assertTrue(Gelu.exp(-1000f) > 0f && Gelu.exp(-1000f) < 1e-37f); // clamped, never 0 / NaN
        assertTrue(Float.isFinite(Gelu.exp(1000f)) && Gelu.exp(1000f) > 1e38f);
        assertTrue(Gelu.exp(Float.NEGATIVE_INFINITY) < 1e-37f && Float.isFinite(Gelu.exp(Float.POSITIVE_INFINITY)));
    }

    @Test
    void geluForwardAndBackwardAccurateOnDenseRange() {
        int n = 2_000_001; // [-10, 10] step 1e-5; large enough for the pool
        float[] x = new float[n], y = new float[n], dy = new float[n], dx = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = -10f + 20f * i / (n - 1);
            dy[i] = 1f;
        }
        Gelu.forward(x, 0, y, 0, n);
        Gelu.backward(x, 0, dy, 0, dx, 0, n);
        double worstY = 0, worstOld = 0, worstDx = 0, worstOldY = 0, worstOldDx = 0;
        for (int i = 0; i < n; i++) {
            float v = x[i];
            worstY = Math.max(worstY, Math.abs(y[i] - geluD(v)));
            float u = Gelu.SQRT_2_OVER_PI * (v + 0.044715f * v * v * v);
            float th = (float) Math.tanh(u), du = Gelu.SQRT_2_OVER_PI * (1f + 3f * 0.044715f * v * v);
            float old = 0.5f * v * (1f + th); // the previous implementation (Math.tanh)
            float oldDx = 0.5f * (1f + th) + 0.5f * v * (1f - th * th) * du;
            worstOld = Math.max(worstOld, Math.abs(y[i] - old));
            worstOldY = Math.max(worstOldY, Math.abs(old - geluD(v)));
            worstDx = Math.max(worstDx, Math.abs(dx[i] - geluGradD(v)));
            worstOldDx = Math.max(worstOldDx, Math.abs(oldDx - geluGradD(v)));
        }
        System.out.printf("[fastops] gelu on [-10, 10]: max|y - f64| = %.3e (Math.tanh version %.3e), max|y - Math.tanh "
                + "version| = %.3e, max|dx - f64| = %.3e (Math.tanh version %.3e)%n", worstY, worstOldY, worstOld, worstDx,
                worstOldDx);
        assertTrue(worstY <= 1e-6, "gelu forward error " + worstY);
        assertTrue(worstOld <= 1e-6, "gelu forward vs Math.tanh version " + worstOld);
        assertTrue(worstDx <= 1e-6, "gelu backward error " + worstDx);
        // large |x|: exactly x and 0 / exact slope 1 and 0 as before
        float[] big = {12f, 100f, 3e4f, -12f, -100f, -3e4f}, yb = new float[6], db = new float[6];
        Gelu.forward(big, 0, yb, 0, 6);
        Gelu.backward(big, 0, new float[]{1, 1, 1, 1, 1, 1}, 0, db, 0, 6);
        assertArrayEquals(new float[]{12f, 100f, 3e4f, 0f, 0f, 0f}, yb, 1e-30f);
        assertArrayEquals(new float[]{1f, 1f, 1f, 0f, 0f, 0f}, db, 1e-20f);
    }

    /** The Vector API loops compute every element with the scalar reference's float operations: bit-identical. */
    @Test
    void geluVectorLoopsMatchTheScalarReferenceBitForBit() {
        Random r = new Random(11);
        int n = 5003; // not a multiple of any vector length: the tail runs the scalar code
        float[] x = GradCheck.randn(r, n, 3), dy = GradCheck.randn(r, n, 1);
        float[] special = {0f, -0f, 12f, -12f, 100f, -100f, 3e4f, -3e4f, 1e-30f, -1e-30f, 5.5f, -5.5f};
        System.arraycopy(special, 0, x, 17, special.length);
        float[] y = new float[n], yRef = new float[n], dx = new float[n], dxRef = new float[n];
        Gelu.forwardRange(x, 0, y, 0, n);
        Gelu.forwardRangeScalar(x, 0, yRef, 0, n);
        Gelu.backwardRange(x, 0, dy, 0, dx, 0, n);
        Gelu.backwardRangeScalar(x, 0, dy, 0, dxRef, 0, n);
        for (int i = 0; i < n; i++) {
            assertEquals(Float.floatToRawIntBits(yRef[i]), Float.floatToRawIntBits(y[i]), "forward at x = " + x[i]);
            assertEquals(Float.floatToRawIntBits(dxRef[i]), Float.floatToRawIntBits(dx[i]), "backward at x = " + x[i]);
        }
    }

    @Test
    void geluPoolPathMatchesSerialPathBitForBit() {
        Random r = new Random(3);
        int n = 3 * Gelu.CHUNK + 12345;
        float[] x = GradCheck.randn(r, n, 2), dy = GradCheck.randn(r, n, 1);
        float[] y = new float[n], ySmall = new float[n], dx = dy.clone(), dxSmall = new float[n];
        Gelu.forward(x, 0, y, 0, n);
        Gelu.backward(x, 0, dx, 0, dx, 0, n); // in place, as DecoderBackward
        for (int i0 = 0; i0 < n; i0 += 1000) { // below the pool threshold
            int len = Math.min(1000, n - i0);
            Gelu.forward(x, i0, ySmall, i0, len);
            Gelu.backward(x, i0, dy, i0, dxSmall, i0, len);
        }
        assertArrayEquals(ySmall, y, 0f);
        assertArrayEquals(dxSmall, dx, 0f);
    }

    @Test
    void elementwiseAdd() {
        Random r = new Random(4);
        int n = Elementwise.POOL_MIN + 5 * Elementwise.CHUNK + 7; // on the pool
        float[] a = GradCheck.randn(r, n + 3, 1), b = GradCheck.randn(r, n + 5, 1), out = new float[n + 1];
        Elementwise.add(a, 3, b, 5, out, 1, n);
        for (int i = 0; i < n; i++) assertEquals(a[3 + i] + b[5 + i], out[1 + i], 0f);
        float[] acc = a.clone();
        Elementwise.add(acc, 0, b, 0, acc, 0, n); // in place
        for (int i = 0; i < n; i++) assertEquals(a[i] + b[i], acc[i], 0f);
    }

    @Test
    void layerNormLargeMatchesReferenceAndSerialPath() {
        int n = 300, c = 768; // n·c above the pool threshold, n not a multiple of the row block
        Random r = new Random(9);
        float[] x = GradCheck.randn(r, n * c, 2), gamma = GradCheck.randn(r, c, 1), beta = GradCheck.randn(r, c, 1);
        for (int i = 0; i < n * c; i++) x[i] += 3f;
        float[] dy = GradCheck.randn(r, n * c, 1);
        float eps = 1e-5f;
        float[] y = new float[n * c], mean = new float[n], rstd = new float[n];
        LayerNorm.forward(x, 0, gamma, beta, eps, y, 0, mean, rstd, 0, n, c);
        float[] dx = new float[n * c], dg = new float[c], db = new float[c];
        LayerNorm.backward(dy, 0, x, 0, gamma, mean, rstd, 0, dx, 0, dg, db, n, c, false);

        // serial path: row by row (each call below the pool threshold)
        float[] y1 = new float[n * c], mean1 = new float[n], rstd1 = new float[n];
        float[] dx1 = new float[n * c], dg1 = new float[c], db1 = new float[c];
        for (int row = 0; row < n; row++) {
            LayerNorm.forward(x, row * c, gamma, beta, eps, y1, row * c, mean1, rstd1, row, 1, c);
            LayerNorm.backward(dy, row * c, x, row * c, gamma, mean1, rstd1, row, dx1, row * c, dg1, db1, 1, c, false);
        }
        assertArrayEquals(y1, y, 0f);
        assertArrayEquals(mean1, mean, 0f);
        assertArrayEquals(rstd1, rstd, 0f);
        assertArrayEquals(dx1, dx, 0f);
        assertArrayEquals(dg1, dg, 0f);
        assertArrayEquals(db1, db, 0f);

        // float64 reference
        double[] dgD = new double[c], dbD = new double[c];
        double worstY = 0, worstDx = 0, maxDx = 0;
        for (int row = 0; row < n; row++) {
            double m = 0, v = 0;
            for (int i = 0; i < c; i++) m += x[row * c + i];
            m /= c;
            for (int i = 0; i < c; i++) v += (x[row * c + i] - m) * (x[row * c + i] - m);
            v /= c;
            double s = 1 / Math.sqrt(v + eps), gm = 0, gxm = 0;
            for (int i = 0; i < c; i++) {
                double xh = (x[row * c + i] - m) * s, g = (double) dy[row * c + i] * gamma[i];
                worstY = Math.max(worstY, Math.abs(y[row * c + i] - (xh * gamma[i] + beta[i])));
                gm += g;
                gxm += g * xh;
                dgD[i] += dy[row * c + i] * xh;
                dbD[i] += dy[row * c + i];
            }
            gm /= c;
            gxm /= c;
            for (int i = 0; i < c; i++) {
                double xh = (x[row * c + i] - m) * s, g = (double) dy[row * c + i] * gamma[i];
                double want = (g - gm - xh * gxm) * s;
                worstDx = Math.max(worstDx, Math.abs(dx[row * c + i] - want));
                maxDx = Math.max(maxDx, Math.abs(want));
            }
        }
        System.out.printf("[fastops] layernorm %dx%d: max|y - f64| = %.3e, max|dx - f64| = %.3e (max|dx| %.3e)%n", n,
                c, worstY, worstDx, maxDx);
        assertTrue(worstY <= 1e-5, "layernorm forward " + worstY);
        assertTrue(worstDx <= 1e-5 * maxDx, "layernorm dx " + worstDx);
        for (int i = 0; i < c; i++) {
            assertEquals(dgD[i], dg[i], 1e-4 * n);
            assertEquals(dbD[i], db[i], 1e-4 * n);
        }

        // accumulate, frozen γ/β, dx aliasing dy: all on the pool
        float[] acc = GradCheck.randn(r, n * c, 1), want = acc.clone();
        for (int i = 0; i < n * c; i++) want[i] += dx[i];
        LayerNorm.backward(dy, 0, x, 0, gamma, mean, rstd, 0, acc, 0, null, null, n, c, true);
        assertArrayEquals(want, acc, 1e-5f);
        float[] alias = dy.clone(), dg2 = new float[c], db2 = new float[c];
        LayerNorm.backward(alias, 0, x, 0, gamma, mean, rstd, 0, alias, 0, dg2, db2, n, c, false);
        assertArrayEquals(dx, alias, 0f);
        assertArrayEquals(dg, dg2, 0f);
        assertArrayEquals(db, db2, 0f);
    }

    /** float64 analytic attention backward: dqkv (B, n, 3C) from qkv, dout. */
    static double[] attentionBackwardD(float[] qkv, float[] dout, QkvLayout layout, float[] slopes, int b, int n,
                                       int nh, int hs) {
        int c = nh * hs, c3 = 3 * c;
        double scale = 1 / Math.sqrt(hs);
        double[] dq = new double[b * n * c3];
        double[] p = new double[n], dp = new double[n];
        for (int bi = 0; bi < b; bi++) {
            for (int h = 0; h < nh; h++) {
                int qo = layout.q(h, hs, c), ko = layout.k(h, hs, c), vo = layout.v(h, hs, c);
                for (int t = 0; t < n; t++) {
                    int qr = (bi * n + t) * c3, or = (bi * n + t) * c + h * hs;
                    double max = Double.NEGATIVE_INFINITY, sum = 0, dsum = 0;
                    for (int j = 0; j <= t; j++) {
                        int kr = (bi * n + j) * c3;
                        double s = 0, d = 0;
                        for (int e = 0; e < hs; e++) {
                            s += (double) qkv[qr + qo + e] * qkv[kr + ko + e];
                            d += (double) dout[or + e] * qkv[kr + vo + e];
                        }
                        p[j] = s * scale + (slopes == null ? 0 : (double) slopes[h] * j);
                        dp[j] = d;
                        max = Math.max(max, p[j]);
                    }
                    for (int j = 0; j <= t; j++) sum += p[j] = Math.exp(p[j] - max);
                    for (int j = 0; j <= t; j++) {
                        p[j] /= sum;
                        dsum += p[j] * dp[j];
                    }
                    for (int j = 0; j <= t; j++) {
                        int kr = (bi * n + j) * c3;
                        double ds = p[j] * (dp[j] - dsum) * scale;
                        for (int e = 0; e < hs; e++) {
                            dq[qr + qo + e] += ds * qkv[kr + ko + e];
                            dq[kr + ko + e] += ds * qkv[qr + qo + e];
                            dq[kr + vo + e] += p[j] * dout[or + e];
                        }
                    }
                }
            }
        }
        return dq;
    }

    @ParameterizedTest(name = "{0} B={1} T={2} NH={3} HS={4} alibi={5}")
    @CsvSource({
            "SPLIT_QKV, 2, 150, 3, 16, false",           // three query blocks, the last partial
            "PER_HEAD_INTERLEAVED, 1, 130, 2, 24, true", // HS not a multiple of the vector length
            "SPLIT_QKV, 1, 64, 2, 8, false",             // exactly one block
    })
    void blockedAttentionBackwardMatchesFloat64(QkvLayout layout, int b, int n, int nh, int hs, boolean alibi) {
        int c = nh * hs, maxT = n + 5;
        Random r = new Random(31L * n + hs);
        float[] qkv = GradCheck.randn(r, b * n * 3 * c, 0.7), dout = GradCheck.randn(r, b * n * c, 1);
        float[] slopes = alibi ? Alibi.slopes(nh) : null;
        double[] want = attentionBackwardD(qkv, dout, layout, slopes, b, n, nh, hs);
        double maxAbs = 0;
        for (double v : want) maxAbs = Math.max(maxAbs, Math.abs(v));
        for (Kernels kern : new Kernels[]{new ScalarKernels(), KernelProvider.get()}) {
            float[] cacheK = new float[b * nh * maxT * hs], cacheV = new float[b * nh * maxT * hs];
            float[] out = new float[b * n * c], lse = new float[b * nh * n];
            Attention.storeKv(qkv, 0, layout, cacheK, cacheV, 0, b, n, 0, maxT, nh, hs);
            int threads = KernelPool.shared().threads();
            new AttentionJob(threads, maxT).run(KernelPool.shared(), kern, qkv, layout, cacheK, cacheV, out, lse,
                    slopes, b, n, 0, maxT, nh, hs);
            float[] dqkv = new float[b * n * 3 * c];
            java.util.Arrays.fill(dqkv, Float.NaN); // must be fully overwritten
            new AttentionBackward(threads, maxT).run(KernelPool.shared(), kern, dout, qkv, layout, cacheK, cacheV, lse,
                    slopes, dqkv, b, n, maxT, nh, hs);
            double worst = 0;
            for (int i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(dqkv[i] - want[i]));
            System.out.printf("[fastops] attention backward %s %s T=%d: max|d - f64| = %.3e (max|d| %.3e)%n",
                    kern.name(), layout, n, worst, maxAbs);
            assertTrue(worst <= 2e-5 * maxAbs, "attention backward error " + worst);

            // other block sizes through the static entry point: the same up to fp32 rounding
            for (int block : new int[]{1, 7, n}) {
                float[] d2 = new float[b * n * 3 * c];
                java.util.Arrays.fill(d2, Float.NaN);
                float[] s = new float[AttentionBackward.scratchSize(n, block)];
                for (int bi = 0; bi < b; bi++) {
                    for (int h = 0; h < nh; h++) {
                        AttentionBackward.backwardHead(kern, dout, qkv, layout, cacheK, cacheV, lse, slopes, d2, bi, h,
                                n, maxT, nh, hs, s, block);
                    }
                }
                for (int i = 0; i < want.length; i++) assertEquals(want[i], d2[i], 2e-5 * maxAbs);
            }
        }
    }
}
