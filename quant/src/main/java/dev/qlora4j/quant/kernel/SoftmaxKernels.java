package dev.qlora4j.quant.kernel;

/**
 * Scalar reference of the softmax row loops (the LM head's cross-entropy over the vocabulary): the row maximum and
 * {@code a[j] = exp(a[j] - shift)} with the sum of the results. {@code exp} is a plain-float Cephes-style polynomial
 * (within 1e-7 relative of {@link Math#exp} on [-87, 88], clamped outside), written so that {@link PanamaSoftmax}
 * computes bit-identical elements with vector operations. Only the order of the final sum differs between the two.
 */
final class SoftmaxKernels {
    private SoftmaxKernels() {
    }

    static final float LOG2E = 1.44269504088896341f, MAGIC = 12582912f; // 1.5·2^23: rounds to an integer
    static final float LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f;
    static final float EXP_MIN = -87f, EXP_MAX = 88f;
    static final float P0 = 1.9875691500E-4f, P1 = 1.3981999507E-3f, P2 = 8.3334519073E-3f, P3 = 4.1665795894E-2f,
            P4 = 1.6666665459E-1f, P5 = 5.0000001201E-1f;

    /** fp32 {@code exp(z)}, z clamped to [-87, 88]: {@code 2^n · p(r)}, {@code z = n·ln2 + r}. */
    static float exp(float z) {
        float c = Math.max(EXP_MIN, Math.min(EXP_MAX, z));
        float t = c * LOG2E + MAGIC;                  // the low bits hold n + 0x400000
        float n = t - MAGIC;
        float r = c - n * LN2_HI - n * LN2_LO;
        float p = P0;
        p = p * r + P1;
        p = p * r + P2;
        p = p * r + P3;
        p = p * r + P4;
        p = p * r + P5;
        p = p * r * r + r + 1f;
        return p * Float.intBitsToFloat((Float.floatToRawIntBits(t) + 127) << 23);
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
            float e = exp(a[off + j] - shift);
            a[off + j] = e;
            sum += e;
        }
        return sum;
    }
}
