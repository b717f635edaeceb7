package dev.qlora4j.lora.data;

import java.util.Arrays;

/**
 * How many examples to hold out for evaluation: a fraction ({@code ceil(fraction·n)}, as HF datasets'
 * {@code train_test_split}) or a count. Which examples is a seeded random choice, independent of the per-epoch
 * shuffles.
 */
public record EvalSplit(double fraction, int count) {

    /** The train and eval parts, each in the original order. */
    public record Parts(Examples train, Examples eval) {
    }

    public EvalSplit {
        if (count < 0) throw new IllegalArgumentException("eval count must be >= 0, got " + count);
        if (!(fraction >= 0 && fraction < 1)) throw new IllegalArgumentException("eval fraction must be in [0, 1), got " + fraction);
        if (fraction > 0 && count > 0) throw new IllegalArgumentException("give an eval fraction or an eval count, not both");
    }

    public static EvalSplit none() {
        return new EvalSplit(0, 0);
    }

    public static EvalSplit fraction(double f) {
        return new EvalSplit(f, 0);
    }

    public static EvalSplit count(int n) {
        return new EvalSplit(0, n);
    }

    /** Parses {@code 0.05} (a fraction, < 1) or {@code 200} (a count). */
    public static EvalSplit parse(String s) {
        double d = Double.parseDouble(s.trim());
        if (d >= 1) {
            if (d != Math.rint(d)) throw new IllegalArgumentException("eval split " + s + " is neither a fraction < 1 nor a whole count");
            return count((int) d);
        }
        return fraction(d);
    }

    /** Number of examples held out of {@code n}. */
    public int evalSize(int n) {
        return count > 0 ? count : (int) Math.ceil(fraction * n);
    }

    /** Splits {@code all}; with no split the eval part is empty and train is {@code all}. */
    public Parts apply(Examples all, long seed) throws DataException {
        int n = all.size(), k = evalSize(n);
        if (k == 0) return new Parts(all, new ExampleSubset(all, new int[0]));
        if (k >= n) throw new DataException("eval split of " + k + " examples leaves no training examples (the dataset has " + n + ")");
        int[] perm = new int[n];
        Shuffle.permutation(seed, Shuffle.EVAL_SPLIT_STREAM, perm);
        int[] eval = Arrays.copyOfRange(perm, 0, k), train = Arrays.copyOfRange(perm, k, n);
        Arrays.sort(eval);
        Arrays.sort(train);
        return new Parts(new ExampleSubset(all, train), new ExampleSubset(all, eval));
    }
}
