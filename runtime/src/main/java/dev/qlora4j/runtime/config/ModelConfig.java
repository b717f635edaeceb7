package dev.qlora4j.runtime.config;

import java.nio.file.Path;
import java.util.List;
import java.util.OptionalInt;

/**
 * A Hugging Face {@code config.json} for a supported {@code model_type} ({@code gpt2}, {@code bloom}), read with
 * transformers' defaults and aliases. The shape fields (width, heads, layers, vocabulary) are required: transformers
 * would silently fall back to a default model's shape, which never matches the weights next to the file.
 */
public sealed interface ModelConfig permits Gpt2Config, BloomConfig {

    /** {@code model_type} values this runtime reads. */
    List<String> SUPPORTED_TYPES = List.of(Gpt2Config.MODEL_TYPE, BloomConfig.MODEL_TYPE);

    String modelType();

    /** C: width of the residual stream. */
    int hiddenSize();

    /** NH: attention heads. */
    int numHeads();

    /** L: transformer blocks. */
    int numLayers();

    /** V: vocabulary size (rows of the embedding). */
    int vocabSize();

    /** Width of the MLP's hidden layer (4C unless the config says otherwise). */
    int intermediateSize();

    double layerNormEpsilon();

    /** Whether the LM head reuses the token embedding. */
    boolean tieWordEmbeddings();

    OptionalInt bosTokenId();

    /** End-of-sequence ids (HF allows one or several); empty when none. */
    List<Integer> eosTokenIds();

    OptionalInt padTokenId();

    /** {@code torch_dtype} as written (e.g. "float32"), or null. */
    String torchDtype();

    /** HS: per-head width. */
    default int headSize() {
        return hiddenSize() / numHeads();
    }

    /** Reads {@code file} (a config.json). */
    static ModelConfig load(Path file) {
        return from(JsonFields.read(file));
    }

    /** Parses {@code json}; {@code source} names it in errors. */
    static ModelConfig parse(String json, String source) {
        return from(JsonFields.parse(json, source));
    }

    private static ModelConfig from(JsonFields f) {
        if (!f.has("model_type"))
            throw f.error("model_type", "is missing (expected one of " + SUPPORTED_TYPES + ")");
        String type = f.optString(null, "model_type");
        return switch (type) {
            case Gpt2Config.MODEL_TYPE -> Gpt2Config.from(f);
            case BloomConfig.MODEL_TYPE -> BloomConfig.from(f);
            default -> throw new ConfigException(f.source() + ": unsupported model_type '" + type + "' (supported: "
                    + String.join(", ", SUPPORTED_TYPES) + ")");
        };
    }
}
