package dev.qlora4j.runtime.ops;

import dev.qlora4j.quant.kernel.KernelPool;

/**
 * LayerNorm over the last dimension C, as torch.nn.LayerNorm: {@code y = (x - mean) / sqrt(var + eps) · γ + β} with
 * the biased variance. Forward saves mean and rstd per row for the backward pass.
 *
 * <p>Row reductions use eight fixed-order partial sums ({@link #sum}); elementwise passes are plain loops C2
 * vectorizes. Large calls run on the {@link KernelPool}: forward and dx in blocks of {@link #ROWS} rows, dγ/dβ in
 * blocks of {@link #COLS} columns (each column summed over the rows in order). No value depends on the blocking, so
 * results are the same on any number of threads.
 */
public final class LayerNorm {
    private LayerNorm() {
    }

    /** Rows per pool tile (forward, dx). */
    static final int ROWS = 16;
    /** Columns per pool tile (dγ, dβ). */
    static final int COLS = 64;

    /**
     * @param x    (N, C) at xOff
     * @param y    (N, C) at yOff (may alias x only when xOff == yOff)
     * @param mean (N) or null
     * @param rstd (N) or null
     */
    public static void forward(float[] x, int xOff, float[] gamma, float[] beta, float eps, float[] y, int yOff,
                               float[] mean, float[] rstd, int statOff, int n, int c) {
        if (!Parallel.worthIt((long) n * c) || n < 2 * ROWS) {
            forwardRows(x, xOff, gamma, beta, eps, y, yOff, mean, rstd, statOff, 0, n, c);
            return;
        }
        Job job = Job.LOCAL.get();
        job.mode = Job.FORWARD;
        job.x = x;
        job.xOff = xOff;
        job.gamma = gamma;
        job.beta = beta;
        job.eps = eps;
        job.out = y;
        job.outOff = yOff;
        job.mean = mean;
        job.rstd = rstd;
        job.statOff = statOff;
        job.n = n;
        job.c = c;
        try {
            KernelPool.shared().run((n + ROWS - 1) / ROWS, job);
        } finally {
            job.clear();
        }
    }

    /**
     * Backward of {@link #forward} (llm.c's layernorm_backward): with {@code x̂ = (x - mean)·rstd} and
     * {@code g = dy·γ}, {@code dx = rstd·(g - mean(g) - x̂·mean(g·x̂))}, {@code dγ += Σ_rows dy·x̂},
     * {@code dβ += Σ_rows dy}.
     *
     * @param dy         (N, C) at dyOff, gradient w.r.t. the output
     * @param x          (N, C) at xOff, the forward input
     * @param mean       (N) at statOff, saved by forward
     * @param rstd       (N) at statOff, saved by forward
     * @param dx         (N, C) at dxOff, overwritten (accumulate = false) or added to; may alias dy at the same offset
     * @param dgamma     (C) accumulated into, or null (frozen γ)
     * @param dbeta      (C) accumulated into, or null (frozen β)
     */
    public static void backward(float[] dy, int dyOff, float[] x, int xOff, float[] gamma, float[] mean, float[] rstd,
                                int statOff, float[] dx, int dxOff, float[] dgamma, float[] dbeta, int n, int c,
                                boolean accumulate) {
        boolean params = dgamma != null || dbeta != null;
        if (!Parallel.worthIt((long) n * c) || n < 2 * ROWS) {
            // dγ/dβ first: they read dy, which dx may overwrite
            if (params) paramGradCols(dy, dyOff, x, xOff, mean, rstd, statOff, dgamma, dbeta, 0, c, n, c);
            backwardRows(dy, dyOff, x, xOff, gamma, mean, rstd, statOff, dx, dxOff, 0, n, c, accumulate);
            return;
        }
        Job job = Job.LOCAL.get();
        job.dy = dy;
        job.dyOff = dyOff;
        job.x = x;
        job.xOff = xOff;
        job.gamma = gamma;
        job.mean = mean;
        job.rstd = rstd;
        job.statOff = statOff;
        job.out = dx;
        job.outOff = dxOff;
        job.dgamma = dgamma;
        job.dbeta = dbeta;
        job.n = n;
        job.c = c;
        job.accumulate = accumulate;
        try {
            if (params) { // dγ/dβ first: they read dy, which dx may overwrite
                job.mode = Job.PARAM_GRADS;
                KernelPool.shared().run((c + COLS - 1) / COLS, job);
            }
            job.mode = Job.BACKWARD;
            KernelPool.shared().run((n + ROWS - 1) / ROWS, job);
        } finally {
            job.clear();
        }
    }

    /** Fixed-order sum of {@code a[off, off + n)}: eight interleaved partial sums, then a fixed tree. */
    static float sum(float[] a, int off, int n) {
        float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f, s4 = 0f, s5 = 0f, s6 = 0f, s7 = 0f;
        int i = 0;
        for (; i + 8 <= n; i += 8) {
            int o = off + i;
            s0 += a[o];
            s1 += a[o + 1];
            s2 += a[o + 2];
            s3 += a[o + 3];
            s4 += a[o + 4];
            s5 += a[o + 5];
            s6 += a[o + 6];
            s7 += a[o + 7];
        }
        float s = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
        for (; i < n; i++) s += a[off + i];
        return s;
    }

