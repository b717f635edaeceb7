package dev.qlora4j.lora.data;

import java.util.Arrays;
import java.util.Objects;

/** One example per row, already laid out as T inputs and T targets (completion-only rows, padded / truncated). */
public final class PaddedExamples implements Examples {

    private final int[] inputs;  // (N,T)
    private final int[] targets; // (N,T)
    private final int[] counts;  // (N) non-ignored targets per row
    private final int seqLen;

    PaddedExamples(int[] inputs, int[] targets, int seqLen) {
        if (inputs.length != targets.length || inputs.length % seqLen != 0) throw new IllegalArgumentException("inputs/targets are not N×T");
        this.inputs = inputs;
        this.targets = targets;
        this.seqLen = seqLen;
        this.counts = new int[inputs.length / seqLen];
        for (int i = 0; i < targets.length; i++) if (targets[i] != IGNORE) counts[i / seqLen]++;
    }

    /** From rows given as N×T arrays (copied). */
    public static PaddedExamples of(int[][] inputs, int[][] targets) {
        int n = inputs.length, t = n == 0 ? 1 : inputs[0].length;
        int[] in = new int[n * t], tg = new int[n * t];
        for (int i = 0; i < n; i++) {
            if (inputs[i].length != t || targets[i].length != t) throw new IllegalArgumentException("row " + i + " is not " + t + " long");
            System.arraycopy(inputs[i], 0, in, i * t, t);
            System.arraycopy(targets[i], 0, tg, i * t, t);
        }
        return new PaddedExamples(in, tg, t);
    }

    @Override
    public int size() {
        return counts.length;
    }

    @Override
    public int seqLen() {
        return seqLen;
    }

    @Override
    public void copyTo(int index, int[] in, int[] tg, int off) {
        int start = Objects.checkIndex(index, counts.length) * seqLen;
        System.arraycopy(inputs, start, in, off, seqLen);
        System.arraycopy(targets, start, tg, off, seqLen);
    }

    @Override
    public int targetCount(int index) {
        return counts[index];
    }

    @Override
    public String toString() {
        return "PaddedExamples[" + counts.length + " × " + seqLen + ", first targets " + Arrays.toString(Arrays.copyOf(targets, Math.min(targets.length, seqLen))) + "]";
    }
}
