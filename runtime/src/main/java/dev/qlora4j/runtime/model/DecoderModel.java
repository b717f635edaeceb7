package dev.qlora4j.runtime.model;

import dev.qlora4j.quant.kernel.KernelPool;
import dev.qlora4j.quant.kernel.Kernels;
import dev.qlora4j.runtime.ops.Alibi;
import dev.qlora4j.runtime.ops.Attention;
import dev.qlora4j.runtime.ops.Elementwise;
import dev.qlora4j.runtime.ops.Gelu;
import dev.qlora4j.runtime.ops.LayerNorm;
import dev.qlora4j.runtime.ops.QkvLayout;

/**
 * A GPT-2 or BLOOM decoder: embeddings → L × (pre-LN attention block, pre-LN MLP block) → final LayerNorm → tied
 * LM head. All activations fp32; linears go through {@link Kernels} over the stored (possibly quantized) weights.
 */
public final class DecoderModel {
    private final DecoderWeights w;
    private final DecoderSpec spec;
    private final Kernels kernels;
    private final float[] slopes; // (NH) ALiBi slopes, BLOOM only
    private Dropout dropout;      // base-model dropout, or null (none)

    public DecoderModel(DecoderWeights weights, Kernels kernels) {
        this.w = weights;
        this.spec = weights.spec();
        this.kernels = kernels;
        this.slopes = spec.arch().alibi ? Alibi.slopes(spec.nh()) : null;
    }

    public DecoderSpec spec() {
        return spec;
    }

    public DecoderWeights weights() {
        return w;
    }

    public Kernels kernels() {
        return kernels;
    }

    /**
     * Base-model dropout (null: none). It applies only while {@link Dropout#training()}; the trainer switches it on
     * for its micro-steps (setting {@link Dropout#setStep}) and off for evaluation.
     */
    public void setDropout(Dropout dropout) {
        this.dropout = dropout;
    }

    /** The base-model dropout, or null. */
    public Dropout dropout() {
        return dropout;
    }

    /** Probability of a dropout site now (0 without dropout or outside training mode). */
    float dropP(int site) {
        return dropout == null ? 0f : dropout.p(site);
    }

    /**
     * Runs n new tokens of each of B sequences at positions {@code [pos0, pos0 + n)} (the cache holds
     * {@code [0, pos0)}); leaves the final hidden states in {@code ws.lnf} (B, n, C) and advances the cache.
     *
     * @param tokens (B, n) at tokOff
     */
    public void forward(int[] tokens, int tokOff, int b, int n, int pos0, KvCache cache, Workspace ws) {
        if (b > ws.b || n > ws.t) throw new IllegalArgumentException("batch " + b + "×" + n + " exceeds workspace "
                + ws.b + "×" + ws.t);
        if (pos0 + n > cache.maxT) throw new IllegalArgumentException("positions up to " + (pos0 + n)
                + " exceed the cache's " + cache.maxT);
        int c = spec.c(), bn = b * n;
        embed(tokens, tokOff, b, n, pos0, ws.residual[0], ws.proj);
        if (dropP(Dropout.EMBD) > 0f) dropout.apply(Dropout.EMBD, 0, ws.residual[0], 0, ws.residual[0], 0, bn, c);
        for (int l = 0; l < spec.l(); l++) {
            int s = ws.slot(l);
            blockForward(l, ws.residualAt(l), ws.residualAt(l + 1), s, b, n, pos0, cache, ws);
        }
        float[] last = ws.residualAt(spec.l());
        LayerNorm.forward(last, 0, w.lnF().gamma(), w.lnF().beta(), w.lnF().eps(), ws.lnf, 0, ws.lnfMean,
                ws.lnfRstd, 0, bn, c);
        cache.setLength(pos0 + n);
    }

    /**
     * @param out (B, n, C) token embedding (+ position embedding | embedding LayerNorm)
     * @param row scratch (≥ C)
     */
    private void embed(int[] tokens, int tokOff, int b, int n, int pos0, float[] out, float[] row) {
        int c = spec.c();
        for (int i = 0; i < b * n; i++) {
            int id = tokens[tokOff + i];
            if (id < 0 || id >= spec.v()) {
                throw new IllegalArgumentException("token id " + id + " outside the vocabulary [0, " + spec.v() + ")");
            }
            w.wte().dequantizeRow(id, out, i * c);
        }
        if (w.wpe() != null) {
            for (int bi = 0; bi < b; bi++) {
                for (int t = 0; t < n; t++) {
                    w.wpe().dequantizeRow(pos0 + t, row, 0);
                    int o = (bi * n + t) * c;
                    for (int j = 0; j < c; j++) out[o + j] += row[j];
                }
            }
        }
        if (w.embLn() != null) {
            LayerNorm.forward(out, 0, w.embLn().gamma(), w.embLn().beta(), w.embLn().eps(), out, 0, null, null, 0,
                    b * n, c);
        }
    }

