package dev.qlora4j.runtime.config;

import java.util.List;
import java.util.OptionalInt;

/**
 * BLOOM ({@code model_type: bloom}) with transformers' {@code BloomConfig} defaults; {@code n_embed} is an alias of
 * {@code hidden_size}, {@code num_attention_heads} of {@code n_head}, {@code num_hidden_layers} of {@code n_layer}.
 * The MLP is always 4C wide with GELU (tanh approximation); positions come from ALiBi, so there is no position limit.
 *
 * @param applyResidualConnectionPostLayernorm residual taken after the layer norm instead of before (default false)
 * @param pretrainingTp                       tensor-parallel degree used in pretraining (default 1)
 * @param slowButExact                        emulate the TP-sliced dense layers exactly (default false)
 */
public record BloomConfig(int hiddenSize, int numHeads, int numLayers, int vocabSize, double layerNormEpsilon,
                          boolean applyResidualConnectionPostLayernorm, double hiddenDropout, double attentionDropout,
                          int pretrainingTp, boolean slowButExact, boolean tieWordEmbeddings, OptionalInt bosTokenId,
                          List<Integer> eosTokenIds, OptionalInt padTokenId, String torchDtype)
        implements ModelConfig {

    public static final String MODEL_TYPE = "bloom";

    public BloomConfig {
        eosTokenIds = List.copyOf(eosTokenIds);
    }

    @Override
    public String modelType() {
        return MODEL_TYPE;
    }

    @Override
    public int intermediateSize() {
        return 4 * hiddenSize;
    }

    static BloomConfig from(JsonFields f) {
        int c = f.requirePositiveInt("hidden_size", "n_embed");
        int nh = f.requirePositiveInt("n_head", "num_attention_heads");
        f.checkDivides(c, nh, "n_head");
        int layers = f.requirePositiveInt("n_layer", "num_hidden_layers");
        int vocab = f.requirePositiveInt("vocab_size");
        double eps = f.optDouble(1e-5, "layer_norm_epsilon");
        if (eps <= 0) throw f.error("layer_norm_epsilon", "must be positive, got " + eps);
        int tp = f.optInt(1, "pretraining_tp");
        if (tp <= 0) throw f.error("pretraining_tp", "must be positive, got " + tp);
        return new BloomConfig(c, nh, layers, vocab, eps,
                f.optBool(false, "apply_residual_connection_post_layernorm"),
                f.optUnit(0.0, "hidden_dropout"), f.optUnit(0.0, "attention_dropout"), tp,
                f.optBool(false, "slow_but_exact"), f.optBool(true, "tie_word_embeddings"),
                OptionalInt.of(f.optInt(1, "bos_token_id")), f.optIntList(List.of(2), "eos_token_id"),
                f.optInt("pad_token_id"), f.optString(null, "torch_dtype"));
    }
}
