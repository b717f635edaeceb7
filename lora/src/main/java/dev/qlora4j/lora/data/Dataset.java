package dev.qlora4j.lora.data;

import dev.qlora4j.runtime.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * Training examples read from data files, tokenized and laid out as (input, target) pairs of length T.
 *
 * <p><b>Text mode</b> (plain text; JSONL/CSV text column), as HF {@code run_clm}: each plain-text file is one
 * document, each JSONL line / CSV record one document; documents are tokenized, joined with EOS between them
 * (not after the last), and the stream is cut into windows of T+1 tokens with stride T ({@link PackedExamples});
 * the tail that does not fill a window is dropped, like {@code group_texts}. Empty documents are skipped.
 *
 * <p><b>Prompt/completion mode</b>, as TRL's completion-only training: each row is {@code encode(prompt) +
 * encode(completion) + EOS} (prompt and completion encoded separately, so the boundary is exact), one example per
 * row, no packing. Input {@code j} is token {@code j}; target {@code j} is token {@code j+1} where that token
 * belongs to the completion or is the EOS, else {@link Examples#IGNORE}. Rows longer than T+1 tokens are truncated
 * at the end (counted); shorter rows are padded with the pad id (EOS when the tokenizer has none) and ignored
 * targets. Rows whose prompt alone fills the window have no target left and are dropped (counted).
 */
public record Dataset(Examples examples, DataSpec.Mode mode, Stats stats) {

    /** What loading did: counts for the log. */
    public record Stats(int files, long documents, long skippedEmpty, long tokens, int examples, long targetTokens,
                        long droppedTokens, int truncated, int droppedNoTarget) {
    }

    public static Dataset load(Path file, DataSpec spec, Tokenizer tokenizer, int seqLen) throws IOException {
        return load(List.of(file), spec, tokenizer, seqLen);
    }

    /** Reads every file (all in the same mode) into one dataset with examples of {@code seqLen} tokens. */
    public static Dataset load(List<Path> files, DataSpec spec, Tokenizer tokenizer, int seqLen) throws IOException {
        if (seqLen < 1) throw new IllegalArgumentException("sequence length must be >= 1, got " + seqLen);
        if (files.isEmpty()) throw new DataException("no data files given");
        Builder b = new Builder(tokenizer, spec.parseSpecialTokens(), seqLen);
        DataSpec.Mode mode = null;
        Path first = null;
        for (Path f : files) {
            DataSpec.Mode m = RowReader.read(f, spec, b);
            if (mode != null && m != mode)
                throw new DataException(f + ": read as " + m + " data but " + first + " was " + mode + " data; all files of one dataset must agree");
            mode = m;
            if (first == null) first = f;
        }
        return b.finish(mode, files);
    }

    private static final class Builder implements RowReader.Sink {
        final Tokenizer tok;
        final boolean parseSpecial;
        final int seqLen;
        final int eos, pad;
        final TokenBuffer stream = new TokenBuffer();             // text mode
        final TokenBuffer inputs = new TokenBuffer(), targets = new TokenBuffer(); // prompt/completion mode
        long documents, skippedEmpty, tokens;
        int truncated, droppedNoTarget;

        Builder(Tokenizer tok, boolean parseSpecial, int seqLen) {
            this.tok = tok;
            this.parseSpecial = parseSpecial;
            this.seqLen = seqLen;
            this.eos = tok.eosId().orElse(-1);
            this.pad = tok.padId().orElse(eos >= 0 ? eos : 0);
        }

        @Override
        public void text(String text, String where) throws DataException {
            if (text.isEmpty()) {
                skippedEmpty++;
                return;
            }
            if (documents > 0) {
                if (eos < 0) throw new DataException(where + ": the tokenizer has no EOS token to put between documents");
                stream.add(eos);
            }
            documents++;
            int before = stream.size();
            TextEncoder.encode(tok, text, parseSpecial, stream);
            tokens += stream.size() - before;
        }

        @Override
        public void pair(String prompt, String completion, String where) throws DataException {
            if (eos < 0) throw new DataException(where + ": the tokenizer has no EOS token to end completions with");
            documents++;
            int[] p = tok.encode(prompt, parseSpecial), c = tok.encode(completion, parseSpecial);
            int len = p.length + c.length + 1;
            tokens += len;
            int n = Math.min(len, seqLen + 1);
            if (n - 1 < p.length) { // every target would be a prompt token
                droppedNoTarget++;
                return;
            }
            if (len > n) truncated++;
            for (int j = 0; j < seqLen; j++) {
                if (j < n - 1) {
                    inputs.add(token(p, c, j));
                    targets.add(j + 1 >= p.length ? token(p, c, j + 1) : Examples.IGNORE);
                } else {
                    inputs.add(pad);
                    targets.add(Examples.IGNORE);
                }
            }
        }

        private int token(int[] p, int[] c, int j) {
            if (j < p.length) return p[j];
            j -= p.length;
            return j < c.length ? c[j] : eos;
        }

        Dataset finish(DataSpec.Mode mode, List<Path> files) throws DataException {
            String what = files.size() == 1 ? files.get(0).toString() : files.size() + " files (" + files.get(0) + ", ...)";
            if (mode == DataSpec.Mode.TEXT) {
                PackedExamples ex = new PackedExamples(stream.toArray(), seqLen);
                if (ex.size() == 0)
                    throw new DataException(what + ": empty dataset: " + stream.size() + " tokens" + (documents == 0 ? " (no non-empty documents)" : "")
                            + " do not fill one window of T+1 = " + (seqLen + 1) + " tokens");
                long targetsTotal = (long) ex.size() * seqLen;
                return new Dataset(ex, mode, new Stats(files.size(), documents, skippedEmpty, stream.size(), ex.size(), targetsTotal,
                        ex.droppedTokens(), 0, 0));
            }
            PaddedExamples ex = new PaddedExamples(inputs.toArray(), targets.toArray(), seqLen);
            if (ex.size() == 0)
                throw new DataException(what + ": empty dataset: " + (documents == 0 ? "no rows"
                        : "all " + documents + " rows have prompts of at least T+1 = " + (seqLen + 1) + " tokens, leaving no completion token to learn"));
            long targetsTotal = 0;
            for (int i = 0; i < ex.size(); i++) targetsTotal += ex.targetCount(i);
            return new Dataset(ex, mode, new Stats(files.size(), documents, skippedEmpty, tokens, ex.size(), targetsTotal,
                    0, truncated, droppedNoTarget));
        }
    }
}
