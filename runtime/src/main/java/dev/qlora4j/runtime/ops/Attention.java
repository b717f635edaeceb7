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

    /** Fewest new queries for which {@link #forwardHeadBlocked} pays for transposing the keys. */
    public static final int BLOCKED_MIN_QUERIES = 8;

    /** {@code -Dqlora.blockedAttention=false} keeps prompt processing on the per-query path (for A/B benchmarks). */
    private static final boolean BLOCKED_ENABLED = !"false".equals(System.getProperty("qlora.blockedAttention"));

    /**
     * Whether {@link AttentionJob} runs {@link #forwardHeadBlocked}: inference (no saved log-sum-exp, no dropout)
     * over at least {@link #BLOCKED_MIN_QUERIES} new queries, on kernels with a blocked path for this head size, unless
     * {@code -Dqlora.blockedAttention=false}.
     */
    public static boolean useBlocked(Kernels k, float[] lse, float dropP, int n, int hs) {
        return BLOCKED_ENABLED && lse == null && dropP == 0f && n >= BLOCKED_MIN_QUERIES && k.blockedAttention(hs);
    }

    /**
     * Inference attention of head h over n new queries, four at a time (prompt processing): the head's keys
     * {@code [0, pos0 + n)} are transposed once into {@code kt}, then each group of four queries gets its scores from
     * {@link Kernels#dotRowsT4}, a softmax per query over its own causal prefix (the kernels' rowMax and FastExp
     * expInPlace, as {@link #forwardHead} runs inference), zeros past that prefix, and its outputs from
     * {@link Kernels#weightedRowSums4}. The same math as {@link #forwardHead} with {@code lse == null}; only the order
     * of the adds inside each score differs (an FMA chain over the head dimension instead of lane sums).
     *
     * @param scores4 scratch (4, ≥ pos0 + n) rows at stride {@code scoreStride}
     * @param kt      scratch (HS, ≥ pos0 + n) rows at stride {@code ktStride}
     */
    public static void forwardHeadBlocked(Kernels k, float[] qkv, QkvLayout layout, float[] cacheK, float[] cacheV,
                                          float[] out, float[] slopes, int bi, int h, int n, int pos0, int maxT,
                                          int nh, int hs, float[] scores4, int scoreStride, float[] kt,
                                          int ktStride) {
        int c = nh * hs, total = pos0 + n;
        float scale = (float) (1.0 / Math.sqrt(hs));
        int kvBase = (bi * nh + h) * maxT * hs;
        float slope = slopes == null ? 0f : slopes[h];
        for (int j = 0; j < total; j++) { // kt[d, j] = K[j, d]
            int src = kvBase + j * hs;
            for (int d = 0; d < hs; d++) kt[d * ktStride + j] = cacheK[src + d];
        }
        int qh = layout.q(h, hs, c);
        for (int t0 = 0; t0 < n; t0 += 4) {
            int cnt = Math.min(4, n - t0), last = cnt - 1, lenMax = pos0 + t0 + cnt;
            int r1 = Math.min(1, last), r2 = Math.min(2, last), r3 = last; // repeated rows when fewer than four
            int q0 = (bi * n + t0) * 3 * c + qh;
            k.dotRowsT4(qkv, q0, q0 + r1 * 3 * c, q0 + r2 * 3 * c, q0 + r3 * 3 * c, kt, 0, ktStride, hs, lenMax,
                    scale, scores4, 0, r1 * scoreStride, r2 * scoreStride, r3 * scoreStride);
            for (int i = 0; i < cnt; i++) {
                int row = i * scoreStride, len = pos0 + t0 + i + 1;
                if (slope != 0f) {
                    for (int j = 0; j < len; j++) scores4[row + j] += slope * j;
                }
                float max = k.rowMax(scores4, row, len);
                float inv = 1f / (float) k.expInPlace(scores4, row, len, max); // scores → exp(score - max)
                for (int j = 0; j < len; j++) scores4[row + j] *= inv;
                java.util.Arrays.fill(scores4, row + len, row + lenMax, 0f); // keys after this query: weight 0
            }
            int y0 = outOff(bi, n, t0, c, h, hs);
            k.weightedRowSums4(scores4, 0, r1 * scoreStride, r2 * scoreStride, r3 * scoreStride, cacheV, kvBase, hs,
                    hs, lenMax, out, y0, y0 + r1 * c, y0 + r2 * c, y0 + r3 * c);
        }
    }

    private static int outOff(int bi, int n, int t, int c, int h, int hs) {
        return (bi * n + t) * c + h * hs;
    }
}
