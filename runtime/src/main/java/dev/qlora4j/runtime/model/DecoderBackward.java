package dev.qlora4j.runtime.model;

import dev.qlora4j.quant.kernel.KernelPool;
import dev.qlora4j.quant.kernel.Kernels;
import dev.qlora4j.runtime.ops.Alibi;
import dev.qlora4j.runtime.ops.Attention;
import dev.qlora4j.runtime.ops.AttentionBackward;
import dev.qlora4j.runtime.ops.Elementwise;
import dev.qlora4j.runtime.ops.Gelu;
import dev.qlora4j.runtime.ops.LayerNorm;
import dev.qlora4j.runtime.ops.LmHeadLoss;
import dev.qlora4j.runtime.ops.QkvLayout;

import java.util.Arrays;

/**
 * The backward pass of a {@link DecoderModel}, llm.c style: gradient buffers allocated once from (B, T, spec), then
 * ln_f, every block in reverse (MLP, then attention; BLOOM's post-LayerNorm residual variant too) down to
 * d(embeddings). Frozen base linears only produce {@code dX = dY·W} through {@link Linear#backward}, which also runs
 * every {@link LinearHook}'s backward, so adapters accumulate their own gradients on the way.
 *
 * <p>Inputs: a {@link Workspace} filled by {@link DecoderModel#forward} from position 0 with
 * {@code saveForBackward = true}, and the {@link KvCache} of that forward (its keys and values are the saved K and
 * V). LayerNorm γ/β gradients (full fine-tuning) are collected only after {@link #collectLayerNormGrads()}.
 *
 * <p>Gradient checkpointing plugs in through {@link BlockActivations}: backward asks it, layer by layer from the last,
 * which workspace slot holds that block's activations; a recomputing implementation re-runs the block's forward from
 * {@code ws.residual[l]} into a scratch slot and returns that slot.
 */
public final class DecoderBackward {

    /** Where block l's forward activations are (see the class comment); the default reads the saved slot. */
    @FunctionalInterface
    public interface BlockActivations {
        /** @return the slot s such that {@code ws.qkv[s], ws.fc[s], ...} hold block {@code layer}'s activations */
        int slotFor(int layer, Workspace ws, KvCache cache, int b, int n);
    }

    public static final BlockActivations SAVED = (layer, ws, cache, b, n) -> {
        if (!ws.saveForBackward) throw new IllegalStateException("backward needs a workspace with saveForBackward");
        return ws.slot(layer);
    };

    /**
     * Gradient checkpointing: with a {@link Workspace.Activations#CHECKPOINTED} workspace, each block is re-run from
     * its saved input just before its backward; with a SAVED workspace it reads the saved slot.
     */
    public BlockActivations recomputing() {
        return (layer, ws, cache, b, n) -> {
            if (ws.activations == Workspace.Activations.CHECKPOINTED) model.recomputeBlock(layer, ws, cache, b, n);
            return SAVED.slotFor(layer, ws, cache, b, n);
        };
    }

    private final DecoderModel model;
    private final DecoderSpec spec;
    private final Kernels kernels;
    private final float[] slopes; // (NH) ALiBi slopes, BLOOM only
    public final int b, t;

    public final float[] dlnf;  // (B, T, C) d loss / d ln_f output: the LM head loss writes it, backward reads it
    private final float[] dres; // (B, T, C) d loss / d residual stream at the current point; ends as d(embeddings)
    private final float[] dln;  // (B, T, C) d loss / d a LayerNorm output (ln2, then ln1)
    private final float[] datt; // (B, T, C) d loss / d attention output (before c_proj)
    private final float[] dqkv; // (B, T, 3C)
    private final float[] dfc;  // (B, T, 4C) d loss / d GELU output, then (in place) d fc output
    private final AttentionBackward attention;
    private BlockActivations activations; // recomputing() unless replaced

    // optional LayerNorm parameter gradients, accumulated (zero them with zeroLayerNormGrads)
    private float[][] dLn1Gamma, dLn1Beta, dLn2Gamma, dLn2Beta; // L × (C)
    private float[] dLnFGamma, dLnFBeta;                         // (C)

    // embedding backward scratch, allocated on first use
    private float[] embPre, embMean, embRstd; // (B, T, C), (B, T), (B, T)

