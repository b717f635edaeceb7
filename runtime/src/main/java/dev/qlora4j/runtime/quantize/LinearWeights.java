package dev.qlora4j.runtime.quantize;

import java.util.regex.Pattern;

/**
 * Which tensors of a checkpoint are the weights of linear layers (the ones bitsandbytes quantizes), by
 * {@code model_type}, and whether they are GPT-2 Conv1D weights stored {@code [in, out]}. Names are canonical
 * ({@code transformer.} prefix removed). Embeddings, the LM head, LayerNorms and biases are not linear weights here:
 * QLoRA keeps them as stored.
 */
enum LinearWeights {
    GPT2(Pattern.compile("h\\.\\d+\\.(attn\\.c_attn|attn\\.c_proj|mlp\\.c_fc|mlp\\.c_proj)\\.weight"), true),
    BLOOM(Pattern.compile("h\\.\\d+\\.(self_attention\\.query_key_value|self_attention\\.dense|mlp\\.dense_h_to_4h"
            + "|mlp\\.dense_4h_to_h)\\.weight"), false);

    private final Pattern pattern;
    /** Stored {@code [in, out]} (transformers' Conv1D): transpose to {@code [out, in]} before quantizing. */
    final boolean conv1d;

    LinearWeights(Pattern pattern, boolean conv1d) {
        this.pattern = pattern;
        this.conv1d = conv1d;
    }

    boolean isLinearWeight(String canonicalName) {
        return pattern.matcher(canonicalName).matches();
    }

    static LinearWeights of(String modelType) {
        return switch (modelType) {
            case "gpt2" -> GPT2;
            case "bloom" -> BLOOM;
            default -> throw new QuantizeException("model_type '" + modelType + "' is not supported (gpt2, bloom)");
        };
    }
}
