package dev.qlora4j.runtime.config;

import java.util.List;
import java.util.OptionalInt;

/**
 * GPT-2 ({@code model_type: gpt2}) with transformers' {@code GPT2Config} defaults; {@code hidden_size},
 * {@code num_attention_heads}, {@code num_hidden_layers} and {@code max_position_embeddings} are accepted as aliases of
 * {@code n_embd}, {@code n_head}, {@code n_layer} and {@code n_positions}.
 *
 * @param maxPositions       P: rows of the position embedding ({@code n_positions}, default 1024)
 * @param intermediateSize   {@code n_inner}, default 4C
 * @param activation         {@code activation_function}, default {@code gelu_new} (tanh approximation)
 * @param scaleAttnWeights   divide scores by √HS (default true)
 */
public record Gpt2Config(int hiddenSize, int numHeads, int numLayers, int maxPositions, int vocabSize,
                         int intermediateSize, double layerNormEpsilon, String activation, double embdPdrop,
                         double attnPdrop, double residPdrop, boolean scaleAttnWeights,
                         boolean scaleAttnByInverseLayerIdx, boolean reorderAndUpcastAttn, boolean tieWordEmbeddings,
                         OptionalInt bosTokenId, List<Integer> eosTokenIds, OptionalInt padTokenId, String torchDtype)
        implements ModelConfig {

    public static final String MODEL_TYPE = "gpt2";
    static final int DEFAULT_TOKEN = 50256;

    public Gpt2Config {
        eosTokenIds = List.copyOf(eosTokenIds);
    }

    @Override
    public String modelType() {
        return MODEL_TYPE;
    }

    static Gpt2Config from(JsonFields f) {
        int c = f.requirePositiveInt("n_embd", "hidden_size");
        int nh = f.requirePositiveInt("n_head", "num_attention_heads");
        f.checkDivides(c, nh, "n_head");
        int layers = f.requirePositiveInt("n_layer", "num_hidden_layers");
        int vocab = f.requirePositiveInt("vocab_size");
        int positions = f.optInt(1024, "n_positions", "max_position_embeddings");
        if (positions <= 0) throw f.error("n_positions", "must be positive, got " + positions);
        int inner = f.optInt(4 * c, "n_inner");
        if (inner <= 0) throw f.error("n_inner", "must be positive, got " + inner);
        double eps = f.optDouble(1e-5, "layer_norm_epsilon");
        if (eps <= 0) throw f.error("layer_norm_epsilon", "must be positive, got " + eps);
        return new Gpt2Config(c, nh, layers, positions, vocab, inner, eps,
                f.optString("gelu_new", "activation_function"),
                f.optUnit(0.1, "embd_pdrop"), f.optUnit(0.1, "attn_pdrop"), f.optUnit(0.1, "resid_pdrop"),
                f.optBool(true, "scale_attn_weights"), f.optBool(false, "scale_attn_by_inverse_layer_idx"),
                f.optBool(false, "reorder_and_upcast_attn"), f.optBool(true, "tie_word_embeddings"),
                OptionalInt.of(f.optInt(DEFAULT_TOKEN, "bos_token_id")),
                f.optIntList(List.of(DEFAULT_TOKEN), "eos_token_id"), f.optInt("pad_token_id"),
                f.optString(null, "torch_dtype"));
    }
}
