package dev.qlora4j.runtime.load;

import dev.qlora4j.runtime.checkpoint.HfModelDir;
import dev.qlora4j.runtime.model.DecoderModel;
import dev.qlora4j.runtime.tokenizer.Tokenizer;
import dev.qlora4j.runtime.tokenizer.Tokenizers;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;

/** A model with the files it was loaded from; closing it unmaps the checkpoint and frees off-heap weights. */
public final class LoadedModel implements AutoCloseable {
    private final HfModelDir dir;
    private final DecoderModel model;
    private final Arena arena;
    private Tokenizer tokenizer;

    LoadedModel(HfModelDir dir, DecoderModel model, Arena arena) {
        this.dir = dir;
        this.model = model;
        this.arena = arena;
    }

    public HfModelDir dir() {
        return dir;
    }

    public DecoderModel model() {
        return model;
    }

    /** The model directory's tokenizer (tokenizer.json, else vocab.json + merges.txt), loaded on first use. */
    public synchronized Tokenizer tokenizer() {
        if (tokenizer == null) {
            try {
                tokenizer = Tokenizers.load(dir.tokenizerDir());
            } catch (IOException e) {
                throw new UncheckedIOException(dir.tokenizerDir() + ": cannot read the tokenizer: " + e.getMessage(), e);
            }
        }
        return tokenizer;
    }

    @Override
    public void close() {
        arena.close();
        dir.close();
    }
}
