package dev.qlora4j.runtime.generate;

/**
 * How to pick the next token, with Hugging Face generate()'s semantics: repetition penalty first, then temperature,
 * top-k and top-p. {@code greedy} ignores the rest (but not the repetition penalty).
 *
 * @param topK 0 disables
 * @param topP 1.0 disables
 * @param repetitionPenalty 1.0 disables; scores of seen tokens are divided (if positive) or multiplied by it
 */
public record SamplingParams(boolean greedy, float temperature, int topK, float topP, float repetitionPenalty,
                             long seed) {
    public SamplingParams {
        if (!greedy && !(temperature > 0)) throw new IllegalArgumentException("temperature must be > 0, got " + temperature);
        if (topK < 0) throw new IllegalArgumentException("top-k must be >= 0, got " + topK);
        if (!(topP > 0 && topP <= 1)) throw new IllegalArgumentException("top-p must be in (0, 1], got " + topP);
        if (!(repetitionPenalty > 0)) throw new IllegalArgumentException("repetition penalty must be > 0, got "
                + repetitionPenalty);
    }

    public static SamplingParams greedyDecoding() {
        return new SamplingParams(true, 1f, 0, 1f, 1f, 0L);
    }
}
