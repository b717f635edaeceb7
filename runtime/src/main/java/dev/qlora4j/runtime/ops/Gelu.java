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
}
