package dev.qlora4j.runtime.ops;

/**
 * GELU, tanh approximation ({@code gelu_new} in GPT-2, {@code bloom_gelu_forward} in BLOOM):
 * {@code 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))}.
 */
public final class Gelu {
    private Gelu() {
    }

    static final float SQRT_2_OVER_PI = 0.7978845608028654f;

    /** @param x (n) at xOff; y (n) at yOff, may alias x. */
    public static void forward(float[] x, int xOff, float[] y, int yOff, int n) {
        for (int i = 0; i < n; i++) {
            float v = x[xOff + i];
            float u = SQRT_2_OVER_PI * (v + 0.044715f * v * v * v);
            y[yOff + i] = 0.5f * v * (1f + (float) Math.tanh(u));
        }
    }
    /**
     * Backward of {@link #forward}: {@code dx = dy · (0.5·(1 + tanh u) + 0.5·x·(1 - tanh²u)·√(2/π)·(1 + 3·0.044715·x²))}.
     *
     * @param x  (n) at xOff, the forward input
     * @param dy (n) at dyOff, gradient w.r.t. the output
     * @param dx (n) at dxOff, overwritten; may alias dy at the same offset
     */
    public static void backward(float[] x, int xOff, float[] dy, int dyOff, float[] dx, int dxOff, int n) {
        for (int i = 0; i < n; i++) {
            float v = x[xOff + i];
            float u = SQRT_2_OVER_PI * (v + 0.044715f * v * v * v);
            float th = (float) Math.tanh(u);
            float du = SQRT_2_OVER_PI * (1f + 3f * 0.044715f * v * v);
            float grad = 0.5f * (1f + th) + 0.5f * v * (1f - th * th) * du;
            dx[dxOff + i] = dy[dyOff + i] * grad;
        }
    }
}
