package dev.qlora4j.lora.data;

/**
 * What to read from data files and how to cut it into training examples.
 *
 * @param format             the files' format, or null to tell it from each file name ({@link DataFormat#ofFile})
 * @param textColumn         the CSV column / JSONL key holding documents (text mode), or null
 * @param promptColumn       the column / key of prompts (completion-only mode, with {@code completionColumn}), or null
 * @param completionColumn   the column / key of completions, or null
 * @param parseSpecialTokens whether special-token strings in the data (e.g. {@code <|endoftext|>}) become their
 *                           ids, as HF tokenizers do by default; false treats them as plain text
 *
 * <p>With no column given, CSV/JSONL use column {@code text} if present, else {@code prompt} + {@code completion}.
 */
public record DataSpec(DataFormat format, String textColumn, String promptColumn, String completionColumn, boolean parseSpecialTokens) {

    /** The kind of examples a spec produces. */
    public enum Mode {
        /** Documents joined with EOS between them and packed into blocks: loss on every token. */
        TEXT,
        /** One example per row, prompt + completion + EOS: loss on completion tokens (and EOS) only. */
        PROMPT_COMPLETION
    }

    public DataSpec {
        if ((promptColumn == null) != (completionColumn == null))
            throw new IllegalArgumentException("prompt and completion columns go together: got prompt column " + promptColumn + ", completion column " + completionColumn);
        if (textColumn != null && promptColumn != null)
            throw new IllegalArgumentException("give either a text column or prompt + completion columns, not both");
    }

    /** Format from file names, columns detected, special tokens parsed. */
    public static DataSpec auto() {
        return new DataSpec(null, null, null, null, true);
    }

    public DataSpec withFormat(DataFormat f) {
        return new DataSpec(f, textColumn, promptColumn, completionColumn, parseSpecialTokens);
    }

    public DataSpec withTextColumn(String c) {
        return new DataSpec(format, c, null, null, parseSpecialTokens);
    }

    public DataSpec withPromptCompletion(String prompt, String completion) {
        return new DataSpec(format, null, prompt, completion, parseSpecialTokens);
    }

    public DataSpec withParseSpecialTokens(boolean parse) {
        return new DataSpec(format, textColumn, promptColumn, completionColumn, parse);
    }
}
