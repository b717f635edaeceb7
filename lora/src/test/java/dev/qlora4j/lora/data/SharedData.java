package dev.qlora4j.lora.data;

import dev.qlora4j.runtime.tokenizer.Tokenizer;
import dev.qlora4j.runtime.tokenizer.Tokenizers;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The shared data directory (system property {@code qlora.shared}, set by surefire) and the GPT-2 tokenizer. */
final class SharedData {

    private static Tokenizer gpt2;

    private SharedData() {}

    static Path dir() {
        String p = System.getProperty("qlora.shared");
        Path d = p != null ? Path.of(p) : Path.of("../shared");
        if (!Files.isDirectory(d.resolve("data"))) throw new IllegalStateException("shared data not found at " + d.toAbsolutePath() + " (set -Dqlora.shared)");
        return d.resolve("data");
    }

    static synchronized Tokenizer gpt2() {
        if (gpt2 == null) {
            try {
                gpt2 = Tokenizers.load(dir().resolve("tiny-gpt2"));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return gpt2;
    }
}
