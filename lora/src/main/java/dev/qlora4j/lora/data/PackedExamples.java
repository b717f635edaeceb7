package dev.qlora4j.lora.data;

/**
 * Text mode: one token stream cut into windows of {@code T+1} tokens with stride {@code T} (consecutive windows
 * share one token), so example {@code i} is {@code inputs = tokens[iT, iT+T)}, {@code targets = tokens[iT+1, iT+T+1)}
 * and every token but the first is a target exactly once. The tail that does not fill a window is dropped.
 */
public final class PackedExamples implements Examples {

    private final int[] tokens; // (N) the document stream, EOS between documents
    private final int seqLen;
    private final int size;

    public PackedExamples(int[] tokens, int seqLen) {
        if (seqLen < 1) throw new IllegalArgumentException("sequence length must be >= 1, got " + seqLen);
        this.tokens = tokens;
        this.seqLen = seqLen;
        this.size = tokens.length <= 1 ? 0 : (tokens.length - 1) / seqLen;
    }

    @Override
    public int size() {
        return size;
    }

    @Override
    public int seqLen() {
        return seqLen;
    }

    /** Tokens of the stream that no example uses as a target (the dropped tail). */
    public int droppedTokens() {
        return tokens.length - (size * seqLen + (size > 0 ? 1 : 0));
    }

    @Override
    public void copyTo(int index, int[] inputs, int[] targets, int off) {
        int start = java.util.Objects.checkIndex(index, size) * seqLen;
        System.arraycopy(tokens, start, inputs, off, seqLen);
        System.arraycopy(tokens, start + 1, targets, off, seqLen);
    }

    @Override
    public int targetCount(int index) {
        java.util.Objects.checkIndex(index, size);
        return seqLen;
    }
}
