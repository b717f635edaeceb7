package dev.qlora4j.lora.full;

import dev.qlora4j.quant.kernel.Kernels;
import dev.qlora4j.runtime.model.LinearHook;

/**
 * The weight and bias gradients of a trainable linear {@code y = x·Wᵀ + b}, plugged in through the model's hook
 * point: forward adds nothing; backward accumulates {@code dW (out, in) += dyᵀ·x} with
 * {@link Kernels#matmulWeightGrad} and {@code db (out) += Σ_rows dy} into one flat gradient buffer. The input
 * gradient {@code dx = dy·W} is the linear's own ({@code Linear#backward}).
 */
final class WeightGradHook implements LinearHook {
    private final Kernels kernels;
    private final float[] grads; // flat gradient buffer
    private final int wOff;      // (out, in) dW at wOff
    private final int bOff;      // (out) db at bOff, or -1 without bias
    private final int out, in;

    WeightGradHook(Kernels kernels, float[] grads, int wOff, int bOff, int out, int in) {
        this.kernels = kernels;
        this.grads = grads;
        this.wOff = wOff;
        this.bOff = bOff;
        this.out = out;
        this.in = in;
    }

    @Override
    public void forward(float[] x, int xOff, float[] y, int yOff, int m) {
    }

    @Override
    public void backward(float[] x, int xOff, float[] dy, int dyOff, float[] dx, int dxOff, int m) {
        kernels.matmulWeightGrad(dy, dyOff, x, xOff, m, out, in, grads, wOff);
        if (bOff >= 0) {
            for (int i = 0; i < m; i++) {
                int r = dyOff + i * out; // row i of dy (M, out)
                for (int j = 0; j < out; j++) grads[bOff + j] += dy[r + j];
            }
        }
    }
}
