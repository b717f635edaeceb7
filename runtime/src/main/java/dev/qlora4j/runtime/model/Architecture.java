package dev.qlora4j.runtime.model;

import dev.qlora4j.runtime.ops.QkvLayout;

/** The decoder families qlora4j runs; each names how its fused QKV is laid out and how positions are encoded. */
public enum Architecture {
    /** GPT-2: learned positions (wpe), Conv1D weights, {@code [q|k|v]} fused projection. */
    GPT2(QkvLayout.SPLIT_QKV, false),
    /** BLOOM: embedding LayerNorm, ALiBi, QKV interleaved per head. */
    BLOOM(QkvLayout.PER_HEAD_INTERLEAVED, true);

    public final QkvLayout qkvLayout;
    public final boolean alibi;

    Architecture(QkvLayout qkvLayout, boolean alibi) {
        this.qkvLayout = qkvLayout;
        this.alibi = alibi;
    }
}
