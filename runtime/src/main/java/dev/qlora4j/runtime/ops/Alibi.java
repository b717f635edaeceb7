package dev.qlora4j.runtime.ops;

/** BLOOM's ALiBi slopes (transformers {@code build_alibi_tensor}), also for head counts that are not powers of two. */
public final class Alibi {
    private Alibi() {
    }

    /** One slope per head; the bias added to score (query i, key j) is {@code slope[h] · j}. */
    public static float[] slopes(int nh) {
        int cp2 = Integer.highestOneBit(nh); // 2^floor(log2(nh))
        float[] s = new float[nh];
        // base = 2^-(2^-(log2(cp2) - 3)) = 2^(-8/cp2), a float32 tensor in transformers
        float baseF = (float) Math.pow(2.0, -8.0 / cp2);
        for (int i = 0; i < cp2; i++) s[i] = (float) Math.pow(baseF, i + 1);
        if (cp2 != nh) {
            float extra = (float) Math.pow(2.0, -4.0 / cp2); // 2^(-8/(2·cp2))
            int rem = Math.min(cp2, nh - cp2);
            for (int i = 0; i < rem; i++) s[cp2 + i] = (float) Math.pow(extra, 2 * i + 1);
        }
        return s;
    }
}
