package dev.qlora4j.runtime.model;

import dev.qlora4j.quant.weight.DenseWeight;

/**
 * Every weight of a decoder model. Embeddings stay unquantized (as stored) and the LM head is tied to the token
 * embedding, as in GPT-2 and BLOOM.
 *
 * @param wte    token embedding (V, C), also the LM head
 * @param wpe    position embedding (maxT, C) for GPT-2, null for BLOOM
 * @param embLn  BLOOM's word_embeddings_layernorm, null for GPT-2
 */
public record DecoderWeights(DecoderSpec spec, DenseWeight wte, DenseWeight wpe, LayerNormParams embLn,
                             BlockWeights[] blocks, LayerNormParams lnF) {
    public DecoderWeights {
        if (blocks.length != spec.l()) throw new IllegalArgumentException("expected " + spec.l() + " blocks");
        if (wte.rows() != spec.v() || wte.cols() != spec.c()) {
            throw new IllegalArgumentException("token embedding is [" + wte.rows() + ", " + wte.cols() + "], expected ["
                    + spec.v() + ", " + spec.c() + "]");
        }
    }

    /** All linears in module order (for hooks and adapters). */
    public java.util.List<Linear> linears() {
        var out = new java.util.ArrayList<Linear>();
        for (BlockWeights b : blocks) {
            out.add(b.qkv());
            out.add(b.attnProj());
            out.add(b.fc());
            out.add(b.mlpProj());
        }
        return out;
    }
}