    public DecoderBackward(DecoderModel model, int b, int t) {
        this.model = model;
        this.spec = model.spec();
        this.kernels = model.kernels();
        this.slopes = spec.arch().alibi ? Alibi.slopes(spec.nh()) : null;
        this.b = b;
        this.t = t;
        int c = spec.c(), bt = b * t;
        dlnf = new float[bt * c];
        dres = new float[bt * c];
        dln = new float[bt * c];
        datt = new float[bt * c];
        dqkv = new float[bt * 3 * c];
        dfc = new float[bt * 4 * c];
        attention = new AttentionBackward(KernelPool.shared().threads(), t);
        activations = recomputing();
    }

    public DecoderModel model() {
        return model;
    }

    /** Replaces how block activations are found (gradient checkpointing); {@link #SAVED} is the default. */
    public void setBlockActivations(BlockActivations activations) {
        this.activations = activations;
    }

    /** From now on, backward also accumulates every LayerNorm's dγ and dβ (for full fine-tuning). */
    public void collectLayerNormGrads() {
        if (dLn1Gamma != null) return;
        int l = spec.l(), c = spec.c();
        dLn1Gamma = new float[l][c];
        dLn1Beta = new float[l][c];
        dLn2Gamma = new float[l][c];
        dLn2Beta = new float[l][c];
        dLnFGamma = new float[c];
        dLnFBeta = new float[c];
    }

    public void zeroLayerNormGrads() {
        if (dLn1Gamma == null) return;
        for (int i = 0; i < spec.l(); i++) {
            Arrays.fill(dLn1Gamma[i], 0f);
            Arrays.fill(dLn1Beta[i], 0f);
            Arrays.fill(dLn2Gamma[i], 0f);
            Arrays.fill(dLn2Beta[i], 0f);
        }
        Arrays.fill(dLnFGamma, 0f);
        Arrays.fill(dLnFBeta, 0f);
    }

    /** L × (C), or null without {@link #collectLayerNormGrads()}. */
    public float[][] dLn1Gamma() { return dLn1Gamma; }
    public float[][] dLn1Beta() { return dLn1Beta; }
    public float[][] dLn2Gamma() { return dLn2Gamma; }
    public float[][] dLn2Beta() { return dLn2Beta; }
    /** (C), or null without {@link #collectLayerNormGrads()}. */
    public float[] dLnFGamma() { return dLnFGamma; }
    public float[] dLnFBeta() { return dLnFBeta; }

    /**
     * Loss of the forward in {@code ws} against {@code targets} and the full backward: the fused chunked LM head +
     * cross-entropy writes {@link #dlnf}, then {@link #backward}.
     *
     * @param targets (B, n) at tgtOff, {@link LmHeadLoss#IGNORE_INDEX} where no loss is wanted
     * @return the mean loss over the non-ignored targets
     */
    public double lossAndBackward(LmHeadLoss head, Workspace ws, KvCache cache, int[] targets, int tgtOff, int b,
                                  int n) {
        double loss = head.forwardBackward(ws.lnf, 0, targets, tgtOff, b * n, dlnf, 0);
        backward(ws, cache, b, n);
        return loss;
    }

    /**
     * Backpropagates {@link #dlnf} (B, n, C) through ln_f and every block.
     *
     * @return d loss / d embeddings (B, n, C): the gradient w.r.t. the residual stream entering block 0 (after
     * BLOOM's embedding LayerNorm, and after the embedding dropout when it applies); valid until the next call.
     * {@link #embeddingBackward} takes it further (through the embedding dropout's mask, in place).
     */
    public float[] backward(Workspace ws, KvCache cache, int b, int n) {
        if (b > this.b || n > this.t) {
            throw new IllegalArgumentException("batch " + b + "×" + n + " exceeds " + this.b + "×" + this.t);
        }
        if (cache.length() != n) {
            throw new IllegalArgumentException("backward needs the cache of one forward from position 0 over " + n
                    + " positions; it holds " + cache.length());
        }
        int c = spec.c(), bn = b * n, nl = spec.l();
        LayerNormParams lnF = model.weights().lnF();
        LayerNorm.backward(dlnf, 0, ws.residualAt(nl), 0, lnF.gamma(), ws.lnfMean, ws.lnfRstd,
                0, dres, 0, dLnFGamma, dLnFBeta, bn, c, false);
        for (int l = nl - 1; l >= 0; l--) {
            int s = activations.slotFor(l, ws, cache, b, n);
            blockBackward(l, s, ws, cache, b, n);
        }
        return dres;
    }

