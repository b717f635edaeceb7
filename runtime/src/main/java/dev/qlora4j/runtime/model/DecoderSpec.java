package dev.qlora4j.runtime.model;

/**
 * The shape of a decoder-only model, in llm.c's letters.
 *
 * @param l                      layers
 * @param c                      channels (hidden size)
 * @param nh                     attention heads; HS = C / NH
 * @param v                      vocabulary size
 * @param maxT                   maximum positions (GPT-2 n_positions; BLOOM has no limit, the loader picks one)
 * @param eps                    LayerNorm epsilon
 * @param residualPostLayerNorm  BLOOM's apply_residual_connection_post_layernorm
 */
public record DecoderSpec(Architecture arch, int l, int c, int nh, int v, int maxT, float eps,
                          boolean residualPostLayerNorm) {
    public DecoderSpec {
        if (l <= 0 || c <= 0 || nh <= 0 || v <= 0 || maxT <= 0) {
            throw new IllegalArgumentException("bad model shape: L=" + l + " C=" + c + " NH=" + nh + " V=" + v
                    + " maxT=" + maxT);
        }
        if (c % nh != 0) throw new IllegalArgumentException("hidden size " + c + " not divisible by heads " + nh);
    }

    public int hs() {
        return c / nh;
    }
}
