package dev.qlora4j.quant.kernel;

/**
 * Scalar reference of the two inner loops of attention: scores of one query against many keys, and the
 * probability-weighted sum of many value rows. {@link PanamaAttention} is the Vector API twin.
 */
final class AttentionKernels {
    private AttentionKernels() {
    }

    /** {@code out[j] = scale · q·k_j} for {@code j < len}, {@code k_j = k[kOff + j·stride .. + n)}. */
    static void dotRows(float[] q, int qOff, float[] k, int kOff, int stride, int n, int len, float scale,
                        float[] out, int outOff) {
        for (int j = 0; j < len; j++) {
            int ko = kOff + j * stride;
            float s = 0f;
            for (int d = 0; d < n; d++) s += q[qOff + d] * k[ko + d];
            out[outOff + j] = s * scale;
        }
    }

    /** {@code y[0..n) (+)= Σ_{j < len} p[j] · v_j}, {@code v_j = v[vOff + j·stride .. + n)}. */
    static void weightedRowSum(float[] p, int pOff, float[] v, int vOff, int stride, int n, int len, float[] y,
                               int yOff, boolean accumulate) {
        if (!accumulate) java.util.Arrays.fill(y, yOff, yOff + n, 0f);
        for (int j = 0; j < len; j++) {
            float pj = p[pOff + j];
            int vo = vOff + j * stride;
            for (int d = 0; d < n; d++) y[yOff + d] += pj * v[vo + d];
        }
    }
}
