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
}
