package dev.qlora4j.runtime.config;

import java.nio.file.Path;
import java.util.List;
import java.util.OptionalInt;

/**
 * {@code generation_config.json}, with transformers' {@code GenerationConfig} defaults for every absent field (a
 * field of the wrong type is still an error naming the file and field).
 *
 * @param maxLength    prompt + generated tokens (default 20)
 * @param maxNewTokens generated tokens, overriding {@code maxLength} when present
 * @param topK         0 disables top-k (default 50)
 */
public record GenerationConfig(int maxLength, OptionalInt maxNewTokens, boolean doSample, double temperature,
                               int topK, double topP, double repetitionPenalty, OptionalInt bosTokenId,
                               List<Integer> eosTokenIds, OptionalInt padTokenId) {

    public GenerationConfig {
        eosTokenIds = List.copyOf(eosTokenIds);
    }

    public static final String FILE = "generation_config.json";

    /** transformers' defaults, no special tokens. */
    public static GenerationConfig defaults() {
        return new GenerationConfig(20, OptionalInt.empty(), false, 1.0, 50, 1.0, 1.0, OptionalInt.empty(), List.of(),
                OptionalInt.empty());
    }

    public static GenerationConfig load(Path file) {
        return from(JsonFields.read(file));
    }

    public static GenerationConfig parse(String json, String source) {
        return from(JsonFields.parse(json, source));
    }

    private static GenerationConfig from(JsonFields f) {
        GenerationConfig d = defaults();
        int maxLength = f.optInt(d.maxLength, "max_length");
        if (maxLength <= 0) throw f.error("max_length", "must be positive, got " + maxLength);
        OptionalInt maxNew = f.optInt("max_new_tokens");
        if (maxNew.isPresent() && maxNew.getAsInt() <= 0)
            throw f.error("max_new_tokens", "must be positive, got " + maxNew.getAsInt());
        double temperature = f.optDouble(d.temperature, "temperature");
        if (temperature < 0) throw f.error("temperature", "must not be negative, got " + temperature);
        int topK = f.optInt(d.topK, "top_k");
        if (topK < 0) throw f.error("top_k", "must not be negative, got " + topK);
        double topP = f.optUnit(d.topP, "top_p");
        double penalty = f.optDouble(d.repetitionPenalty, "repetition_penalty");
        if (penalty <= 0) throw f.error("repetition_penalty", "must be positive, got " + penalty);
        return new GenerationConfig(maxLength, maxNew, f.optBool(d.doSample, "do_sample"), temperature, topK, topP,
                penalty, f.optInt("bos_token_id"), f.optIntList(List.of(), "eos_token_id"), f.optInt("pad_token_id"));
    }
}
