package dev.qlora4j.runtime.ops;

import dev.qlora4j.quant.kernel.KernelPool;
import dev.qlora4j.quant.kernel.Kernels;

/**
 * Runs {@link Attention#forwardHead} for every (sequence, head) pair on the kernel pool, one tile per pair, each
 * thread with its own score row; prompt processing at inference takes {@link Attention#forwardHeadBlocked} when
 * {@link Attention#useBlocked} says so, with per-thread (4, maxContext) score rows and an (HS, ktStride) transposed
 * key buffer, allocated on its first use. One instance per workspace, re-armed every call, so nothing is allocated per
 * step.
 */
public final class AttentionJob implements KernelPool.TileJob {
    private final float[][] scores; // threads × (maxContext)
    private final int maxContext;
    private float[][] scores4; // threads × (4, maxContext), for the blocked path
    private float[][] kt; // threads × (HS, ktStride): the head's keys transposed, for the blocked path
    private final int ktStride; // row stride of kt, ≥ maxContext: see ktStride(int)
    private boolean blocked;
    private float[] qkv, cacheK, cacheV, out, lse, slopes;
    private QkvLayout layout;
    private Kernels kernels;
    private int n, pos0, maxT, nh, hs;
    private float dropP;
    private long dropKey;

    public AttentionJob(int threads, int maxContext) {
        this.scores = new float[threads][maxContext];
        this.maxContext = maxContext;
        this.ktStride = ktStride(maxContext);
    }

    /**
     * Row stride (floats) of the transposed keys for a context of {@code maxContext}: whole 64-byte lines, an odd
     * number of them. The blocked scores read a 64-key column block down all HS rows of kt; with a stride that is a
     * multiple of 4 KiB (a max context of 1024, GPT-2's {@code n_positions}) all those rows fall in one L1 set and
     * evict each other, and any even line count folds them into fewer sets. Odd line counts spread them over all
     * sets ({@code AttentionPromptBench}, bench/RESULTS.md session 26: 8878 µs per layer at stride 1024, 7403 at 1040).
     */
    static int ktStride(int maxContext) {
        int lines = (maxContext + 15) / 16;
        return 16 * (lines | 1);
    }

    /**
     * Dropout of the attention probabilities for the following {@link #run} calls ({@link Attention#forwardHead}'s
     * {@code dropP}, {@code dropKey}); p = 0 turns it off.
     */
    public void setDropout(float p, long key) {
        this.dropP = p;
        this.dropKey = key;
    }

    /** As below, on the scalar attention kernels. */
    public void run(KernelPool pool, float[] qkv, QkvLayout layout, float[] cacheK, float[] cacheV, float[] out,
                    float[] lse, float[] slopes, int b, int n, int pos0, int maxT, int nh, int hs) {
        run(pool, SCALAR, qkv, layout, cacheK, cacheV, out, lse, slopes, b, n, pos0, maxT, nh, hs);
    }

    private static final Kernels SCALAR = new dev.qlora4j.quant.kernel.ScalarKernels();

    /**
     * @param qkv    (B, n, 3C)
     * @param cacheK (B, NH, maxT, HS)
     * @param out    (B, n, C)
     * @param lse    (B, NH, n) or null
     */
    public void run(KernelPool pool, Kernels kernels, float[] qkv, QkvLayout layout, float[] cacheK, float[] cacheV, float[] out,
                    float[] lse, float[] slopes, int b, int n, int pos0, int maxT, int nh, int hs) {
        this.kernels = kernels;
        this.qkv = qkv;
        this.layout = layout;
        this.cacheK = cacheK;
        this.cacheV = cacheV;
        this.out = out;
        this.lse = lse;
        this.slopes = slopes;
        this.n = n;
        this.pos0 = pos0;
        this.maxT = maxT;
        this.nh = nh;
        this.hs = hs;
        this.blocked = Attention.useBlocked(kernels, lse, dropP, n, hs) && pos0 + n <= maxContext;
        if (blocked && (kt == null || kt[0].length < hs * ktStride)) { // once per workspace (and head size)
            scores4 = new float[scores.length][4 * maxContext];
            kt = new float[scores.length][hs * ktStride];
        }
        if (b * nh == 1 || pos0 + n < 16) { // too small to be worth waking the pool
            for (int tile = 0; tile < b * nh; tile++) run(tile, 0);
        } else {
            pool.run(b * nh, this);
        }
        this.qkv = this.cacheK = this.cacheV = this.out = this.lse = null;
    }

    @Override
    public void run(int tile, int slot) {
        if (blocked) {
            Attention.forwardHeadBlocked(kernels, qkv, layout, cacheK, cacheV, out, slopes, tile / nh, tile % nh, n,
                    pos0, maxT, nh, hs, scores4[slot], maxContext, kt[slot], ktStride);
            return;
        }
        Attention.forwardHead(kernels, qkv, 0, layout, cacheK, cacheV, 0, out, 0, lse, 0, slopes, tile / nh, tile % nh, n, pos0,
                maxT, nh, hs, scores[slot], dropP, dropKey);
    }
}
