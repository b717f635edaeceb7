package dev.qlora4j.lora.data;

import java.util.Arrays;

/** Reusable B×T buffers of input ids and target ids ({@link Examples#IGNORE} where no loss is taken). */
public final class Batch {

    public final int batchSize; // B
    public final int seqLen;    // T
    public final int[] inputs;  // (B,T)
    public final int[] targets; // (B,T)
    int rows;
    int targetCount;

    public Batch(int batchSize, int seqLen) {
        if (batchSize < 1 || seqLen < 1) throw new IllegalArgumentException("batch " + batchSize + " × " + seqLen);
        this.batchSize = batchSize;
        this.seqLen = seqLen;
        this.inputs = new int[batchSize * seqLen];
        this.targets = new int[batchSize * seqLen];
    }

    /** Rows holding examples; fewer than B only in the last batch of a sequential (eval) pass. */
    public int rows() {
        return rows;
    }

    /** Non-ignored targets in the batch (the divisor of a mean token loss). */
    public int targetCount() {
        return targetCount;
    }

    /**
     * Fills the batch with examples {@code from, from+1, ...} of {@code ex} in order (an eval pass); rows past the
     * end get input 0 and ignored targets. Returns the number of examples copied.
     */
    public int fillSequential(Examples ex, int from) {
        checkSeqLen(ex);
        int n = Math.max(0, Math.min(batchSize, ex.size() - from));
        targetCount = 0;
        for (int b = 0; b < n; b++) {
            ex.copyTo(from + b, inputs, targets, b * seqLen);
            targetCount += ex.targetCount(from + b);
        }
        Arrays.fill(inputs, n * seqLen, inputs.length, 0);
        Arrays.fill(targets, n * seqLen, targets.length, Examples.IGNORE);
        rows = n;
        return n;
    }

    void checkSeqLen(Examples ex) {
        if (ex.seqLen() != seqLen) throw new IllegalArgumentException("examples are " + ex.seqLen() + " tokens long, the batch " + seqLen);
    }
}
