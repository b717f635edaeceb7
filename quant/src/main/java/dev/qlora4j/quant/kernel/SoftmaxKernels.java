package dev.qlora4j.quant.kernel;

/**
 * Scalar reference of the softmax row loops (the LM head's cross-entropy over the vocabulary): the row maximum and
 * {@code a[j] = exp(a[j] - shift)} with the sum of the results, {@code exp} being {@link FastExp}, so that
 * {@link PanamaSoftmax} computes bit-identical elements. Only the order of the final sum differs between the two.
 */
final class SoftmaxKernels {
    private SoftmaxKernels() {
    }

    /** {@code max_j a[off + j]} over n ≥ 1 elements. */
    static float max(float[] a, int off, int n) {
        float m = Float.NEGATIVE_INFINITY;
        for (int j = 0; j < n; j++) m = Math.max(m, a[off + j]);
        return m;
    }

    /** {@code a[off + j] = exp(a[off + j] - shift)}; returns their sum, accumulated in double. */
    static double expInPlace(float[] a, int off, int n, float shift) {
        double sum = 0;
        for (int j = 0; j < n; j++) {
            float e = FastExp.exp(a[off + j] - shift);
            a[off + j] = e;
            sum += e;
        }
        return sum;
    }
}
