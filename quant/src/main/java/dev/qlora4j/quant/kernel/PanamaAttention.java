package dev.qlora4j.quant.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API twin of {@link AttentionKernels}: four keys per pass with independent FMA chains and one
 * lane sum per key after the head-size loop; the weighted row sum keeps its accumulators across the
 * value rows. Tails run scalar. At 512 bits whole-vector head sizes take {@link Attention512} (same bits). Lane
 * sums use a fixed tree of lanewise adds rather than {@code reduceLanes}, whose
 * order is unspecified and differs between the interpreter and C2: the same inputs always give the same bits.
 */
final class PanamaAttention {
    private static final int MIN_KEYS_16 = 64;
    private static final ThreadLocal<float[]> ACC = ThreadLocal.withInitial(() -> new float[256]); // Attention512
    private final VectorWidth w;

    PanamaAttention(VectorWidth w) {
        this.w = w;
    }

    private float sum(FloatVector v) {
        return w.sum(v);
    }

    void dotRows(float[] q, int qOff, float[] k, int kOff, int stride, int n, int len, float scale, float[] out,
                 int outOff) {
        int j = 0;
        // sixteen keys per pass, same bits (Attention512); only for rows long enough to keep it hot, so that short
        // rows (training on short sequences) never run it in tier-1 code that allocates its vectors
        if (w.bits() == 512 && n % 16 == 0 && len >= MIN_KEYS_16) {
            float[] acc = ACC.get(); // (16, 16) per thread
            for (; j + 16 <= len; j += 16) {
                Attention512.dotRows16(q, qOff, k, kOff, stride, n, j, scale, out, outOff, acc);
            }
        }
        dotRowsFrom(q, qOff, k, kOff, stride, n, j, len, scale, out, outOff);
    }

    /**
     * Keys {@code j0 .. len - 1} of {@link #dotRows}, four at a time, then one at a time. A method of its own so that
     * C2 never compiles it into the same unit as the sixteen-key path: there the node budget ran out
     * (NodeCountInliningCutoff, session 11) and every {@link #sum} below was called out of line with boxed vectors.
     */
    private void dotRowsFrom(float[] q, int qOff, float[] k, int kOff, int stride, int n, int j0, int len,
                             float scale, float[] out, int outOff) {
        VectorSpecies<Float> sp = w.f();
        int lanes = sp.length();
        int nv = n - n % lanes;
        int j = j0;
        for (; j + 4 <= len; j += 4) {
            int k0 = kOff + j * stride, k1 = k0 + stride, k2 = k1 + stride, k3 = k2 + stride;
            FloatVector a0 = FloatVector.zero(sp), a1 = a0, a2 = a0, a3 = a0;
            for (int d = 0; d < nv; d += lanes) {
                FloatVector qv = FloatVector.fromArray(sp, q, qOff + d);
                a0 = qv.fma(FloatVector.fromArray(sp, k, k0 + d), a0);
                a1 = qv.fma(FloatVector.fromArray(sp, k, k1 + d), a1);
                a2 = qv.fma(FloatVector.fromArray(sp, k, k2 + d), a2);
                a3 = qv.fma(FloatVector.fromArray(sp, k, k3 + d), a3);
            }
            float s0 = sum(a0), s1 = sum(a1);
            float s2 = sum(a2), s3 = sum(a3);
            for (int d = nv; d < n; d++) {
                float qd = q[qOff + d];
                s0 += qd * k[k0 + d];
                s1 += qd * k[k1 + d];
                s2 += qd * k[k2 + d];
                s3 += qd * k[k3 + d];
            }
            out[outOff + j] = s0 * scale;
            out[outOff + j + 1] = s1 * scale;
            out[outOff + j + 2] = s2 * scale;
            out[outOff + j + 3] = s3 * scale;
        }
        for (; j < len; j++) {
            int ko = kOff + j * stride;
            FloatVector a = FloatVector.zero(sp);
            for (int d = 0; d < nv; d += lanes) {
                a = FloatVector.fromArray(sp, q, qOff + d).fma(FloatVector.fromArray(sp, k, ko + d), a);
            }
            float s = sum(a);
            for (int d = nv; d < n; d++) s += q[qOff + d] * k[ko + d];
            out[outOff + j] = s * scale;
        }
    }

    void weightedRowSum(float[] p, int pOff, float[] v, int vOff, int stride, int n, int len, float[] y, int yOff,
                        boolean accumulate) {
        if (w.bits() == 512 && n % 16 == 0) { // four vectors per pass, same bits
            Attention512.weightedRowSum(p, pOff, v, vOff, stride, n, len, y, yOff, accumulate);
            return;
        }
        VectorSpecies<Float> sp = w.f();
        int lanes = sp.length();
        int d = 0;
        for (; d + 2 * lanes <= n; d += 2 * lanes) { // two vectors of the row per pass
            FloatVector a0 = accumulate ? FloatVector.fromArray(sp, y, yOff + d) : FloatVector.zero(sp);
            FloatVector a1 = accumulate ? FloatVector.fromArray(sp, y, yOff + d + lanes) : FloatVector.zero(sp);
            for (int j = 0; j < len; j++) {
                FloatVector pj = FloatVector.broadcast(sp, p[pOff + j]);
                int vo = vOff + j * stride + d;
                a0 = pj.fma(FloatVector.fromArray(sp, v, vo), a0);
                a1 = pj.fma(FloatVector.fromArray(sp, v, vo + lanes), a1);
            }
            a0.intoArray(y, yOff + d);
            a1.intoArray(y, yOff + d + lanes);
        }
        for (; d + lanes <= n; d += lanes) {
            FloatVector a = accumulate ? FloatVector.fromArray(sp, y, yOff + d) : FloatVector.zero(sp);
            for (int j = 0; j < len; j++) {
                a = FloatVector.broadcast(sp, p[pOff + j]).fma(FloatVector.fromArray(sp, v, vOff + j * stride + d), a);
            }
            a.intoArray(y, yOff + d);
        }
        for (; d < n; d++) {
            float s = accumulate ? y[yOff + d] : 0f;
            for (int j = 0; j < len; j++) s += p[pOff + j] * v[vOff + j * stride + d];
            y[yOff + d] = s;
        }
    }
}
