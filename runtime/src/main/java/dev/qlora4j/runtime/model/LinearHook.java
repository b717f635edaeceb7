package dev.qlora4j.runtime.model;

/**
 * The hook point through which adapters (LoRA, IA3, ...) plug into a {@link Linear} without the model knowing them,
 * the way PEFT's tuners wrap modules. Hooks run in order after the base projection.
 */
public interface LinearHook {

    /**
     * Adds the hook's contribution to the output (or rescales it).
     *
     * @param x (M, K) the linear's input
     * @param y (M, N) the output so far (base + earlier hooks)
     */
    void forward(float[] x, int xOff, float[] y, int yOff, int m);

    /**
     * Accumulates the hook's own parameter gradients and adds its part of the input gradient.
     *
     * @param x  (M, K) the input saved from forward
     * @param dy (M, N) gradient of the loss w.r.t. the output
     * @param dx (M, K) gradient w.r.t. the input, accumulated into
     */
    void backward(float[] x, int xOff, float[] dy, int dyOff, float[] dx, int dxOff, int m);
}