    private void blockForward(int l, float[] in, float[] out, int s, int b, int n, int pos0, KvCache cache,
                              Workspace ws) {
        BlockWeights bw = w.blocks()[l];
        int c = spec.c(), bn = b * n, nh = spec.nh(), hs = spec.hs();
        QkvLayout layout = spec.arch().qkvLayout;
        // attention sub-block
        LayerNorm.forward(in, 0, bw.ln1().gamma(), bw.ln1().beta(), bw.ln1().eps(), ws.ln1[0], 0, ws.ln1Mean[s],
                ws.ln1Rstd[s], 0, bn, c); // ln1, ln2, gelu: one shared slot, recomputed by the backward
        bw.qkv().forward(kernels, ws.ln1[0], 0, ws.qkv[s], 0, bn);
        Attention.storeKv(ws.qkv[s], 0, layout, cache.k[l], cache.v[l], 0, b, n, pos0, cache.maxT, nh, hs);
        float pa = dropP(Dropout.ATTN);
        ws.attention.setDropout(pa, pa > 0f ? dropout.key(Dropout.ATTN, l) : 0L);
        try {
            ws.attention.run(KernelPool.shared(), kernels, ws.qkv[s], layout, cache.k[l], cache.v[l], ws.att[s],
                    ws.saveForBackward ? ws.lse[s] : null, slopes, b, n, pos0, cache.maxT, nh, hs); // null: inference
        } finally {
            ws.attention.setDropout(0f, 0L);
        }
        bw.attnProj().forward(kernels, ws.att[s], 0, ws.proj, 0, bn);
        if (dropP(Dropout.RESID_ATTN) > 0f) dropout.apply(Dropout.RESID_ATTN, l, ws.proj, 0, ws.proj, 0, bn, c);
        float[] residA = spec.residualPostLayerNorm() ? ws.ln1[0] : in;
        float[] r2 = ws.resid2[s];
        Elementwise.add(residA, 0, ws.proj, 0, r2, 0, bn * c);
        // MLP sub-block
        LayerNorm.forward(r2, 0, bw.ln2().gamma(), bw.ln2().beta(), bw.ln2().eps(), ws.ln2[0], 0, ws.ln2Mean[s],
                ws.ln2Rstd[s], 0, bn, c);
        bw.fc().forward(kernels, ws.ln2[0], 0, ws.fc[s], 0, bn);
        Gelu.forward(ws.fc[s], 0, ws.gelu[0], 0, bn * 4 * c);
        bw.mlpProj().forward(kernels, ws.gelu[0], 0, ws.proj, 0, bn);
        if (dropP(Dropout.RESID_MLP) > 0f) dropout.apply(Dropout.RESID_MLP, l, ws.proj, 0, ws.proj, 0, bn, c);
        float[] residB = spec.residualPostLayerNorm() ? ws.ln2[0] : r2;
        Elementwise.add(residB, 0, ws.proj, 0, out, 0, bn * c);
    }

    /**
     * Gradient checkpointing: re-runs block {@code l} of the last forward (from position 0) from its saved input
     * {@code ws.residual[l]}, refilling slot {@link Workspace#slot} (0 when checkpointed) and the cache's K/V for the
     * layer; the block output is discarded. Adapters' hooks run again, so they must be deterministic per step.
     */
    public void recomputeBlock(int l, Workspace ws, KvCache cache, int b, int n) {
        if (!ws.saveForBackward) throw new IllegalStateException("recompute needs the residual stream of every layer");
        blockForward(l, ws.residual[l], ws.proj, ws.slot(l), b, n, 0, cache, ws);
    }

    /**
     * Logits of {@code rows} consecutive rows of {@code ws.lnf} starting at {@code row0}, into {@code dst (rows, V)}.
     */
    public void logits(Workspace ws, int row0, int rows, float[] dst, int dstOff) {
        kernels.matmul(ws.lnf, row0 * spec.c(), w.wte(), null, dst, dstOff, rows);
    }
}
