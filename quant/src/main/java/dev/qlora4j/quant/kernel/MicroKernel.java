package dev.qlora4j.quant.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The register-blocked FMA micro-kernel (BLIS style): {@code C[MR, NR] (+)= A[MR, kc] · P[kc, NR]} with
 * {@code NR = 2·L} ({@code L} float lanes). Per step {@code k} it loads two vectors of the packed panel, broadcasts
 * one element of each of the {@code MR = 6} rows of {@code A} and issues 12 independent FMAs into 12 accumulator
 * registers (16 on AVX2: 12 accumulators + 2 panel vectors + 1 broadcast). {@code C} is read or initialized once
 * and written once per call.
 */
final class MicroKernel {

    static final int MR = 6;

    private MicroKernel() {
    }

    /** Panel width in floats for this vector width: two vectors. */
    static int nr(VectorWidth vw) {
        return 2 * vw.f().length();
    }

    /**
     * @param a     {@code A (MR, kc)} at {@code aOff}, row stride {@code lda}
     * @param p     packed panel {@code P (kc, NR)} at {@code pOff}, row stride {@code NR}
     * @param c     {@code C (MR, NR)} at {@code cOff}, row stride {@code ldc}
     * @param init  when non-null, the accumulators start from {@code init[initOff .. + NR)} (bias, or zeros) in every
     *              row instead of from {@code C}
     */
    static void kernel6x2(VectorWidth vw, float[] a, int aOff, int lda, float[] p, int pOff, int kc,
                          float[] c, int cOff, int ldc, float[] init, int initOff) {
        VectorSpecies<Float> s = vw.f();
        int l = s.length(), nr = 2 * l;
        FloatVector c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
        if (init != null) {
            FloatVector i0 = FloatVector.fromArray(s, init, initOff), i1 = FloatVector.fromArray(s, init, initOff + l);
            c00 = i0; c10 = i0; c20 = i0; c30 = i0; c40 = i0; c50 = i0;
            c01 = i1; c11 = i1; c21 = i1; c31 = i1; c41 = i1; c51 = i1;
        } else {
            c00 = FloatVector.fromArray(s, c, cOff); c01 = FloatVector.fromArray(s, c, cOff + l);
            c10 = FloatVector.fromArray(s, c, cOff + ldc); c11 = FloatVector.fromArray(s, c, cOff + ldc + l);
            c20 = FloatVector.fromArray(s, c, cOff + 2 * ldc); c21 = FloatVector.fromArray(s, c, cOff + 2 * ldc + l);
            c30 = FloatVector.fromArray(s, c, cOff + 3 * ldc); c31 = FloatVector.fromArray(s, c, cOff + 3 * ldc + l);
            c40 = FloatVector.fromArray(s, c, cOff + 4 * ldc); c41 = FloatVector.fromArray(s, c, cOff + 4 * ldc + l);
            c50 = FloatVector.fromArray(s, c, cOff + 5 * ldc); c51 = FloatVector.fromArray(s, c, cOff + 5 * ldc + l);
        }
        int a0 = aOff, a1 = aOff + lda, a2 = aOff + 2 * lda, a3 = aOff + 3 * lda, a4 = aOff + 4 * lda,
                a5 = aOff + 5 * lda;
        FloatVector b0, b1, x;
        int k = 0, pk = pOff;
        // unrolled by 4: the 6 row addresses and the loop bookkeeping are paid once per 48 FMAs, not per 12
        for (; k + 3 < kc; k += 4, pk += 4 * nr) {
            b0 = FloatVector.fromArray(s, p, pk); b1 = FloatVector.fromArray(s, p, pk + l);
            x = FloatVector.broadcast(s, a[a0 + k]); c00 = x.fma(b0, c00); c01 = x.fma(b1, c01);
            x = FloatVector.broadcast(s, a[a1 + k]); c10 = x.fma(b0, c10); c11 = x.fma(b1, c11);
            x = FloatVector.broadcast(s, a[a2 + k]); c20 = x.fma(b0, c20); c21 = x.fma(b1, c21);
            x = FloatVector.broadcast(s, a[a3 + k]); c30 = x.fma(b0, c30); c31 = x.fma(b1, c31);
            x = FloatVector.broadcast(s, a[a4 + k]); c40 = x.fma(b0, c40); c41 = x.fma(b1, c41);
            x = FloatVector.broadcast(s, a[a5 + k]); c50 = x.fma(b0, c50); c51 = x.fma(b1, c51);
            b0 = FloatVector.fromArray(s, p, pk + nr); b1 = FloatVector.fromArray(s, p, pk + nr + l);
            x = FloatVector.broadcast(s, a[a0 + k + 1]); c00 = x.fma(b0, c00); c01 = x.fma(b1, c01);
            x = FloatVector.broadcast(s, a[a1 + k + 1]); c10 = x.fma(b0, c10); c11 = x.fma(b1, c11);
            x = FloatVector.broadcast(s, a[a2 + k + 1]); c20 = x.fma(b0, c20); c21 = x.fma(b1, c21);
            x = FloatVector.broadcast(s, a[a3 + k + 1]); c30 = x.fma(b0, c30); c31 = x.fma(b1, c31);
            x = FloatVector.broadcast(s, a[a4 + k + 1]); c40 = x.fma(b0, c40); c41 = x.fma(b1, c41);
            x = FloatVector.broadcast(s, a[a5 + k + 1]); c50 = x.fma(b0, c50); c51 = x.fma(b1, c51);
            b0 = FloatVector.fromArray(s, p, pk + 2 * nr); b1 = FloatVector.fromArray(s, p, pk + 2 * nr + l);
            x = FloatVector.broadcast(s, a[a0 + k + 2]); c00 = x.fma(b0, c00); c01 = x.fma(b1, c01);
            x = FloatVector.broadcast(s, a[a1 + k + 2]); c10 = x.fma(b0, c10); c11 = x.fma(b1, c11);
            x = FloatVector.broadcast(s, a[a2 + k + 2]); c20 = x.fma(b0, c20); c21 = x.fma(b1, c21);
            x = FloatVector.broadcast(s, a[a3 + k + 2]); c30 = x.fma(b0, c30); c31 = x.fma(b1, c31);
            x = FloatVector.broadcast(s, a[a4 + k + 2]); c40 = x.fma(b0, c40); c41 = x.fma(b1, c41);
            x = FloatVector.broadcast(s, a[a5 + k + 2]); c50 = x.fma(b0, c50); c51 = x.fma(b1, c51);
            b0 = FloatVector.fromArray(s, p, pk + 3 * nr); b1 = FloatVector.fromArray(s, p, pk + 3 * nr + l);
            x = FloatVector.broadcast(s, a[a0 + k + 3]); c00 = x.fma(b0, c00); c01 = x.fma(b1, c01);
            x = FloatVector.broadcast(s, a[a1 + k + 3]); c10 = x.fma(b0, c10); c11 = x.fma(b1, c11);
            x = FloatVector.broadcast(s, a[a2 + k + 3]); c20 = x.fma(b0, c20); c21 = x.fma(b1, c21);
            x = FloatVector.broadcast(s, a[a3 + k + 3]); c30 = x.fma(b0, c30); c31 = x.fma(b1, c31);
            x = FloatVector.broadcast(s, a[a4 + k + 3]); c40 = x.fma(b0, c40); c41 = x.fma(b1, c41);
            x = FloatVector.broadcast(s, a[a5 + k + 3]); c50 = x.fma(b0, c50); c51 = x.fma(b1, c51);
        }
        for (; k < kc; k++, pk += nr) {
            b0 = FloatVector.fromArray(s, p, pk); b1 = FloatVector.fromArray(s, p, pk + l);
            x = FloatVector.broadcast(s, a[a0 + k]); c00 = x.fma(b0, c00); c01 = x.fma(b1, c01);
            x = FloatVector.broadcast(s, a[a1 + k]); c10 = x.fma(b0, c10); c11 = x.fma(b1, c11);
            x = FloatVector.broadcast(s, a[a2 + k]); c20 = x.fma(b0, c20); c21 = x.fma(b1, c21);
            x = FloatVector.broadcast(s, a[a3 + k]); c30 = x.fma(b0, c30); c31 = x.fma(b1, c31);
            x = FloatVector.broadcast(s, a[a4 + k]); c40 = x.fma(b0, c40); c41 = x.fma(b1, c41);
            x = FloatVector.broadcast(s, a[a5 + k]); c50 = x.fma(b0, c50); c51 = x.fma(b1, c51);
        }
        c00.intoArray(c, cOff); c01.intoArray(c, cOff + l);
        c10.intoArray(c, cOff + ldc); c11.intoArray(c, cOff + ldc + l);
        c20.intoArray(c, cOff + 2 * ldc); c21.intoArray(c, cOff + 2 * ldc + l);
        c30.intoArray(c, cOff + 3 * ldc); c31.intoArray(c, cOff + 3 * ldc + l);
        c40.intoArray(c, cOff + 4 * ldc); c41.intoArray(c, cOff + 4 * ldc + l);
        c50.intoArray(c, cOff + 5 * ldc); c51.intoArray(c, cOff + 5 * ldc + l);
    }

