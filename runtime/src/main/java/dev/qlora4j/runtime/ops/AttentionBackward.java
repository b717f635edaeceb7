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
 * <p>Every inner product and weighted sum runs on {@link Kernels#dotRows} / {@link Kernels#weightedRowSum}: queries
 * are taken in blocks of {@link #BLOCK}; each query t gives its rows p_t·, dp_t· (dotRows), ds_t· and
 * {@code dq_t = Σ_j ds_tj·k_j} (weightedRowSum), and stores p_t· and ds_t· transposed into (key, query-in-block)
 * scratch; then every key j seen so far gets {@code dk_j += Σ_t ds_tj·q_t} and {@code dv_j += Σ_t p_tj·dout_t} over
 * the block's queries {@code t ≥ j} (weightedRowSum over rows of qkv / datt). The first block that reaches key j
 * overwrites its dk, dv.
 *
 * <p>One instance per backward workspace: runs every (sequence, head) pair as one tile on the kernel pool, each
 * thread with its own scratch ({@link #scratchSize}); re-armed every call, nothing allocated per step. A tile writes
 * only its own head's q, k, v columns of its own sequence, so tiles never race, and no value depends on which thread
 * ran it.
 */
public final class AttentionBackward implements KernelPool.TileJob {
    private static final Kernels SCALAR = new ScalarKernels();
    /** Queries per block (see the class comment). */
    static final int BLOCK = 64;
    private final float[][] scratch; // threads × scratchSize(maxContext, block)
    private final int maxContext, block;
    private float[] datt, qkv, cacheK, cacheV, lse, slopes, dqkv;
    private QkvLayout layout;
    private Kernels kernels;
    private int n, maxT, nh, hs;
    private float dropP;
    private long dropKey;

    /**
     * Dropout of the attention probabilities the forward applied ({@link Attention#forwardHead}'s {@code dropP},
     * {@code dropKey}) for the following {@link #run} calls; p = 0 turns it off.
     */
    public void setDropout(float p, long key) {
        this.dropP = p;
        this.dropKey = key;
    }

    public AttentionBackward(int threads, int maxContext) {
        this.maxContext = maxContext;
        this.block = Math.max(1, Math.min(BLOCK, maxContext));
        this.scratch = new float[threads][scratchSize(maxContext, block)];
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
                scratch[slot], Math.min(block, n), dropP, dropKey);
    }

    /** Floats of scratch {@link #backwardHead(Kernels, float[], float[], QkvLayout, float[], float[], float[], float[],
     * float[], int, int, int, int, int, int, float[], int) backwardHead} needs for n positions in blocks of block. */
    public static int scratchSize(int n, int block) {
        return 2 * n + 2 * n * block;
    }

    /**
     * Backward for sequence {@code bi}, head {@code h}, all n queries; overwrites head h's q, k and v columns of
     * sequence bi in dqkv. Allocates its scratch: the pool path ({@link #run}) uses the overload below.
     *
     * @param p  unused (kept for the signature)
     * @param dp unused
     */
    public static void backwardHead(Kernels kern, float[] datt, float[] qkv, QkvLayout layout, float[] cacheK,
                                    float[] cacheV, float[] lse, float[] slopes, float[] dqkv, int bi, int h, int n,
                                    int maxT, int nh, int hs, float[] p, int pOff, float[] dp, int dpOff) {
        int block = Math.max(1, Math.min(BLOCK, n));
        backwardHead(kern, datt, qkv, layout, cacheK, cacheV, lse, slopes, dqkv, bi, h, n, maxT, nh, hs,
                new float[scratchSize(n, block)], block);
    }

    /**
     * Backward for sequence {@code bi}, head {@code h}, all n queries; overwrites head h's q, k and v columns of
     * sequence bi in dqkv.
     *
     * @param s     scratch, at least {@link #scratchSize scratchSize(n, block)} floats: p row | dp row (n each), then
     *              p and ds transposed (n keys × block queries each)
     * @param block queries per block, ≥ 1
     */
    public static void backwardHead(Kernels kern, float[] datt, float[] qkv, QkvLayout layout, float[] cacheK,
                                    float[] cacheV, float[] lse, float[] slopes, float[] dqkv, int bi, int h, int n,
                                    int maxT, int nh, int hs, float[] s, int block) {
        backwardHead(kern, datt, qkv, layout, cacheK, cacheV, lse, slopes, dqkv, bi, h, n, maxT, nh, hs, s, block, 0f,
                0L);
    }

    /**
     * As above, for a forward with dropout {@code dropP} (key {@code dropKey}) on the probabilities: with the mask
     * {@code m_tj} (0 or 1/(1-p)), {@code dv_j += Σ_t m_tj·p_tj·dout_t}, {@code dp_tj = m_tj·(dout_t·v_j)}, then the
     * usual {@code ds_tj = p_tj·(dp_tj - Σ_j p_tj·dp_tj)}.
     */
    public static void backwardHead(Kernels kern, float[] datt, float[] qkv, QkvLayout layout, float[] cacheK,
                                    float[] cacheV, float[] lse, float[] slopes, float[] dqkv, int bi, int h, int n,
                                    int maxT, int nh, int hs, float[] s, int block, float dropP, long dropKey) {
        int c = nh * hs, c3 = 3 * c;
        boolean drop = dropP > 0f;
        long th = drop ? DropoutMask.threshold(dropP) : 0L;
        float keep = DropoutMask.keepScale(dropP);
        float scale = (float) (1.0 / Math.sqrt(hs));
        int kvBase = (bi * nh + h) * maxT * hs; // (maxT, HS) of this (sequence, head)
        float slope = slopes == null ? 0f : slopes[h];
        int qo = layout.q(h, hs, c), ko = layout.k(h, hs, c), vo = layout.v(h, hs, c), oo = h * hs;
        int lseBase = (bi * nh + h) * n;
        int pOff = 0, dpOff = n, ptOff = 2 * n, dsOff = 2 * n + n * block; // pT, dsT: (n keys, block queries)
        for (int t0 = 0; t0 < n; t0 += block) {
            int t1 = Math.min(n, t0 + block);
            for (int t = t0; t < t1; t++) {
                int tt = t - t0;
                int q = (bi * n + t) * c3 + qo;   // q_t in qkv, dq_t in dqkv
                int o = (bi * n + t) * c + oo;    // dout_t in datt (B, n, C)
                float l = lse[lseBase + t];
                int len = t + 1;
                kern.dotRows(qkv, q, cacheK, kvBase, hs, hs, len, scale, s, pOff);  // p = scale·q·k_j, as forward
                kern.dotRows(datt, o, cacheV, kvBase, hs, hs, len, 1f, s, dpOff); // dp_j = dout·v_j
                float dsum = 0f; // D_t
                if (drop) { // dp_j = m_j·dout·v_j; the p row keeps the undropped p_j
                    long base = DropoutMask.attentionCounter(bi, h, nh, t, 0);
                    for (int j = 0; j < len; j++) {
                        float m = DropoutMask.kept(dropKey, base + j, th) ? keep : 0f;
                        float pj = (float) Math.exp(s[pOff + j] + slope * j - l);
                        s[pOff + j] = pj;
                        float dpj = s[dpOff + j] * m;
                        s[dpOff + j] = dpj;
                        s[ptOff + j * block + tt] = pj * m; // dv_j takes the dropped probabilities
                        dsum += pj * dpj;
                    }
                } else {
                    for (int j = 0; j < len; j++) {
                        float pj = (float) Math.exp(s[pOff + j] + slope * j - l);
                        s[pOff + j] = pj;
                        dsum += pj * s[dpOff + j];
                    }
                }
                for (int j = 0; j < len; j++) {
                    float pj = s[pOff + j];
                    float ds = pj * (s[dpOff + j] - dsum) * scale; // scale folded in: d(q·k)
                    s[dpOff + j] = ds;
                    if (!drop) s[ptOff + j * block + tt] = pj;
                    s[dsOff + j * block + tt] = ds;
                }
                kern.weightedRowSum(s, dpOff, cacheK, kvBase, hs, hs, len, dqkv, q, false); // dq_t = Σ_j ds_j·k_j
            }
            for (int j = 0; j < t1; j++) { // keys: dk_j (+)= Σ_t ds_tj·q_t, dv_j (+)= Σ_t p_tj·dout_t, t in block, t ≥ j
                int ts = Math.max(j, t0), cnt = t1 - ts, col = j * block + ts - t0;
                int row = (bi * n + j) * c3;
                boolean acc = j < t0; // the block holding query j is the first to reach key j
                kern.weightedRowSum(s, dsOff + col, qkv, (bi * n + ts) * c3 + qo, c3, hs, cnt, dqkv, row + ko, acc);
                kern.weightedRowSum(s, ptOff + col, datt, (bi * n + ts) * c + oo, c, hs, cnt, dqkv, row + vo, acc);
            }
        }
    }
}
