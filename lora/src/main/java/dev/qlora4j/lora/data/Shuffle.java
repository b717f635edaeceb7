package dev.qlora4j.lora.data;

import static dev.qlora4j.runtime.ops.SplitMix64.mix;

/**
 * Seeded permutations from SplitMix64 (Steele, Lea, Flood 2014) with Lemire's unbiased bounded draw and a
 * Fisher–Yates shuffle. Fixed here rather than taken from {@code java.util} so a seed means the same order on
 * every JDK. A permutation is a pure function of (seed, stream): epoch {@code e} of a run uses stream {@code e},
 * which is why a data position needs no RNG state beyond the seed.
 */
final class Shuffle {

    static final long EVAL_SPLIT_STREAM = -1;

    private long state;

    Shuffle(long seed, long stream) {
        this.state = mix(seed ^ mix(stream + 0x632BE59BD9B4E019L));
    }

    long nextLong() {
        state += 0x9E3779B97F4A7C15L;
        return mix(state);
    }

    /** Uniform in [0, bound), bound ≤ 2^31. */
    int nextInt(int bound) {
        long b = bound;
        long m = (nextLong() >>> 32) * b;
        long low = m & 0xFFFFFFFFL;
        if (low < b) {
            long t = ((1L << 32) - b) % b;
            while (low < t) {
                m = (nextLong() >>> 32) * b;
                low = m & 0xFFFFFFFFL;
            }
        }
        return (int) (m >>> 32);
    }

    /** Writes a permutation of 0..out.length-1 into {@code out} (allocation-free). */
    static void permutation(long seed, long stream, int[] out) {
        for (int i = 0; i < out.length; i++) out[i] = i;
        Shuffle r = new Shuffle(seed, stream);
        for (int i = out.length - 1; i > 0; i--) {
            int j = r.nextInt(i + 1);
            int t = out[i];
            out[i] = out[j];
            out[j] = t;
        }
    }

}
