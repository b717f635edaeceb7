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

    /**
     * Scores of four queries against keys held transposed: {@code out[o_i + j] = scale · Σ_{d < n} q[q_i + d] ·
     * kt[ktOff + d·ktStride + j]} for {@code i < 4}, {@code j < len}. A query may be repeated (same {@code q_i} and
     * {@code o_i}), so fewer than four take the same call.
     */
    static void dotRowsT4(float[] q, int q0, int q1, int q2, int q3, float[] kt, int ktOff, int ktStride, int n,
                          int len, float scale, float[] out, int o0, int o1, int o2, int o3) {
        int[] qs = {q0, q1, q2, q3}, os = {o0, o1, o2, o3};
        for (int i = 0; i < 4; i++) {
            for (int j = 0; j < len; j++) {
                float s = 0f;
                for (int d = 0; d < n; d++) s += q[qs[i] + d] * kt[ktOff + d * ktStride + j];
                out[os[i] + j] = s * scale;
            }
        }
    }

    /**
     * Four weighted row sums over the same value rows: {@code y[y_i + d] = Σ_{j < len} p[p_i + j] · v_j[d]} for
     * {@code i < 4}, {@code d < n}, {@code v_j = v[vOff + j·stride .. + n)}; rows may repeat as in {@link #dotRowsT4}.
     */
    static void weightedRowSums4(float[] p, int p0, int p1, int p2, int p3, float[] v, int vOff, int stride, int n,
                                 int len, float[] y, int y0, int y1, int y2, int y3) {
        int[] ps = {p0, p1, p2, p3}, ys = {y0, y1, y2, y3};
        for (int i = 0; i < 4; i++) weightedRowSum(p, ps[i], v, vOff, stride, n, len, y, ys[i], false);
    }
}
