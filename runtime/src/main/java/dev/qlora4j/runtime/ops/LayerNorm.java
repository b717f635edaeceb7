package dev.qlora4j.runtime.ops;

/**
 * LayerNorm over the last dimension C, as torch.nn.LayerNorm: {@code y = (x - mean) / sqrt(var + eps) · γ + β} with
 * the biased variance. Forward saves mean and rstd per row for the backward pass.
 */
public final class LayerNorm {
    private LayerNorm() {
    }

    /**
     * @param x    (N, C) at xOff
     * @param y    (N, C) at yOff (may alias x only when xOff == yOff)
     * @param mean (N) or null
     * @param rstd (N) or null
     */
    public static void forward(float[] x, int xOff, float[] gamma, float[] beta, float eps, float[] y, int yOff,
                               float[] mean, float[] rstd, int statOff, int n, int c) {
        for (int r = 0; r < n; r++) {
            int xo = xOff + r * c, yo = yOff + r * c;
            float m = 0f;
            for (int i = 0; i < c; i++) m += x[xo + i];
            m /= c;
            float v = 0f;
            for (int i = 0; i < c; i++) {
                float d = x[xo + i] - m;
                v += d * d;
            }
            v /= c;
            float s = (float) (1.0 / Math.sqrt(v + eps));
            for (int i = 0; i < c; i++) y[yo + i] = (x[xo + i] - m) * s * gamma[i] + beta[i];
            if (mean != null) mean[statOff + r] = m;
            if (rstd != null) rstd[statOff + r] = s;
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
        for (int r = 0; r < n; r++) {
            int dyo = dyOff + r * c, xo = xOff + r * c, dxo = dxOff + r * c;
            float m = mean[statOff + r], s = rstd[statOff + r];
            float gMean = 0f, gxMean = 0f; // mean(g), mean(g·x̂)
            for (int i = 0; i < c; i++) {
                float xhat = (x[xo + i] - m) * s;
                float g = dy[dyo + i] * gamma[i];
                gMean += g;
                gxMean += g * xhat;
            }
            gMean /= c;
            gxMean /= c;
            for (int i = 0; i < c; i++) {
                float xhat = (x[xo + i] - m) * s;
                float d = dy[dyo + i];
                if (dgamma != null) dgamma[i] += d * xhat;
                if (dbeta != null) dbeta[i] += d;
                float v = (d * gamma[i] - gMean - xhat * gxMean) * s;
                dx[dxo + i] = accumulate ? dx[dxo + i] + v : v;
            }
        }
    }
}
