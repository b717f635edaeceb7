package dev.qlora4j.runtime.ops;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/** LayerNorm and GELU backward against central differences of float64 reference forwards. */
class LayerNormBackwardTest {
    static final double H = 1e-6;

    /** float64 reference of {@code Σ LayerNorm(x)·dy}. */
    static double lnLoss(double[] x, double[] g, double[] be, double eps, double[] dy, int n, int c) {
        double loss = 0;
        for (int r = 0; r < n; r++) {
            double m = 0, v = 0;
            for (int i = 0; i < c; i++) m += x[r * c + i];
            m /= c;
            for (int i = 0; i < c; i++) v += (x[r * c + i] - m) * (x[r * c + i] - m);
            v /= c;
            double s = 1 / Math.sqrt(v + eps);
            for (int i = 0; i < c; i++) loss += ((x[r * c + i] - m) * s * g[i] + be[i]) * dy[r * c + i];
        }
        return loss;
    }

    static double fd(double[] p, int i, java.util.function.DoubleSupplier f) {
        double keep = p[i];
        p[i] = keep + H;
        double up = f.getAsDouble();
        p[i] = keep - H;
        double down = f.getAsDouble();
        p[i] = keep;
        return (up - down) / (2 * H);
    }

    @Test
    void layerNormMatchesFiniteDifferences() {
        for (int[] shape : new int[][]{{5, 7}, {3, 64}, {1, 1}, {4, 3}}) {
            int n = shape[0], c = shape[1];
            Random r = new Random(11 + n * 31L + c);
            float[] x = GradCheck.randn(r, n * c, 1.5), gamma = GradCheck.randn(r, c, 1), beta = GradCheck.randn(r, c, 1);
            for (int i = 0; i < n * c; i++) x[i] += 0.7f; // a non-zero mean
            float[] dy = GradCheck.randn(r, n * c, 1);
            float eps = 1e-5f;
            float[] y = new float[n * c], mean = new float[n], rstd = new float[n];
            LayerNorm.forward(x, 0, gamma, beta, eps, y, 0, mean, rstd, 0, n, c);
            float[] dx = new float[n * c], dg = new float[c], db = new float[c];
            LayerNorm.backward(dy, 0, x, 0, gamma, mean, rstd, 0, dx, 0, dg, db, n, c, false);

            double[] xd = GradCheck.toDouble(x), gd = GradCheck.toDouble(gamma), bd = GradCheck.toDouble(beta),
                    dyd = GradCheck.toDouble(dy);
            java.util.function.DoubleSupplier f = () -> lnLoss(xd, gd, bd, eps, dyd, n, c);
            var ex = new GradCheck.Errors("layernorm dx N=" + n + " C=" + c, 1e-3);
            for (int i = 0; i < n * c; i++) ex.add("x[" + i + "]", fd(xd, i, f), dx[i]);
            var eg = new GradCheck.Errors("layernorm dgamma N=" + n + " C=" + c, 1e-3);
            var eb = new GradCheck.Errors("layernorm dbeta N=" + n + " C=" + c, 1e-3);
            for (int i = 0; i < c; i++) {
                eg.add("gamma[" + i + "]", fd(gd, i, f), dg[i]);
                eb.add("beta[" + i + "]", fd(bd, i, f), db[i]);
            }
            if (c > 1) ex.check(1e-3); // C = 1: dx is exactly 0 (x̂ ≡ 0)
            eb.check(1e-4);
            if (c > 1) eg.check(1e-3);

            // accumulate adds; null dγ/dβ are allowed; dx may alias dy
            float[] acc = GradCheck.randn(r, n * c, 1), want = acc.clone();
            for (int i = 0; i < n * c; i++) want[i] += dx[i];
            LayerNorm.backward(dy, 0, x, 0, gamma, mean, rstd, 0, acc, 0, null, null, n, c, true);
            assertArrayEquals(want, acc, 1e-5f);
            float[] alias = dy.clone();
            LayerNorm.backward(alias, 0, x, 0, gamma, mean, rstd, 0, alias, 0, null, null, n, c, false);
            assertArrayEquals(dx, alias, 0f);
        }
    }

    static double gelu(double v) {
        return 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
    }

    @Test
    void geluMatchesFiniteDifferences() {
        int n = 241;
        float[] x = new float[n], dy = new float[n];
        Random r = new Random(5);
        for (int i = 0; i < n; i++) {
            x[i] = -6f + 12f * i / (n - 1) + (float) (r.nextGaussian() * 1e-3);
            dy[i] = (float) (1 + r.nextGaussian() * 0.1);
        }
        float[] dx = new float[n];
        Gelu.backward(x, 0, dy, 0, dx, 0, n);
        // 1 + tanh(u) cancels for x << 0 in fp32 (in forward too): absolute error ~1e-7 there, so floor at 1% of max
        var e = new GradCheck.Errors("gelu dx on [-6, 6]", 1e-2);
        for (int i = 0; i < n; i++) {
            double v = x[i];
            double d = (gelu(v + H) - gelu(v - H)) / (2 * H) * dy[i];
            e.add("x=" + v, d, dx[i]);
        }
        e.check(1e-4);
        float[] alias = dy.clone();
        Gelu.backward(x, 0, alias, 0, alias, 0, n);
        assertArrayEquals(dx, alias, 0f);
    }
}