    /** dres holds d(block output) (B, n, C) on entry and d(block input) on exit. */
    private void blockBackward(int l, int s, Workspace ws, KvCache cache, int b, int n) {
        BlockWeights bw = model.weights().blocks()[l];
        int c = spec.c(), bn = b * n, nh = spec.nh(), hs = spec.hs();
        boolean postLn = spec.residualPostLayerNorm();
        QkvLayout layout = spec.arch().qkvLayout;
        float[] in = ws.residual[l]; // (B, n, C) block input
        LayerNormParams ln1 = bw.ln1(), ln2 = bw.ln2();

        Dropout drop = model.dropout();
        // MLP sub-block: out = (postLn ? ln2 : r2) + drop(mlpProj(gelu(fc(ln2 = LN2(r2)))))
        float[] dproj = dres;
        if (model.dropP(Dropout.RESID_MLP) > 0f) { // d mlpProj output = dres ⊙ mask, into the free datt
            drop.apply(Dropout.RESID_MLP, l, dres, 0, datt, 0, bn, c);
            dproj = datt;
        }
        // SAVED: the shared ln1/ln2/gelu slot holds another layer's values, recompute this layer's (same kernels, same
        // bits); CHECKPOINTED: the block was just re-run and the slot is this layer's
        boolean recompute = ws.activations == Workspace.Activations.SAVED;
        if (recompute) {
            LayerNorm.forward(ws.resid2[s], 0, ln2.gamma(), ln2.beta(), ln2.eps(), ws.ln2[0], 0, ws.ln2Mean[s],
                    ws.ln2Rstd[s], 0, bn, c);
            Gelu.forward(ws.fc[s], 0, ws.gelu[0], 0, bn * 4 * c);
        }
        bw.mlpProj().backward(kernels, ws.gelu[0], 0, dproj, 0, dfc, 0, bn, false); // dfc (B, n, 4C) = d gelu
        Gelu.backward(ws.fc[s], 0, dfc, 0, dfc, 0, bn * 4 * c);                    // dfc = d fc
        bw.fc().backward(kernels, ws.ln2[0], 0, dfc, 0, dln, 0, bn, false);         // dln (B, n, C) = d ln2
        if (postLn) {
            add(dres, dln, bn * c); // residual taken after the LayerNorm
            LayerNorm.backward(dln, 0, ws.resid2[s], 0, ln2.gamma(), ws.ln2Mean[s], ws.ln2Rstd[s], 0, dres, 0,
                    at(dLn2Gamma, l), at(dLn2Beta, l), bn, c, false);
        } else {
            LayerNorm.backward(dln, 0, ws.resid2[s], 0, ln2.gamma(), ws.ln2Mean[s], ws.ln2Rstd[s], 0, dres, 0,
                    at(dLn2Gamma, l), at(dLn2Beta, l), bn, c, true);
        }
        // dres = d r2 (B, n, C)

        // attention sub-block: r2 = (postLn ? ln1 : in) + drop(attnProj(attn(qkv(ln1 = LN1(in)))))
        dproj = dres;
        if (model.dropP(Dropout.RESID_ATTN) > 0f) { // d attnProj output = dres ⊙ mask, into the free dln
            drop.apply(Dropout.RESID_ATTN, l, dres, 0, dln, 0, bn, c);
            dproj = dln;
        }
        bw.attnProj().backward(kernels, ws.att[s], 0, dproj, 0, datt, 0, bn, false); // datt (B, n, C)
        if (cache.shared && recompute) { // another layer's K/V are there (a re-run block stored its own)
            Attention.storeKv(ws.qkv[s], 0, layout, cache.k[l], cache.v[l], 0, b, n, 0, cache.maxT, nh, hs);
        }
        float pa = model.dropP(Dropout.ATTN);
        attention.setDropout(pa, pa > 0f ? drop.key(Dropout.ATTN, l) : 0L);
        try {
            attention.run(KernelPool.shared(), kernels, datt, ws.qkv[s], layout, cache.k[l], cache.v[l], ws.lse[s],
                    slopes, dqkv, b, n, cache.maxT, nh, hs);                             // dqkv (B, n, 3C)
        } finally {
            attention.setDropout(0f, 0L);
        }
        if (recompute) {                                                                 // as ln2 above
            LayerNorm.forward(in, 0, ln1.gamma(), ln1.beta(), ln1.eps(), ws.ln1[0], 0, ws.ln1Mean[s], ws.ln1Rstd[s], 0,
                    bn, c);
        }
        bw.qkv().backward(kernels, ws.ln1[0], 0, dqkv, 0, dln, 0, bn, false);           // dln = d ln1
        if (postLn) {
            add(dres, dln, bn * c);
            LayerNorm.backward(dln, 0, in, 0, ln1.gamma(), ws.ln1Mean[s], ws.ln1Rstd[s], 0, dres, 0,
                    at(dLn1Gamma, l), at(dLn1Beta, l), bn, c, false);
        } else {
            LayerNorm.backward(dln, 0, in, 0, ln1.gamma(), ws.ln1Mean[s], ws.ln1Rstd[s], 0, dres, 0,
                    at(dLn1Gamma, l), at(dLn1Beta, l), bn, c, true);
        }
        // dres = d in (B, n, C)
    }

