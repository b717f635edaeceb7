package dev.qlora4j.runtime.model;

/**
 * One transformer block: {@code x + proj(attn(ln1(x)))}, then {@code x + mlpProj(gelu(fc(ln2(x))))}.
 * GPT-2 names: ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj. BLOOM: input_layernorm,
 * self_attention.query_key_value, self_attention.dense, post_attention_layernorm, mlp.dense_h_to_4h,
 * mlp.dense_4h_to_h.
 */
public record BlockWeights(LayerNormParams ln1, Linear qkv, Linear attnProj, LayerNormParams ln2, Linear fc,
                           Linear mlpProj) {
}