    /** Fixed-order {@code Σ (a[off + i] - m)²}, summed as {@link #sum}. */
    static float sumSqDev(float[] a, int off, int n, float m) {
        float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f, s4 = 0f, s5 = 0f, s6 = 0f, s7 = 0f;
        int i = 0;
        for (; i + 8 <= n; i += 8) {
            int o = off + i;
            float d0 = a[o] - m, d1 = a[o + 1] - m, d2 = a[o + 2] - m, d3 = a[o + 3] - m;
            float d4 = a[o + 4] - m, d5 = a[o + 5] - m, d6 = a[o + 6] - m, d7 = a[o + 7] - m;
            s0 += d0 * d0;
            s1 += d1 * d1;
            s2 += d2 * d2;
            s3 += d3 * d3;
            s4 += d4 * d4;
            s5 += d5 * d5;
            s6 += d6 * d6;
            s7 += d7 * d7;
        }
        float s = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
        for (; i < n; i++) {
            float d = a[off + i] - m;
            s += d * d;
        }
        return s;
    }

    private static void forwardRows(float[] x, int xOff, float[] gamma, float[] beta, float eps, float[] y, int yOff,
                                    float[] mean, float[] rstd, int statOff, int r0, int r1, int c) {
        for (int r = r0; r < r1; r++) {
            int xo = xOff + r * c, yo = yOff + r * c;
            float m = sum(x, xo, c) / c;
            float v = sumSqDev(x, xo, c, m) / c;
            float s = (float) (1.0 / Math.sqrt(v + eps));
            for (int i = 0; i < c; i++) y[yo + i] = (x[xo + i] - m) * s * gamma[i] + beta[i];
            if (mean != null) mean[statOff + r] = m;
            if (rstd != null) rstd[statOff + r] = s;
        }
    }

    /** dx of rows {@code [r0, r1)}. */
    private static void backwardRows(float[] dy, int dyOff, float[] x, int xOff, float[] gamma, float[] mean,
                                     float[] rstd, int statOff, float[] dx, int dxOff, int r0, int r1, int c,
                                     boolean accumulate) {
        for (int r = r0; r < r1; r++) {
            int dyo = dyOff + r * c, xo = xOff + r * c, dxo = dxOff + r * c;
            float m = mean[statOff + r], s = rstd[statOff + r];
            // mean(g), mean(g·x̂) with g = dy·γ: four fixed-order partial sums each
            float g0 = 0f, g1 = 0f, g2 = 0f, g3 = 0f, h0 = 0f, h1 = 0f, h2 = 0f, h3 = 0f;
            int i = 0;
            for (; i + 4 <= c; i += 4) {
                float ga = dy[dyo + i] * gamma[i], gb = dy[dyo + i + 1] * gamma[i + 1];
                float gc = dy[dyo + i + 2] * gamma[i + 2], gd = dy[dyo + i + 3] * gamma[i + 3];
                g0 += ga;
                g1 += gb;
                g2 += gc;
                g3 += gd;
                h0 += ga * ((x[xo + i] - m) * s);
                h1 += gb * ((x[xo + i + 1] - m) * s);
                h2 += gc * ((x[xo + i + 2] - m) * s);
                h3 += gd * ((x[xo + i + 3] - m) * s);
            }
            float gMean = (g0 + g1) + (g2 + g3), gxMean = (h0 + h1) + (h2 + h3);
            for (; i < c; i++) {
                float g = dy[dyo + i] * gamma[i];
                gMean += g;
                gxMean += g * ((x[xo + i] - m) * s);
            }
            gMean /= c;
            gxMean /= c;
            if (accumulate) {
                for (int j = 0; j < c; j++) {
                    dx[dxo + j] += (dy[dyo + j] * gamma[j] - gMean - (x[xo + j] - m) * s * gxMean) * s;
                }
            } else {
                for (int j = 0; j < c; j++) {
                    dx[dxo + j] = (dy[dyo + j] * gamma[j] - gMean - (x[xo + j] - m) * s * gxMean) * s;
                }
            }
        }
    }

    /** dγ, dβ of columns {@code [c0, c1)}, each summed over all n rows in order. */
    private static void paramGradCols(float[] dy, int dyOff, float[] x, int xOff, float[] mean, float[] rstd,
                                      int statOff, float[] dgamma, float[] dbeta, int c0, int c1, int n, int c) {
        for (int r = 0; r < n; r++) {
            int dyo = dyOff + r * c, xo = xOff + r * c;
            float m = mean[statOff + r], s = rstd[statOff + r];
            if (dgamma != null) {
                for (int i = c0; i < c1; i++) dgamma[i] += dy[dyo + i] * ((x[xo + i] - m) * s);
            }
            if (dbeta != null) {
                for (int i = c0; i < c1; i++) dbeta[i] += dy[dyo + i];
            }
        }
    }

    /** The pool tiles of one call; one per calling thread, re-armed per call, so nothing is allocated per step. */
    private static final class Job implements KernelPool.TileJob {
        static final ThreadLocal<Job> LOCAL = ThreadLocal.withInitial(Job::new);
        static final int FORWARD = 0, BACKWARD = 1, PARAM_GRADS = 2;
        int mode;
        float[] x, dy, gamma, beta, mean, rstd, out, dgamma, dbeta;
        int xOff, dyOff, outOff, statOff, n, c;
        float eps;
        boolean accumulate;

        void clear() {
            x = dy = gamma = beta = mean = rstd = out = dgamma = dbeta = null;
        }

        @Override
        public void run(int tile, int slot) {
            switch (mode) {
                case FORWARD -> forwardRows(x, xOff, gamma, beta, eps, out, outOff, mean, rstd, statOff,
                        tile * ROWS, Math.min(n, (tile + 1) * ROWS), c);
                case BACKWARD -> backwardRows(dy, dyOff, x, xOff, gamma, mean, rstd, statOff, out, outOff,
                        tile * ROWS, Math.min(n, (tile + 1) * ROWS), c, accumulate);
                default -> paramGradCols(dy, dyOff, x, xOff, mean, rstd, statOff, dgamma, dbeta,
                        tile * COLS, Math.min(c, (tile + 1) * COLS), n, c);
            }
        }
    }
}