    /**
     * Embedding backward (full fine-tuning; not needed for LoRA): takes d(embeddings) from the last {@link #backward}
     * through BLOOM's embedding LayerNorm and scatters it into the token (and GPT-2 position) embedding gradients.
     *
     * @param tokens     (B, n) at tokOff, the forward's input ids
     * @param dWte       (V, C) accumulated into, or null
     * @param dWpe       (maxT, C) accumulated into (GPT-2), or null
     * @param dEmbLnGamma (C) accumulated into (BLOOM), or null
     * @param dEmbLnBeta  (C) accumulated into (BLOOM), or null
     */
    public void embeddingBackward(int[] tokens, int tokOff, int b, int n, float[] dWte, float[] dWpe,
                                  float[] dEmbLnGamma, float[] dEmbLnBeta) {
        embeddingBackward(tokens, tokOff, b, n, dWte, 0, dWpe, 0, dEmbLnGamma, dEmbLnBeta);
    }

    /** As above with {@code dWte} at {@code dWteOff} and {@code dWpe} at {@code dWpeOff}. */
    public void embeddingBackward(int[] tokens, int tokOff, int b, int n, float[] dWte, int dWteOff, float[] dWpe,
                                  int dWpeOff, float[] dEmbLnGamma, float[] dEmbLnBeta) {
        DecoderWeights w = model.weights();
        int c = spec.c(), bn = b * n;
        float[] d = dres; // (B, n, C) d embeddings
        if (model.dropP(Dropout.EMBD) > 0f) { // d(embedding before its dropout), in place
            model.dropout().apply(Dropout.EMBD, 0, dres, 0, dres, 0, bn, c);
        }
        if (w.embLn() != null) {
            if (embPre == null) {
                embPre = new float[this.b * this.t * c];
                embMean = new float[this.b * this.t];
                embRstd = new float[this.b * this.t];
            }
            for (int i = 0; i < bn; i++) w.wte().dequantizeRow(tokens[tokOff + i], embPre, i * c); // (B, n, C)
            LayerNormParams e = w.embLn();
            LayerNorm.forward(embPre, 0, e.gamma(), e.beta(), e.eps(), dln, 0, embMean, embRstd, 0, bn, c);
            LayerNorm.backward(dres, 0, embPre, 0, e.gamma(), embMean, embRstd, 0, dln, 0, dEmbLnGamma, dEmbLnBeta,
                    bn, c, false);
            d = dln; // (B, n, C) d word embeddings
        }
        for (int i = 0; i < bn; i++) {
            int row = i * c;
            if (dWte != null) {
                int dst = dWteOff + tokens[tokOff + i] * c;
                for (int j = 0; j < c; j++) dWte[dst + j] += d[row + j];
            }
            if (dWpe != null && w.wpe() != null) {
                int dst = dWpeOff + (i % n) * c;
                for (int j = 0; j < c; j++) dWpe[dst + j] += d[row + j];
            }
        }
    }

    private static float[] at(float[][] a, int l) {
        return a == null ? null : a[l];
    }

    /** dst += src over n floats. */
    private static void add(float[] src, float[] dst, int n) {
        Elementwise.add(dst, 0, src, 0, dst, 0, n);
    }
}
