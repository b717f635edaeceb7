package dev.qlora4j.runtime.ops;

import dev.qlora4j.quant.kernel.Kernels;
import dev.qlora4j.quant.kernel.ScalarKernels;

/**
 * Causal multi-head self-attention over a KV cache, fp32. New tokens at positions {@code [pos0, pos0 + n)} attend
 * to every cached position {@code ≤} their own. Scores are {@code q·k / √HS} (+ {@code slope_h · j} with ALiBi),
 * softmax in fp32. Saves the log-sum-exp of every (query, head) row so a backward pass can recompute the
 * probabilities instead of storing the (T, T) matrices.
 *
 * <p>Inference ({@code lse == null}) runs the softmax on the kernels ({@link Kernels#rowMax},
 * {@link Kernels#expInPlace}: FastExp, within 2e-7 of exp, vectorized). Training ({@code lse} saved) uses
 * {@link Math#exp}, the exp {@link AttentionBackward} recomputes the probabilities with. With FastExp in the
 * forward, `./qlora demo` trained to 1–12/100 exact match in four runs (default, --lr 5e-3, --steps 1600, 256-bit
 * kernels); with Math.exp, to 69–76/100 in three (bench/RESULTS.md, session 9). Why so small a difference moves
 * the trajectory that much is not understood yet.
 */
public final class Attention {
    private Attention() {
    }

    /**
     * Copies the new tokens' keys and values from the fused QKV output into the cache.
     *
     * @param qkv    (B, n, 3C)
     * @param cacheK (B, NH, maxT, HS) for this layer, at cacheOff
     * @param cacheV (B, NH, maxT, HS)
     */
    public static void storeKv(float[] qkv, int qkvOff, QkvLayout layout, float[] cacheK, float[] cacheV,
                               int cacheOff, int b, int n, int pos0, int maxT, int nh, int hs) {
        int c = nh * hs;
        for (int bi = 0; bi < b; bi++) {
            for (int t = 0; t < n; t++) {
                int src = qkvOff + (bi * n + t) * 3 * c;
                for (int h = 0; h < nh; h++) {
                    int dst = cacheOff + ((bi * nh + h) * maxT + pos0 + t) * hs;
                    System.arraycopy(qkv, src + layout.k(h, hs, c), cacheK, dst, hs);
                    System.arraycopy(qkv, src + layout.v(h, hs, c), cacheV, dst, hs);
                }
            }
        }
    }

    /**
     * Attention for sequence {@code bi}, head {@code h}, all n new queries.
     *
     * @param qkv    (B, n, 3C)
     * @param cacheK (B, NH, maxT, HS) at cacheOff, already holding positions {@code [0, pos0 + n)}
     * @param out    (B, n, C) — head h writes columns {@code [h·HS, (h+1)·HS)}
     * @param lse    (B, NH, n) or null
     * @param slopes ALiBi slopes (NH) or null
     * @param scores scratch (≥ pos0 + n)
     */
    public static void forwardHead(float[] qkv, int qkvOff, QkvLayout layout, float[] cacheK, float[] cacheV,
                                   int cacheOff, float[] out, int outOff, float[] lse, int lseOff, float[] slopes,
                                   int bi, int h, int n, int pos0, int maxT, int nh, int hs, float[] scores) {
        forwardHead(SCALAR, qkv, qkvOff, layout, cacheK, cacheV, cacheOff, out, outOff, lse, lseOff, slopes, bi, h, n,
                pos0, maxT, nh, hs, scores);
    }

    private static final Kernels SCALAR = new ScalarKernels();

    /** As above, with the inner products and weighted sums on {@code k}'s (vector) kernels. */
    public static void forwardHead(Kernels k, float[] qkv, int qkvOff, QkvLayout layout, float[] cacheK,
                                   float[] cacheV, int cacheOff, float[] out, int outOff, float[] lse, int lseOff,
                                   float[] slopes, int bi, int h, int n, int pos0, int maxT, int nh, int hs,
                                   float[] scores) {
        forwardHead(k, qkv, qkvOff, layout, cacheK, cacheV, cacheOff, out, outOff, lse, lseOff, slopes, bi, h, n,
                pos0, maxT, nh, hs, scores, 0f, 0L);
    }

    /**
     * As above, with inverted dropout of probability {@code dropP} on the softmax probabilities before the weighted
     * sum of V (mask of {@link DropoutMask} keyed by {@code dropKey}, counter
     * {@link DropoutMask#attentionCounter}); the saved log-sum-exp is that of the undropped softmax. {@code dropP = 0}
     * is exactly the plain forward.
     */
    public static void forwardHead(Kernels k, float[] qkv, int qkvOff, QkvLayout layout, float[] cacheK,
                                   float[] cacheV, int cacheOff, float[] out, int outOff, float[] lse, int lseOff,
                                   float[] slopes, int bi, int h, int n, int pos0, int maxT, int nh, int hs,
                                   float[] scores, float dropP, long dropKey) {
        int c = nh * hs;
        long th = dropP > 0f ? DropoutMask.threshold(dropP) : 0L;
        float keep = DropoutMask.keepScale(dropP);
        float scale = (float) (1.0 / Math.sqrt(hs));
        int kvBase = cacheOff + (bi * nh + h) * maxT * hs;
        float slope = slopes == null ? 0f : slopes[h];
        for (int t = 0; t < n; t++) {
            int q = qkvOff + (bi * n + t) * 3 * c + layout.q(h, hs, c);
            int len = pos0 + t + 1;
            k.dotRows(qkv, q, cacheK, kvBase, hs, hs, len, scale, scores, 0);
            float max, sum;
            if (lse != null) { // a backward will follow: exp as AttentionBackward recomputes it (see the class doc)
                max = Float.NEGATIVE_INFINITY;
                for (int j = 0; j < len; j++) {
                    float sj = scores[j] + slope * j;
                    scores[j] = sj;
                    if (sj > max) max = sj;
                }
                sum = 0f;
                for (int j = 0; j < len; j++) {
                    float e = (float) Math.exp(scores[j] - max);
                    scores[j] = e;
                    sum += e;
                }
            } else {
                if (slope != 0f) {
                    for (int j = 0; j < len; j++) scores[j] += slope * j;
                }
                max = k.rowMax(scores, 0, len);
                sum = (float) k.expInPlace(scores, 0, len, max); // scores → exp(score - max)
            }
            float inv = 1f / sum;
            for (int j = 0; j < len; j++) scores[j] *= inv;
            if (dropP > 0f) {
                long base = DropoutMask.attentionCounter(bi, h, nh, pos0 + t, 0);
                for (int j = 0; j < len; j++) {
                    scores[j] = DropoutMask.kept(dropKey, base + j, th) ? scores[j] * keep : 0f;
                }
            }
            k.weightedRowSum(scores, 0, cacheV, kvBase, hs, hs, len, out, outOff + (bi * n + t) * c + h * hs, false);
            if (lse != null) lse[lseOff + (bi * nh + h) * n + t] = max + (float) Math.log(sum);
        }
    }
}
