package dev.qlora4j.runtime.generate;

import java.util.Arrays;
import java.util.SplittableRandom;

/** Picks tokens from logits; seeded, reproducible, and allocation-free after construction. */
public final class Sampler {
    private final SamplingParams p;
    private final SplittableRandom rng;
    private final long[] order;   // (V) packed (sortable logit, index) for top-k / top-p
    private final boolean[] seen; // (V) tokens already in the context, for the repetition penalty

    public Sampler(SamplingParams params, int vocab) {
        this.p = params;
        this.rng = new SplittableRandom(params.seed());
        this.order = new long[vocab];
        this.seen = new boolean[vocab];
    }

    /** Marks a token as part of the context (prompt or generated). */
    public void observe(int token) {
        seen[token] = true;
    }

    public void reset() {
        Arrays.fill(seen, false);
    }

    /** @param logits (V) at off; modified in place. */
    public int next(float[] logits, int off) {
        int v = seen.length;
        if (p.repetitionPenalty() != 1f) {
            for (int i = 0; i < v; i++) {
                if (seen[i]) {
                    float s = logits[off + i];
                    logits[off + i] = s < 0 ? s * p.repetitionPenalty() : s / p.repetitionPenalty();
                }
            }
        }
        if (p.greedy()) return argmax(logits, off, v);
        float invT = 1f / p.temperature();
        for (int i = 0; i < v; i++) order[i] = pack(logits[off + i] * invT, i);
        Arrays.sort(order); // ascending by scaled logit
        int keep = v;
        if (p.topK() > 0) keep = Math.min(keep, p.topK());
        // softmax over the kept candidates, highest first
        float max = unpackValue(order[v - 1]);
        double sum = 0;
        for (int r = 0; r < keep; r++) sum += Math.exp(unpackValue(order[v - 1 - r]) - max);
        if (p.topP() < 1f) { // smallest prefix whose probability reaches top-p (at least one token)
            double cum = 0;
            int k = 0;
            while (k < keep) {
                cum += Math.exp(unpackValue(order[v - 1 - k]) - max) / sum;
                k++;
                if (cum >= p.topP()) break;
            }
            double newSum = 0;
            for (int r = 0; r < k; r++) newSum += Math.exp(unpackValue(order[v - 1 - r]) - max);
            keep = k;
            sum = newSum;
        }
        double u = rng.nextDouble() * sum, acc = 0;
        for (int r = 0; r < keep; r++) {
            acc += Math.exp(unpackValue(order[v - 1 - r]) - max);
            if (u < acc) return unpackIndex(order[v - 1 - r]);
        }
        return unpackIndex(order[v - keep]);
    }

    public static int argmax(float[] x, int off, int n) {
        int best = 0;
        float bv = x[off];
        for (int i = 1; i < n; i++) {
            if (x[off + i] > bv) {
                bv = x[off + i];
                best = i;
            }
        }
        return best;
    }

    // float → int that sorts like the float (flip negatives), high 32 bits; index in the low 32 bits
    private static long pack(float value, int index) {
        int bits = Float.floatToIntBits(value);
        int key = bits >= 0 ? bits : bits ^ 0x7fffffff;
        return ((long) key << 32) | (index & 0xffffffffL);
    }

    private static float unpackValue(long packed) {
        int key = (int) (packed >> 32);
        return Float.intBitsToFloat(key >= 0 ? key : key ^ 0x7fffffff);
    }

    private static int unpackIndex(long packed) {
        return (int) packed;
    }
}
