package dev.qlora4j.quant.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The register-blocked FMA micro-kernel (BLIS style): {@code C[MR, NR] (+)= A[MR, kc] · P[kc, NR]} with
 * {@code NR = 2·L} ({@code L} float lanes). Per step {@code k} it loads two vectors of the packed panel, broadcasts
 * one element of each of the {@code MR = 5} rows of {@code A} and issues 10 independent FMAs into 10 accumulator
 * registers (13 of AVX2's 16: 10 accumulators + 2 panel vectors + 1 broadcast; enough chains to cover 2 FMA ports ×
 * 4 cycles latency). {@code C} is read or initialized once and written once per call. Both operands are packed, so a
 * step is 2 loads, 5 broadcasts from memory and 10 FMAs off two base registers.
 *
 * <p>Measured on Zen 3 (CPU time, L1-resident operands): 5×2 ≈ 93% of the FMA peak; 6×2 (12 accumulators) makes C2
 * spill an accumulator every step (≈ 50%); 4×2 ≈ 65%; with {@code A} unpacked, the row addresses cost one integer
 * add per broadcast and the loop hits the dispatch width before the FMA ports (≈ 68%).
 */
final class MicroKernel {

    static final int MR = 5;

    private MicroKernel() {
    }

    /** Panel width in floats for this vector width: two vectors. */
    static int nr(VectorWidth vw) {
        return 2 * vw.f().length();
    }

    /**
     * @param ap    packed {@code A}: at {@code aOff}, {@code kc} groups of {@code MR} floats, {@code ap[aOff + k·MR + r] = A[r][k]}
     *              (see {@link #packA}), so all five broadcasts of a step address one base register
     * @param p     packed panel {@code P (kc, NR)} at {@code pOff}, row stride {@code NR}
     * @param c     {@code C (MR, NR)} at {@code cOff}, row stride {@code ldc}
     * @param init  when non-null, the accumulators start from {@code init[initOff .. + NR)} (bias, or zeros) in every
     *              row instead of from {@code C}
     */
    static void kernel5x2(VectorWidth vw, float[] ap, int aOff, float[] p, int pOff, int kc,
                          float[] c, int cOff, int ldc, float[] init, int initOff) {
        VectorSpecies<Float> s = vw.f();
        int l = s.length(), nr = 2 * l;
        FloatVector c00, c01, c10, c11, c20, c21, c30, c31, c40, c41;
        if (init != null) {
            FloatVector i0 = FloatVector.fromArray(s, init, initOff), i1 = FloatVector.fromArray(s, init, initOff + l);
            c00 = i0; c01 = i1; c10 = i0; c11 = i1; c20 = i0; c21 = i1; c30 = i0; c31 = i1; c40 = i0; c41 = i1;
        } else {
            c00 = FloatVector.fromArray(s, c, cOff); c01 = FloatVector.fromArray(s, c, cOff + l);
            c10 = FloatVector.fromArray(s, c, cOff + ldc); c11 = FloatVector.fromArray(s, c, cOff + ldc + l);
            c20 = FloatVector.fromArray(s, c, cOff + 2 * ldc); c21 = FloatVector.fromArray(s, c, cOff + 2 * ldc + l);
            c30 = FloatVector.fromArray(s, c, cOff + 3 * ldc); c31 = FloatVector.fromArray(s, c, cOff + 3 * ldc + l);
            c40 = FloatVector.fromArray(s, c, cOff + 4 * ldc); c41 = FloatVector.fromArray(s, c, cOff + 4 * ldc + l);
        }
        for (int k = 0, ak = aOff, pk = pOff; k < kc; k++, ak += MR, pk += nr) {
            FloatVector b0 = FloatVector.fromArray(s, p, pk), b1 = FloatVector.fromArray(s, p, pk + l);
            FloatVector x0 = FloatVector.broadcast(s, ap[ak]);
            c00 = x0.fma(b0, c00); c01 = x0.fma(b1, c01);
            FloatVector x1 = FloatVector.broadcast(s, ap[ak + 1]);
            c10 = x1.fma(b0, c10); c11 = x1.fma(b1, c11);
            FloatVector x2 = FloatVector.broadcast(s, ap[ak + 2]);
            c20 = x2.fma(b0, c20); c21 = x2.fma(b1, c21);
            FloatVector x3 = FloatVector.broadcast(s, ap[ak + 3]);
            c30 = x3.fma(b0, c30); c31 = x3.fma(b1, c31);
            FloatVector x4 = FloatVector.broadcast(s, ap[ak + 4]);
            c40 = x4.fma(b0, c40); c41 = x4.fma(b1, c41);
        }
        c00.intoArray(c, cOff); c01.intoArray(c, cOff + l);
        c10.intoArray(c, cOff + ldc); c11.intoArray(c, cOff + ldc + l);
        c20.intoArray(c, cOff + 2 * ldc); c21.intoArray(c, cOff + 2 * ldc + l);
        c30.intoArray(c, cOff + 3 * ldc); c31.intoArray(c, cOff + 3 * ldc + l);
        c40.intoArray(c, cOff + 4 * ldc); c41.intoArray(c, cOff + 4 * ldc + l);
    }

    /**
     * Packs rows {@code [i0, i0 + MR)} of {@code A (M, K)} (row stride {@code lda}) into {@code MR}-interleaved
     * order: {@code ap[apOff + k·MR + r] = A[i0 + r][k]}, rows at or past {@code m} as zeros.
     */
    static void packA(float[] a, int aOff, int lda, int i0, int m, int k, float[] ap, int apOff) {
        for (int r = 0; r < MR; r++) {
            int dst = apOff + r;
            if (i0 + r < m) {
                int src = aOff + (i0 + r) * lda;
                for (int c = 0; c < k; c++, dst += MR) ap[dst] = a[src + c];
            } else {
                for (int c = 0; c < k; c++, dst += MR) ap[dst] = 0f;
            }
        }
    }

    /**
     * Packs columns {@code [j0, j0 + MR)} of {@code A (rows, cols)} (row stride {@code lda}) as MR-interleaved rows of
     * {@code Aᵀ}: {@code ap[apOff + i·MR + r] = A[i][j0 + r]}, columns at or past {@code cols} as zeros.
     */
    static void packAT(float[] a, int aOff, int lda, int j0, int cols, int rows, float[] ap, int apOff) {
        int full = Math.min(MR, cols - j0);
        for (int i = 0, dst = apOff, src = aOff + j0; i < rows; i++, dst += MR, src += lda) {
            for (int r = 0; r < full; r++) ap[dst + r] = a[src + r];
            for (int r = full; r < MR; r++) ap[dst + r] = 0f;
        }
    }

    /** Scalar reference of the kernel: {@code C[MR, nr] (+)= A[MR, kc] · P[kc, nr]}, {@code A} packed as above. */
    static void reference(int nr, float[] ap, int aOff, float[] p, int pOff, int kc,
                          float[] c, int cOff, int ldc, float[] init, int initOff) {
        for (int i = 0; i < MR; i++) {
            for (int j = 0; j < nr; j++) {
                float sum = init != null ? init[initOff + j] : c[cOff + i * ldc + j];
                for (int k = 0; k < kc; k++) sum += ap[aOff + k * MR + i] * p[pOff + k * nr + j];
                c[cOff + i * ldc + j] = sum;
            }
        }
    }
}
