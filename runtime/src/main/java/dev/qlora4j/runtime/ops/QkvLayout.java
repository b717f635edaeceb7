package dev.qlora4j.runtime.ops;

/** Where head h's query, key and value sit inside one token's fused QKV projection output (3C floats). */
public enum QkvLayout {
    /** GPT-2 c_attn: {@code [q (C) | k (C) | v (C)]}, head h at {@code h·HS} within each. */
    SPLIT_QKV,
    /** BLOOM query_key_value: interleaved per head, {@code [h][q|k|v][HS]}. */
    PER_HEAD_INTERLEAVED;

    public int q(int h, int hs, int c) {
        return this == SPLIT_QKV ? h * hs : h * 3 * hs;
    }

    public int k(int h, int hs, int c) {
        return this == SPLIT_QKV ? c + h * hs : h * 3 * hs + hs;
    }

    public int v(int h, int hs, int c) {
        return this == SPLIT_QKV ? 2 * c + h * hs : h * 3 * hs + 2 * hs;
    }
}
