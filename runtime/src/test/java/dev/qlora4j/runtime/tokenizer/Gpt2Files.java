package dev.qlora4j.runtime.tokenizer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** The real GPT-2 tokenizer files under {@code qlora.shared}, each loaded once per test JVM. */
final class Gpt2Files {

    private static final Map<String, ByteLevelBpeTokenizer> LOADED = new ConcurrentHashMap<>();

    private Gpt2Files() {}

    static Path shared() {
        return Path.of(System.getProperty("qlora.shared", "../shared")).toAbsolutePath().normalize();
    }

    static Path gpt2Dir() {
        return shared().resolve("data/gpt2-tokenizer");
    }

    static Path tinyGpt2Dir() {
        return shared().resolve("data/tiny-gpt2");
    }

    /** The four ways the same GPT-2 tokenizer is stored. */
    enum Source {
        /** tokenizer.json with "a b" merges (pretty-printed re-serialization). */
        TOKENIZER_JSON_STRING_MERGES,
        /** tokenizer.json saved by transformers 4.52 with [a, b] merges. */
        TOKENIZER_JSON_PAIR_MERGES,
        /** vocab.json + merges.txt. */
        VOCAB_JSON_MERGES_TXT,
        /** OpenAI's encoder.json + vocab.bpe. */
        ENCODER_JSON_VOCAB_BPE
    }

    static ByteLevelBpeTokenizer load(Source s) {
        return LOADED.computeIfAbsent(s.name(), k -> {
            try {
                return switch (s) {
                    case TOKENIZER_JSON_STRING_MERGES -> Tokenizers.fromTokenizerJson(gpt2Dir().resolve("tokenizer.json"));
                    case TOKENIZER_JSON_PAIR_MERGES -> Tokenizers.fromTokenizerJson(tinyGpt2Dir().resolve("tokenizer.json"));
                    case VOCAB_JSON_MERGES_TXT -> Tokenizers.fromVocabAndMerges(tinyGpt2Dir().resolve("vocab.json"), tinyGpt2Dir().resolve("merges.txt"));
                    case ENCODER_JSON_VOCAB_BPE -> Tokenizers.fromVocabAndMerges(gpt2Dir().resolve("encoder.json"), gpt2Dir().resolve("vocab.bpe"));
                };
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
    }

    static ByteLevelBpeTokenizer gpt2() {
        return load(Source.TOKENIZER_JSON_STRING_MERGES);
    }
}
