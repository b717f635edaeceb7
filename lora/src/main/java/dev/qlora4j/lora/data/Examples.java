package dev.qlora4j.lora.data;

/**
 * A fixed set of training examples, each {@code T} input ids and {@code T} target ids ({@link #IGNORE} where no
 * loss is taken). Immutable; safe to share between threads.
 */
public interface Examples {

    /** Target id that contributes no loss (PyTorch's cross-entropy {@code ignore_index}). */
    int IGNORE = -100;

    /** Number of examples. */
    int size();

    /** Tokens per example (T). */
    int seqLen();

    /** Copies example {@code index} into {@code inputs[off, off+T)} and {@code targets[off, off+T)}. */
    void copyTo(int index, int[] inputs, int[] targets, int off);

    /** Number of non-ignored targets of example {@code index}. */
    int targetCount(int index);

    /** A 64-bit hash of every input and target, to check that a saved position is resumed on the same data. */
    default long fingerprint() {
        int t = seqLen();
        int[] in = new int[t], tg = new int[t];
        long h = 0xcbf29ce484222325L ^ ((long) size() << 32 | t);
        for (int i = 0; i < size(); i++) {
            copyTo(i, in, tg, 0);
            for (int j = 0; j < t; j++) {
                h = (h ^ in[j]) * 0x100000001b3L;
                h = (h ^ tg[j]) * 0x100000001b3L;
            }
        }
        return h;
    }
}
