package dev.qlora4j.quant.codec;

/**
 * {@code max |x|} over one block, as bitsandbytes' {@code kQuantizeBlockwise} reduces it with {@code fmaxf}: a NaN
 * element is skipped, an empty or all-zero block gives 0.
 */
final class BlockAbsmax {

    private BlockAbsmax() {
    }

    static float of(float[] x, int off, int len) {
        float m = 0f;
        for (int i = off, end = off + len; i < end; i++) {
            float a = Math.abs(x[i]);
            if (a > m) m = a;
        }
        return m;
    }
}
