package dev.qlora4j.runtime.model;

import dev.qlora4j.quant.kernel.Kernels;
import dev.qlora4j.quant.weight.StoredWeight;

import java.util.Arrays;

/**
 * A frozen base linear {@code y = x·Wᵀ + b} ({@code W [out, in]} stored dense or quantized, off-heap) plus an
 * ordered list of {@link LinearHook}s. {@code path} is the module path PEFT would use, e.g. {@code h.0.attn.c_attn}.
 */
public final class Linear {
    private final String path;
    private final StoredWeight weight;
    private final float[] bias; // (out) or null
    private LinearHook[] hooks = new LinearHook[0];

    public Linear(String path, StoredWeight weight, float[] bias) {
        if (bias != null && bias.length != weight.rows()) {
            throw new IllegalArgumentException(path + ": bias has " + bias.length + " entries, weight has "
                    + weight.rows() + " rows");
        }
        this.path = path;
        this.weight = weight;
        this.bias = bias;
    }

    public String path() {
        return path;
    }

    public StoredWeight weight() {
        return weight;
    }

    public float[] bias() {
        return bias;
    }

    public int in() {
        return weight.cols();
    }

    public int out() {
        return weight.rows();
    }

    public void addHook(LinearHook hook) {
        hooks = Arrays.copyOf(hooks, hooks.length + 1);
        hooks[hooks.length - 1] = hook;
    }

    public void removeHook(LinearHook hook) {
        hooks = Arrays.stream(hooks).filter(h -> h != hook).toArray(LinearHook[]::new);
    }

    public LinearHook[] hooks() {
        return hooks.clone();
    }

    /** @param x (M, in) at xOff; y (M, out) at yOff, overwritten. */
    public void forward(Kernels k, float[] x, int xOff, float[] y, int yOff, int m) {
        k.matmul(x, xOff, weight, bias, y, yOff, m);
        for (LinearHook h : hooks) h.forward(x, xOff, y, yOff, m);
    }

    /**
     * @param x  (M, in) saved input
     * @param dy (M, out)
     * @param dx (M, in), overwritten (accumulate=false) or added to
     */
    public void backward(Kernels k, float[] x, int xOff, float[] dy, int dyOff, float[] dx, int dxOff, int m,
                         boolean accumulate) {
        k.matmulBackwardInput(dy, dyOff, weight, dx, dxOff, m, accumulate);
        for (LinearHook h : hooks) h.backward(x, xOff, dy, dyOff, dx, dxOff, m);
    }
}
