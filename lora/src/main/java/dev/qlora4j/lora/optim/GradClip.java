package dev.qlora4j.lora.optim;

import java.util.List;

/**
 * Global-norm gradient clipping as {@code torch.nn.utils.clip_grad_norm_(params, max_norm)} (norm type 2,
 * {@code error_if_nonfinite=False}): each slice's L2 norm in float, the total the L2 norm of those, then every
 * grad multiplied by {@code min(1, max_norm / (total + 1e-6))} — computed, as torch does for a 0-dim float
 * tensor, as {@code reciprocal(total + 1e-6f) · max_norm} in float. A NaN/Inf total makes the grads NaN, as in
 * torch; callers that want to skip such steps check the returned norm first with {@link #totalNorm}.
 */
public final class GradClip {

    private GradClip() {}

    /** The total L2 norm over the slices, as clip_grad_norm_ computes it (float per-slice norms, then their norm). */
    public static float totalNorm(float[] grads, List<ParamSlice> slices) {
        double sumSq = 0;
        for (int s = 0, n = slices.size(); s < n; s++) {
            ParamSlice p = slices.get(s);
            double acc = 0; // torch reduces in float with cascaded sums; double here is at least as exact
            for (int i = p.offset(), e = p.end(); i < e; i++) acc += (double) grads[i] * grads[i];
            float norm = (float) Math.sqrt(acc);
            sumSq += (double) norm * norm;
        }
        return (float) Math.sqrt(sumSq);
    }

    /** Clips in place; returns the total norm before clipping (what torch returns and HF logs as grad_norm). */
    public static float clipGlobalNorm(float[] grads, List<ParamSlice> slices, double maxNorm) {
        float total = totalNorm(grads, slices);
        float coef = (1.0f / (total + 1e-6f)) * (float) maxNorm;
        if (!(coef < 1.0f) && !Float.isNaN(coef)) coef = 1.0f; // torch.clamp(max=1.0) keeps NaN
        if (coef != 1.0f) {
            for (int s = 0, n = slices.size(); s < n; s++) {
                ParamSlice p = slices.get(s);
                for (int i = p.offset(), e = p.end(); i < e; i++) grads[i] *= coef;
            }
        }
        return total;
    }

    /** Clips a whole buffer treated as one parameter tensor. */
    public static float clipGlobalNorm(float[] grads, double maxNorm) {
        return clipGlobalNorm(grads, List.of(new ParamSlice("all", 0, grads.length, true)), maxNorm);
    }
}
