package dev.qlora4j.runtime.ops;

import static dev.qlora4j.runtime.ops.SplitMix64.mix;

/**
 * Counter-based inverted-dropout masks: element {@code counter} of the mask keyed by {@code key} is kept (scaled by
 * {@code 1/(1-p)}) when {@code mix(key + counter) >>> 40 ≥ floor(p·2^24)}, dropped (0) otherwise. The key hashes
 * (seed, site, layer, step), so a forward, a recomputed forward and the backward of the same step see the same mask
 * without storing it. {@code mix} is SplitMix64's finalizer (shared with the LoRA dropout and data shuffling through {@link SplitMix64}).
 */
public final class DropoutMask {
    private DropoutMask() {
    }

    /** The key of the masks of one site of one layer at one step. */
    public static long key(long seed, int site, int layer, long step) {
        long z = mix(seed * 0x9E3779B97F4A7C15L + 0x165667B19E3779F9L);
        z = mix(z + site * 0xC2B2AE3D27D4EB4FL + 0x27D4EB2F165667C5L);
        z = mix(z ^ (layer * 0xFF51AFD7ED558CCDL + 0x61C8864680B583EBL));
        return mix(z ^ (step * 0xD6E8FEB86659FD93L));
    }

    /** Hash threshold of probability p: drawn 24-bit values below it are dropped. */
    public static long threshold(float p) {
        return (long) Math.floor((double) p * (1L << 24));
    }

    /** The multiplier of kept values, {@code 1/(1-p)} (0 when p ≥ 1). */
    public static float keepScale(float p) {
        return p >= 1f ? 0f : 1f / (1f - p);
    }

    /** Whether element {@code counter} of the mask keyed by {@code key} is kept. */
    public static boolean kept(long key, long counter, long threshold) {
        return (mix(key + counter) >>> 40) >= threshold;
    }

    /**
     * {@code dst = src ⊙ mask} over {@code rows × cols} (row-major, element (r, j) has counter {@code r·cols + j});
     * src and dst may be the same array and offset. Nothing happens when p ≤ 0 and src is dst.
     */
    public static void apply(float[] src, int srcOff, float[] dst, int dstOff, int rows, int cols, float p, long key) {
        if (p <= 0f) {
            if (src != dst || srcOff != dstOff) System.arraycopy(src, srcOff, dst, dstOff, rows * cols);
            return;
        }
        long th = threshold(p);
        float scale = keepScale(p);
        long n = (long) rows * cols;
        for (long i = 0; i < n; i++) {
            int k = (int) i;
            dst[dstOff + k] = kept(key, i, th) ? src[srcOff + k] * scale : 0f;
        }
    }

    /** Counter of attention probability (query position t, key position j) of head h of sequence bi. */
    public static long attentionCounter(int bi, int h, int nh, int t, int j) {
        return (((long) (bi * nh + h) << 20) + t << 20) + j;
    }

}
