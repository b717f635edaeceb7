package dev.qlora4j.runtime.model;

/**
 * Keys and values of every layer for B sequences up to maxT positions: {@code k[l], v[l]} are (B, NH, maxT, HS).
 * During training the cache of a single forward pass doubles as the saved K/V for backward.
 */
public final class KvCache {
    public final int b, maxT, nh, hs;
    public final float[][] k; // L × (B, NH, maxT, HS)
    public final float[][] v; // L × (B, NH, maxT, HS)
    private int length;

    public KvCache(DecoderSpec spec, int b, int maxT) {
        if (maxT > spec.maxT()) {
            throw new IllegalArgumentException("context " + maxT + " exceeds the model's " + spec.maxT() + " positions");
        }
        this.b = b;
        this.maxT = maxT;
        this.nh = spec.nh();
        this.hs = spec.hs();
        long per = (long) b * nh * maxT * hs;
        if (per > Integer.MAX_VALUE - 8) throw new IllegalArgumentException("KV cache too large: " + per);
        k = new float[spec.l()][(int) per];
        v = new float[spec.l()][(int) per];
    }

    /** Positions filled so far. */
    public int length() {
        return length;
    }

    public void setLength(int length) {
        if (length < 0 || length > maxT) throw new IllegalArgumentException("cache length " + length);
        this.length = length;
    }

    public void clear() {
        length = 0;
    }
}
