package dev.qlora4j.runtime.model;

import dev.qlora4j.runtime.ops.DropoutMask;

/**
 * Base-model dropout as transformers applies it in {@code model.train()}: on the embedding output ({@code embd}:
 * GPT-2's embd_pdrop; BLOOM has none), on the softmax probabilities before the weighted sum of V ({@code attn}:
 * attn_pdrop, BLOOM's attention_dropout) and on the attention and MLP output projections before each residual add
 * ({@code resid}: resid_pdrop, BLOOM's hidden_dropout). Inverted (kept values scaled by {@code 1/(1-p)}), with
 * deterministic masks: a {@link DropoutMask} hash of (seed, site, layer, {@link #step()}, row, column), so the
 * forward, gradient checkpointing's recompute and the backward of one step see the same masks.
 *
 * <p>Applies only while {@link #training()} is set (and some p &gt; 0); off, the forward is exactly the plain one.
 */
public final class Dropout {
    /** Mask sites (part of the hash key). */
    public static final int EMBD = 1, ATTN = 2, RESID_ATTN = 3, RESID_MLP = 4;

    private final float embd, attn, resid;
    private final long seed;
    private boolean training;
    private long step;

    /** Probabilities in [0, 1). */
    public Dropout(double embd, double attn, double resid, long seed) {
        check(embd, "embedding");
        check(attn, "attention");
        check(resid, "residual");
        this.embd = (float) embd;
        this.attn = (float) attn;
        this.resid = (float) resid;
        this.seed = seed;
    }

    private static void check(double p, String what) {
        if (!(p >= 0 && p < 1)) throw new IllegalArgumentException(what + " dropout must be in [0, 1), got " + p);
    }

    public float embd() { return embd; }
    public float attn() { return attn; }
    public float resid() { return resid; }
    public long seed() { return seed; }

    public boolean training() {
        return training;
    }

    /** Training mode on (dropout applies) or off (evaluation). */
    public void setTraining(boolean training) {
        this.training = training;
    }

    public long step() {
        return step;
    }

    /** Selects the masks: one value per micro-batch, the same for its forward, recompute and backward. */
    public void setStep(long step) {
        this.step = step;
    }

    /** Whether dropout applies now. */
    public boolean active() {
        return training && (embd > 0 || attn > 0 || resid > 0);
    }

    /** Probability of a site now: 0 when not {@link #active()}. */
    public float p(int site) {
        if (!training) return 0f;
        return switch (site) {
            case EMBD -> embd;
            case ATTN -> attn;
            case RESID_ATTN, RESID_MLP -> resid;
            default -> throw new IllegalArgumentException("site " + site);
        };
    }

    /** Mask key of a site of a layer at the current step. */
    public long key(int site, int layer) {
        return DropoutMask.key(seed, site, layer, step);
    }

    /**
     * {@code dst = src ⊙ mask} of (site, layer) over {@code rows × cols} at the current step (a copy, or nothing in
     * place, when the site's p is 0 now).
     */
    public void apply(int site, int layer, float[] src, int srcOff, float[] dst, int dstOff, int rows, int cols) {
        DropoutMask.apply(src, srcOff, dst, dstOff, rows, cols, p(site), key(site, layer));
    }

    /** The mask (0 or 1/(1-p)) of (site, layer) over {@code rows × cols} at the current step, for tests. */
    public float[] mask(int site, int layer, int rows, int cols) {
        float[] ones = new float[rows * cols];
        java.util.Arrays.fill(ones, 1f);
        apply(site, layer, ones, 0, ones, 0, rows, cols);
        return ones;
    }

    @Override
    public String toString() {
        return "Dropout[embd=" + embd + ", attn=" + attn + ", resid=" + resid + ", seed=" + seed + "]";
    }
}
