package dev.qlora4j.quant.kernel;

import dev.qlora4j.quant.weight.StoredWeight;

/**
 * Compute kernels over a stored weight {@code W [N = rows (out), K = cols (in)]} (dense or quantized, off-heap).
 * Activations are fp32 heap arrays, row-major, addressed with an offset so callers can carve one workspace.
 * Implementations: {@link ScalarKernels} (the reference) and {@code PanamaKernels} (Vector API); choose with
 * {@link KernelProvider#get()}.
 */
public interface Kernels {

    /** Short name: "scalar", "panama", "cuda". */
    String name();

    /**
     * Forward linear: {@code y[M, N] = x[M, K] · Wᵀ (+ bias[N])}. {@code y} is overwritten.
     *
     * @param x    {@code (M, K)} at {@code xOff}
     * @param bias {@code (N)} or {@code null}
     * @param y    {@code (M, N)} at {@code yOff}
     */
    void matmul(float[] x, int xOff, StoredWeight w, float[] bias, float[] y, int yOff, int m);

    /**
     * Input gradient of the linear: {@code dx[M, K] (+)= dy[M, N] · W}. Frozen weights get no {@code dW}.
     *
     * @param dy         {@code (M, N)} at {@code dyOff}
     * @param dx         {@code (M, K)} at {@code dxOff}
     * @param accumulate add into {@code dx} when true, overwrite when false
     */
    void matmulBackwardInput(float[] dy, int dyOff, StoredWeight w, float[] dx, int dxOff, int m, boolean accumulate);

    /**
     * Weight gradient of the linear (full fine-tuning): {@code dw[N, K] += dyᵀ · x}, i.e.
     * {@code dw[j][c] += Σ_i dy[i][j] · x[i][c]}. Always accumulates (zero {@code dw} first for a fresh gradient).
     *
     * @param dy {@code (M, N)} at {@code dyOff}, the gradient w.r.t. the linear's output
     * @param x  {@code (M, K)} at {@code xOff}, the linear's input saved from forward
     * @param dw {@code (N, K)} at {@code dwOff}, row-major like the weight {@code W [out, in]}
     */
    void matmulWeightGrad(float[] dy, int dyOff, float[] x, int xOff, int m, int n, int k, float[] dw, int dwOff);

    /** Dequantizes rows {@code [row0, row0 + nrows)} of {@code w} into {@code dst (nrows, K)} at {@code dstOff}. */
    void dequantizeRows(StoredWeight w, int row0, int nrows, float[] dst, int dstOff);

    /**
     * Attention scores of one query against {@code len} keys: {@code out[j] = scale · q·k_j}, with
     * {@code q (n)} at qOff and key j at {@code k[kOff + j·stride .. + n)}.
     */
    default void dotRows(float[] q, int qOff, float[] k, int kOff, int stride, int n, int len, float scale,
                         float[] out, int outOff) {
        AttentionKernels.dotRows(q, qOff, k, kOff, stride, n, len, scale, out, outOff);
    }

    /**
     * Probability-weighted sum of {@code len} value rows: {@code y (n) (+)= Σ_j p[j] · v_j}, with value row j at
     * {@code v[vOff + j·stride .. + n)}.
     */
    default void weightedRowSum(float[] p, int pOff, float[] v, int vOff, int stride, int n, int len, float[] y,
                                int yOff, boolean accumulate) {
        AttentionKernels.weightedRowSum(p, pOff, v, vOff, stride, n, len, y, yOff, accumulate);
    }

    /** Largest of {@code a[off .. off + n)} (n ≥ 1): the shift of a softmax row. */
    default float rowMax(float[] a, int off, int n) {
        return SoftmaxKernels.max(a, off, n);
    }

    /**
     * The exponentials of a softmax row in place: {@code a[off + j] = exp(a[off + j] - shift)} for {@code j < n}
     * (fp32 exp within 1e-7 relative of {@link Math#exp}); returns their sum (in double, or float blocks added in
     * double).
     */
    default double expInPlace(float[] a, int off, int n, float shift) {
        return SoftmaxKernels.expInPlace(a, off, n, shift);
    }
}
