package dev.qlora4j.runtime.ops;

import dev.qlora4j.quant.kernel.KernelPool;
import dev.qlora4j.quant.kernel.Kernels;
import dev.qlora4j.quant.kernel.ScalarKernels;

/**
 * Backward of causal multi-head attention ({@link Attention#forwardHead} with {@code pos0 = 0}), fp32. The
 * probabilities are recomputed from the saved log-sum-exp, {@code p_tj = exp(s_tj - lse_t)}, one row at a time, so no
 * (T, T) matrix is stored. With {@code dp_tj = dout_t · v_j} and {@code D_t = Σ_j p_tj·dp_tj}:
 * {@code ds_tj = p_tj·(dp_tj - D_t)}, {@code dq_t = scale·Σ_j ds_tj·k_j}, {@code dk_j = scale·Σ_t ds_tj·q_t},
 * {@code dv_j = Σ_t p_tj·dout_t}. ALiBi's bias {@code slope·j} is a constant: it only enters the recomputed scores.
 *
 * <p>Scores are recomputed with the same {@link Kernels#dotRows} the forward used, so they match it bit for bit.
 *
 * <p>One instance per backward workspace: runs every (sequence, head) pair as one tile on the kernel pool, each
 * thread with its own two score rows; re-armed every call, nothing allocated per step. A tile writes only its own
 * head's q, k, v columns of its own sequence, so tiles never race.
 */
public final class AttentionBackward implements KernelPool.TileJob {
    private static final Kernels SCALAR = new ScalarKernels();
    private final float[][] scratch; // threads × (2·maxContext): p row | dp row
    private final int maxContext;
    private float[] datt, qkv, cacheK, cacheV, lse, slopes, dqkv;
    private QkvLayout layout;
    private Kernels kernels;
    private int n, maxT, nh, hs;

    public AttentionBackward(int threads, int maxContext) {
        this.maxContext = maxContext;
        this.scratch = new float[threads][2 * maxContext];
    }

    /** As below, on the scalar attention kernels. */
    public void run(KernelPool pool, float[] datt, float[] qkv, QkvLayout layout, float[] cacheK, float[] cacheV,
                    float[] lse, float[] slopes, float[] dqkv, int b, int n, int maxT, int nh, int hs) {
        run(pool, SCALAR, datt, qkv, layout, cacheK, cacheV, lse, slopes, dqkv, b, n, maxT, nh, hs);
    }

    /**
     * @param kernels the kernels the forward ran attention on (for {@code dotRows} / {@code weightedRowSum})
     * @param datt   (B, n, C) gradient w.r.t. the attention output (before the output projection)
     * @param qkv    (B, n, 3C) the fused QKV projection saved by forward (queries are read from here)
     * @param cacheK (B, NH, maxT, HS) keys of positions {@code [0, n)} written by the same forward
     * @param cacheV (B, NH, maxT, HS) values
     * @param lse    (B, NH, n) log-sum-exp saved by forward
     * @param slopes (NH) ALiBi slopes or null
     * @param dqkv   (B, n, 3C) overwritten with the gradient w.r.t. qkv
     */
    public void run(KernelPool pool, Kernels kernels, float[] datt, float[] qkv, QkvLayout layout, float[] cacheK,
                    float[] cacheV, float[] lse, float[] slopes, float[] dqkv, int b, int n, int maxT, int nh, int hs) {
        if (n > maxContext) throw new IllegalArgumentException(n + " positions exceed the scratch's " + maxContext);
        this.kernels = kernels;
        this.datt = datt;
        this.qkv = qkv;
        this.layout = layout;
        this.cacheK = cacheK;
        this.cacheV = cacheV;
        this.lse = lse;
        this.slopes = slopes;
        this.dqkv = dqkv;
        this.n = n;
        this.maxT = maxT;
        this.nh = nh;
        this.hs = hs;
        if (b * nh == 1 || n < 16) { // too small to be worth waking the pool
            for (int tile = 0; tile < b * nh; tile++) run(tile, 0);
        } else {
            pool.run(b * nh, this);
        }
        this.datt = this.qkv = this.cacheK = this.cacheV = this.lse = this.dqkv = null;
    }

    @Override
    public void run(int tile, int slot) {
        backwardHead(kernels, datt, qkv, layout, cacheK, cacheV, lse, slopes, dqkv, tile / nh, tile % nh, n, maxT, nh, hs,
                scratch[slot], 0, scratch[slot], maxContext);
    }

    /**
     * Backward for sequence {@code bi}, head {@code h}, all n queries; overwrites head h's q, k and v columns of
     * sequence bi in dqkv.
     *
     * @param p  scratch (≥ n) at pOff: scores, then probabilities
     * @param dp scratch (≥ n) at dpOff: dp, then ds
     */
    public static void backwardHead(Kernels kern, float[] datt, float[] qkv, QkvLayout layout, float[] cacheK,
                                    float[] cacheV, float[] lse, float[] slopes, float[] dqkv, int bi, int h, int n,
                                    int maxT, int nh, int hs, float[] p, int pOff, float[] dp, int dpOff) {
        int c = nh * hs, c3 = 3 * c;
        float scale = (float) (1.0 / Math.sqrt(hs));
        int kvBase = (bi * nh + h) * maxT * hs; // (maxT, HS) of this (sequence, head)
        float slope = slopes == null ? 0f : slopes[h];
        int qo = layout.q(h, hs, c), ko = layout.k(h, hs, c), vo = layout.v(h, hs, c);
        for (int t = 0; t < n; t++) { // dk, dv accumulate over queries; dq is written whole below
            int row = (bi * n + t) * c3;
            java.util.Arrays.fill(dqkv, row + ko, row + ko + hs, 0f);
            java.util.Arrays.fill(dqkv, row + vo, row + vo + hs, 0f);
        }
        for (int t = 0; t < n; t++) {
            int q = (bi * n + t) * c3 + qo;          // q_t in qkv, dq_t in dqkv
            int o = (bi * n + t) * c + h * hs;        // dout_t in datt (B, n, C)
            float l = lse[(bi * nh + h) * n + t];
            int len = t + 1;
            kern.dotRows(qkv, q, cacheK, kvBase, hs, hs, len, scale, p, pOff);  // p = scale·q·k_j, as forward
            kern.dotRows(datt, o, cacheV, kvBase, hs, hs, len, 1f, dp, dpOff); // dp_j = dout·v_j
            float dsum = 0f; // D_t
            for (int j = 0; j < len; j++) {
                float pj = (float) Math.exp(p[pOff + j] + slope * j - l);
                p[pOff + j] = pj;
                dsum += pj * dp[dpOff + j];
            }
            for (int j = 0; j < len; j++) {
                float pj = p[pOff + j];
                float ds = pj * (dp[dpOff + j] - dsum) * scale; // scale folded in: d(q·k)
                dp[dpOff + j] = ds;
                int dk = (bi * n + j) * c3 + ko, dv = (bi * n + j) * c3 + vo;
                for (int d = 0; d < hs; d++) {
                    dqkv[dk + d] += ds * qkv[q + d];
                    dqkv[dv + d] += pj * datt[o + d];
                }
            }
            kern.weightedRowSum(dp, dpOff, cacheK, kvBase, hs, hs, len, dqkv, q, false); // dq_t = Σ_j ds_j·k_j
        }
    }
}
