package dev.qlora4j.runtime.model;

/**
 * Keys and values of every layer for B sequences up to maxT positions: {@code k[l], v[l]} are (B, NH, maxT, HS).
 * Training uses a {@link #layerShared} cache: one K/V buffer that every layer's {@code k[l], v[l]} alias, since a
 * forward pass from position 0 reads layer l's keys and values only inside layer l; the backward pass re-stores them
 * from the layer's saved {@code qkv} (a copy, so the same bits) before the attention backward.
 */
public final class KvCache {
    public final int b, maxT, nh, hs;
    public final float[][] k; // L × (B, NH, maxT, HS)
    public final float[][] v; // L × (B, NH, maxT, HS)
    /** True when all layers alias one K/V buffer ({@link #layerShared}). */
    public final boolean shared;
    private int length;

    public KvCache(DecoderSpec spec, int b, int maxT) {
        this(spec, b, maxT, false);
    }

    /**
     * One (B, NH, maxT, HS) K and V buffer for all layers: for training, where a forward pass always starts at
     * position 0 and the backward re-stores each layer's K/V (2·C floats per token and layer saved, L − 1 times).
     */
    public static KvCache layerShared(DecoderSpec spec, int b, int maxT) {
        return new KvCache(spec, b, maxT, true);
    }

    private KvCache(DecoderSpec spec, int b, int maxT, boolean shared) {
        if (maxT > spec.maxT()) {
            throw new IllegalArgumentException("context " + maxT + " exceeds the model's " + spec.maxT() + " positions");
        }
        this.b = b;
        this.maxT = maxT;
        this.nh = spec.nh();
        this.hs = spec.hs();
        long per = (long) b * nh * maxT * hs;
        if (per > Integer.MAX_VALUE - 8) throw new IllegalArgumentException("KV cache too large: " + per);
        this.shared = shared;
        k = new float[spec.l()][];
        v = new float[spec.l()][];
        for (int l = 0; l < spec.l(); l++) {
            k[l] = shared && l > 0 ? k[0] : new float[(int) per];
            v[l] = shared && l > 0 ? v[0] : new float[(int) per];
        }
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
