package dev.qlora4j.runtime.model;

import dev.qlora4j.runtime.ops.AttentionJob;

/**
 * Activations for up to B×T tokens per call, allocated once from (B, T, spec) and reused every step (llm.c's
 * ActivationTensors). With {@code saveForBackward}, each layer keeps its own copies for the backward pass; otherwise
 * one set is shared by all layers.
 */
public final class Workspace {
    public final int b, t, chunkRows;
    public final boolean saveForBackward;

    public final float[][] residual; // (L+1 | 2) × (B, T, C) stream entering each layer; last = final output
    public final float[][] ln1;      // (L | 1) × (B, T, C)
    public final float[][] ln1Mean;  // (L | 1) × (B, T)
    public final float[][] ln1Rstd;  // (L | 1) × (B, T)
    public final float[][] qkv;      // (L | 1) × (B, T, 3C)
    public final float[][] att;      // (L | 1) × (B, T, C) attention output before c_proj
    public final float[][] lse;      // (L | 1) × (B, NH, T) log-sum-exp of each attention row
    public final float[][] resid2;   // (L | 1) × (B, T, C) stream after the attention residual
    public final float[][] ln2;      // (L | 1) × (B, T, C)
    public final float[][] ln2Mean;  // (L | 1) × (B, T)
    public final float[][] ln2Rstd;  // (L | 1) × (B, T)
    public final float[][] fc;       // (L | 1) × (B, T, 4C) before GELU
    public final float[][] gelu;     // (L | 1) × (B, T, 4C)
    public final float[] proj;       // (B, T, C) scratch: output of a projection before the residual add
    public final float[] lnf;        // (B, T, C)
    public final float[] lnfMean;    // (B, T)
    public final float[] lnfRstd;    // (B, T)
    public final float[] logits;     // (chunkRows, V)
    public final AttentionJob attention; // per-thread attention scratch, re-armed every call

    public Workspace(DecoderSpec spec, int b, int t, int maxContext, boolean saveForBackward, int chunkRows) {
        int threads = dev.qlora4j.quant.kernel.KernelPool.shared().threads();
        this.b = b;
        this.t = t;
        this.saveForBackward = saveForBackward;
        this.chunkRows = chunkRows;
        int c = spec.c(), bt = b * t, nl = saveForBackward ? spec.l() : 1;
        residual = new float[saveForBackward ? spec.l() + 1 : 2][bt * c];
        ln1 = new float[nl][bt * c];
        ln1Mean = new float[nl][bt];
        ln1Rstd = new float[nl][bt];
        qkv = new float[nl][bt * 3 * c];
        att = new float[nl][bt * c];
        lse = new float[nl][b * spec.nh() * t];
        resid2 = new float[nl][bt * c];
        ln2 = new float[nl][bt * c];
        ln2Mean = new float[nl][bt];
        ln2Rstd = new float[nl][bt];
        fc = new float[nl][bt * 4 * c];
        gelu = new float[nl][bt * 4 * c];
        proj = new float[bt * c];
        lnf = new float[bt * c];
        lnfMean = new float[bt];
        lnfRstd = new float[bt];
        logits = new float[chunkRows * spec.v()];
        attention = new AttentionJob(threads, maxContext);
    }

    /** Index of layer l's saved buffers. */
    public int slot(int l) {
        return saveForBackward ? l : 0;
    }
}
