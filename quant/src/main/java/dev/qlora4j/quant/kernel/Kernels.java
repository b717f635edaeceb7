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

    /**
     * Whether {@link #dotRowsT4} and {@link #weightedRowSums4} have a blocked fast path for head size {@code n}; when
     * they do not, prompt processing keeps the per-query {@link #dotRows} / {@link #weightedRowSum}. The Panama kernels
     * have one at 512 bits ({@code n % 16 == 0}) and at 256 bits ({@code n % 8 == 0}).
     */
    default boolean blockedAttention(int n) {
        return false;
    }

    /**
     * Prompt-processing scores of four queries against keys held transposed ({@code kt (n, ktStride)}, key j in
     * column j): {@code out[o_i + j] = scale · Σ_{d < n} q[q_i + d] · kt[ktOff + d·ktStride + j]}, {@code i < 4},
     * {@code j < len}. A query may be repeated (same {@code q_i}, {@code o_i}) when fewer than four are left.
     */
    default void dotRowsT4(float[] q, int q0, int q1, int q2, int q3, float[] kt, int ktOff, int ktStride, int n,
                           int len, float scale, float[] out, int o0, int o1, int o2, int o3) {
        AttentionKernels.dotRowsT4(q, q0, q1, q2, q3, kt, ktOff, ktStride, n, len, scale, out, o0, o1, o2, o3);
    }

    /**
     * Four probability-weighted sums over the same {@code len} value rows:
     * {@code y[y_i + d] = Σ_j p[p_i + j] · v[vOff + j·stride + d]}, {@code i < 4}, {@code d < n}; rows may repeat.
     */
    default void weightedRowSums4(float[] p, int p0, int p1, int p2, int p3, float[] v, int vOff, int stride, int n,
                                  int len, float[] y, int y0, int y1, int y2, int y3) {
        AttentionKernels.weightedRowSums4(p, p0, p1, p2, p3, v, vOff, stride, n, len, y, y0, y1, y2, y3);
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