    /** One row of {@code A}: {@code C[1, NR] (+)= A[1, kc] · P[kc, NR]}, for the rows left over after blocks of 6. */
    static void kernel1x2(VectorWidth vw, float[] a, int aOff, float[] p, int pOff, int kc,
                          float[] c, int cOff, float[] init, int initOff) {
        VectorSpecies<Float> s = vw.f();
        int l = s.length(), nr = 2 * l;
        FloatVector c0, c1, d0, d1;
        if (init != null) {
            c0 = FloatVector.fromArray(s, init, initOff);
            c1 = FloatVector.fromArray(s, init, initOff + l);
        } else {
            c0 = FloatVector.fromArray(s, c, cOff);
            c1 = FloatVector.fromArray(s, c, cOff + l);
        }
        d0 = FloatVector.zero(s);
        d1 = FloatVector.zero(s);
        int k = 0, pk = pOff;
        for (; k + 1 < kc; k += 2, pk += 2 * nr) { // two chains per output vector to hide FMA latency
            FloatVector x = FloatVector.broadcast(s, a[aOff + k]);
            c0 = x.fma(FloatVector.fromArray(s, p, pk), c0);
            c1 = x.fma(FloatVector.fromArray(s, p, pk + l), c1);
            x = FloatVector.broadcast(s, a[aOff + k + 1]);
            d0 = x.fma(FloatVector.fromArray(s, p, pk + nr), d0);
            d1 = x.fma(FloatVector.fromArray(s, p, pk + nr + l), d1);
        }
        if (k < kc) {
            FloatVector x = FloatVector.broadcast(s, a[aOff + k]);
            c0 = x.fma(FloatVector.fromArray(s, p, pk), c0);
            c1 = x.fma(FloatVector.fromArray(s, p, pk + l), c1);
        }
        c0.add(d0).intoArray(c, cOff);
        c1.add(d1).intoArray(c, cOff + l);
    }

    /** Scalar reference of both kernels: {@code C[mr, nr] (+)= A[mr, kc] · P[kc, nr]}. */
    static void reference(int mr, int nr, float[] a, int aOff, int lda, float[] p, int pOff, int kc,
                          float[] c, int cOff, int ldc, float[] init, int initOff) {
        for (int i = 0; i < mr; i++) {
            for (int j = 0; j < nr; j++) {
                float sum = init != null ? init[initOff + j] : c[cOff + i * ldc + j];
                for (int k = 0; k < kc; k++) sum += a[aOff + i * lda + k] * p[pOff + k * nr + j];
                c[cOff + i * ldc + j] = sum;
            }
        }
    }
}
