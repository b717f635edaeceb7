package dev.qlora4j.runtime.model;

import dev.qlora4j.runtime.ops.AttentionJob;

/**
 * Activations for up to B×T tokens per call, allocated once from (B, T, spec) and reused every step (llm.c's
 * ActivationTensors). {@link Activations#SAVED}: each layer keeps its own copies for the backward pass, except the
 * LayerNorm outputs and the GELU output (7C of the 16C floats per token and layer), which one shared slot holds and
 * the backward recomputes — bit-identically — from the saved LayerNorm input and statistics and the saved GELU input
 * (cheap elementwise work, see {@link DecoderBackward});
 * {@link Activations#CHECKPOINTED}: only the residual stream entering each layer is kept and the backward pass
 * recomputes one block at a time into a single set (gradient checkpointing); {@link Activations#NONE}: inference, one
 * set shared by all layers.
 */
public final class Workspace {
    /** What a forward pass keeps for a backward pass. */
    public enum Activations { NONE, SAVED, CHECKPOINTED }

    public final int b, t, chunkRows;
    public final Activations activations;
    /** True when a backward pass can follow (SAVED or CHECKPOINTED). */
    public final boolean saveForBackward;

    public final float[][] residual; // (L+1 | 1) × (B, T, C) stream entering each layer; last = final output
    public final float[][] ln1;      // (1) × (B, T, C): every mode keeps one (recomputed in backward, see the class doc)
    public final float[][] ln1Mean;  // (L | 1) × (B, T)
    public final float[][] ln1Rstd;  // (L | 1) × (B, T)
    public final float[][] qkv;      // (L | 1) × (B, T, 3C)
    public final float[][] att;      // (L | 1) × (B, T, C) attention output before c_proj
    public final float[][] lse;      // (L | 1) × (B, NH, T) log-sum-exp of each attention row
    public final float[][] resid2;   // (L | 1) × (B, T, C) stream after the attention residual
    public final float[][] ln2;      // (1) × (B, T, C): as ln1
    public final float[][] ln2Mean;  // (L | 1) × (B, T)
    public final float[][] ln2Rstd;  // (L | 1) × (B, T)
    public final float[][] fc;       // (L | 1) × (B, T, 4C) before GELU
    public final float[][] gelu;     // (1) × (B, T, 4C): as ln1
    public final float[] proj;       // (B, T, C) scratch: output of a projection before the residual add
    public final float[] lnf;        // (B, T, C)
    public final float[] lnfMean;    // (B, T)
    public final float[] lnfRstd;    // (B, T)
    public final float[] logits;     // (chunkRows, V)
    public final AttentionJob attention; // per-thread attention scratch, re-armed every call

    public Workspace(DecoderSpec spec, int b, int t, int maxContext, boolean saveForBackward, int chunkRows) {
        this(spec, b, t, maxContext, saveForBackward ? Activations.SAVED : Activations.NONE, chunkRows);
    }

    public Workspace(DecoderSpec spec, int b, int t, int maxContext, Activations activations, int chunkRows) {
        int threads = dev.qlora4j.quant.kernel.KernelPool.shared().threads();
        this.b = b;
        this.t = t;
        this.activations = activations;
        this.saveForBackward = activations != Activations.NONE;
        this.chunkRows = chunkRows;
        int c = spec.c(), bt = b * t, nl = activations == Activations.SAVED ? spec.l() : 1;
        residual = new float[saveForBackward ? spec.l() + 1 : 1][bt * c];
        ln1 = new float[1][bt * c];
        ln1Mean = new float[nl][bt];
        ln1Rstd = new float[nl][bt];
        qkv = new float[nl][bt * 3 * c];
        att = new float[nl][bt * c];
        lse = new float[nl][b * spec.nh() * t];
        resid2 = new float[nl][bt * c];
        ln2 = new float[1][bt * c];
        ln2Mean = new float[nl][bt];
        ln2Rstd = new float[nl][bt];
        fc = new float[nl][bt * 4 * c];
        gelu = new float[1][bt * 4 * c];
        proj = new float[bt * c];
        lnf = new float[bt * c];
        lnfMean = new float[bt];
        lnfRstd = new float[bt];
        logits = new float[chunkRows * spec.v()];
        attention = new AttentionJob(threads, maxContext);
    }

    /** Index of layer l's activation buffers (0 unless every layer keeps its own). */
    public int slot(int l) {
        return activations == Activations.SAVED ? l : 0;
    }

    /** The residual stream entering layer l (l = L: the final output before ln_f). */
    public float[] residualAt(int l) {
        return saveForBackward ? residual[l] : residual[0];
    }
}
