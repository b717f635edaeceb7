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
 * add per broadcast and the loop hits the dispatch width before the FMA ports (≈ 68%). At 512 bits the CPU has 32
 * registers, and {@link #kernel8x2} (8 rows, 16 accumulators) keeps the FMA ports busier; {@link #mr} picks the kernel.
 */
final class MicroKernel {

    /** Rows of the AVX2-sized kernel {@link #kernel5x2}. */
    static final int MR_5 = 5;
    /** Rows of the AVX-512-sized kernel {@link #kernel8x2}. */
    static final int MR_8 = 8;
    /** Rows of the AVX-512-sized kernel {@link #kernel12x2} (24 accumulators; Intel cores, see {@link #mr512}). */
    static final int MR_12 = 12;

    private MicroKernel() {
    }

    /**
     * Rows per register block at 512 bits (below, always {@link #MR_5}: AVX2's 16 registers hold 10 accumulators):
     * {@code -Dqlora.mr512=8|12}, by default 12 on Intel cores and 8 elsewhere. Stand-alone on Zen 5, one thread,
     * panel and A in cache: 5×2 ran at 137–175 GFLOP/s, 8×2 at 184–212 of the 228.5 FMA peak (bench/RESULTS.md,
     * session 9). On an AVX-512 Xeon (one thread, packed A, a 4-sliver 768-deep panel in L2) the 12×2 loop ran at
     * 176–192 GFLOP/s against 164–174 for 8×2: it loads the two panel vectors once per 24 FMAs instead of 16, and
     * the panel comes from L2. C2 keeps all 24 accumulators in registers (no spill in the compiled loop). On Zen 5
     * 12×2 was no faster than 8×2 (197 against 184–212), and there the in-place 8-row kernel {@link #kernel8x2u} wins.
     */
    static int mr512() {
        String p = System.getProperty("qlora.mr512");
        if (p != null) {
            String t = p.trim();
            if (t.equals("8")) return MR_8;
            if (t.equals("12")) return MR_12;
            throw new IllegalArgumentException("-Dqlora.mr512 must be 8 or 12, not '" + p + "'");
        }
        return CpuVendor.intel() ? MR_12 : MR_8;
    }

    /** The kernel of {@code mr} rows (5, 8 or 12); same arguments as {@link #kernel5x2}. */
    static void kernel(VectorWidth vw, int mr, float[] ap, int aOff, float[] p, int pOff, int kc,
                       float[] c, int cOff, int ldc, float[] init, int initOff) {
        if (mr == MR_12) {
            kernel12x2(vw, ap, aOff, p, pOff, kc, c, cOff, ldc, init, initOff);
        } else if (mr == MR_8) {
            kernel8x2(vw, ap, aOff, p, pOff, kc, c, cOff, ldc, init, initOff);
        } else {
            kernel5x2(vw, ap, aOff, p, pOff, kc, c, cOff, ldc, init, initOff);
        }
    }

    /** Panel width in floats for this vector width: two vectors. */
    static int nr(VectorWidth vw) {
        return 2 * vw.f().length();
    }

    /**
     * @param ap    packed {@code A}: at {@code aOff}, {@code kc} groups of 5 floats, {@code ap[aOff + k·5 + r] = A[r][k]}
     *              (see {@link #packA}), so all five broadcasts of a step address one base register
     * @param p     packed panel {@code P (kc, NR)} at {@code pOff}, row stride {@code NR}
     * @param c     {@code C (5, NR)} at {@code cOff}, row stride {@code ldc}
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
        for (int k = 0, ak = aOff, pk = pOff; k < kc; k++, ak += MR_5, pk += nr) {
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
     * {@link #kernel5x2} with 8 rows: 16 accumulators, for AVX-512's 32 vector registers. {@code ap} holds groups of 8
     * floats per step ({@code ap[aOff + k·8 + r] = A[r][k]}).
     */
    static void kernel8x2(VectorWidth vw, float[] ap, int aOff, float[] p, int pOff, int kc,
                          float[] c, int cOff, int ldc, float[] init, int initOff) {
        VectorSpecies<Float> s = vw.f();
        int l = s.length(), nr = 2 * l;
        FloatVector c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71;
        if (init != null) {
            FloatVector i0 = FloatVector.fromArray(s, init, initOff), i1 = FloatVector.fromArray(s, init, initOff + l);
            c00 = i0; c01 = i1; c10 = i0; c11 = i1; c20 = i0; c21 = i1; c30 = i0; c31 = i1;
            c40 = i0; c41 = i1; c50 = i0; c51 = i1; c60 = i0; c61 = i1; c70 = i0; c71 = i1;
        } else {
            c00 = FloatVector.fromArray(s, c, cOff); c01 = FloatVector.fromArray(s, c, cOff + l);
            c10 = FloatVector.fromArray(s, c, cOff + ldc); c11 = FloatVector.fromArray(s, c, cOff + ldc + l);
            c20 = FloatVector.fromArray(s, c, cOff + 2 * ldc); c21 = FloatVector.fromArray(s, c, cOff + 2 * ldc + l);
            c30 = FloatVector.fromArray(s, c, cOff + 3 * ldc); c31 = FloatVector.fromArray(s, c, cOff + 3 * ldc + l);
            c40 = FloatVector.fromArray(s, c, cOff + 4 * ldc); c41 = FloatVector.fromArray(s, c, cOff + 4 * ldc + l);
            c50 = FloatVector.fromArray(s, c, cOff + 5 * ldc); c51 = FloatVector.fromArray(s, c, cOff + 5 * ldc + l);
            c60 = FloatVector.fromArray(s, c, cOff + 6 * ldc); c61 = FloatVector.fromArray(s, c, cOff + 6 * ldc + l);
            c70 = FloatVector.fromArray(s, c, cOff + 7 * ldc); c71 = FloatVector.fromArray(s, c, cOff + 7 * ldc + l);
        }
        for (int k = 0, ak = aOff, pk = pOff; k < kc; k++, ak += MR_8, pk += nr) {
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
            FloatVector x5 = FloatVector.broadcast(s, ap[ak + 5]);
            c50 = x5.fma(b0, c50); c51 = x5.fma(b1, c51);
            FloatVector x6 = FloatVector.broadcast(s, ap[ak + 6]);
            c60 = x6.fma(b0, c60); c61 = x6.fma(b1, c61);
            FloatVector x7 = FloatVector.broadcast(s, ap[ak + 7]);
            c70 = x7.fma(b0, c70); c71 = x7.fma(b1, c71);
        }
        c00.intoArray(c, cOff); c01.intoArray(c, cOff + l);
        c10.intoArray(c, cOff + ldc); c11.intoArray(c, cOff + ldc + l);
        c20.intoArray(c, cOff + 2 * ldc); c21.intoArray(c, cOff + 2 * ldc + l);
        c30.intoArray(c, cOff + 3 * ldc); c31.intoArray(c, cOff + 3 * ldc + l);
        c40.intoArray(c, cOff + 4 * ldc); c41.intoArray(c, cOff + 4 * ldc + l);
        c50.intoArray(c, cOff + 5 * ldc); c51.intoArray(c, cOff + 5 * ldc + l);
        c60.intoArray(c, cOff + 6 * ldc); c61.intoArray(c, cOff + 6 * ldc + l);
        c70.intoArray(c, cOff + 7 * ldc); c71.intoArray(c, cOff + 7 * ldc + l);
    }


    /**
     * {@link #kernel8x2} with 12 rows: 24 accumulators + 2 panel vectors + broadcasts of AVX-512's 32 registers (the
     * shape of BLIS's Skylake-X sgemm kernel). {@code ap} holds groups of 12 floats per step
     * ({@code ap[aOff + k·12 + r] = A[r][k]}).
     */
    static void kernel12x2(VectorWidth vw, float[] ap, int aOff, float[] p, int pOff, int kc,
                           float[] c, int cOff, int ldc, float[] init, int initOff) {
        VectorSpecies<Float> s = vw.f();
        int l = s.length(), nr = 2 * l;
        FloatVector c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71;
        FloatVector c80, c81, c90, c91, ca0, ca1, cb0, cb1;
        if (init != null) {
            FloatVector i0 = FloatVector.fromArray(s, init, initOff), i1 = FloatVector.fromArray(s, init, initOff + l);
            c00 = i0; c01 = i1; c10 = i0; c11 = i1; c20 = i0; c21 = i1; c30 = i0; c31 = i1;
            c40 = i0; c41 = i1; c50 = i0; c51 = i1; c60 = i0; c61 = i1; c70 = i0; c71 = i1;
            c80 = i0; c81 = i1; c90 = i0; c91 = i1; ca0 = i0; ca1 = i1; cb0 = i0; cb1 = i1;
        } else {
            c00 = FloatVector.fromArray(s, c, cOff); c01 = FloatVector.fromArray(s, c, cOff + l);
            c10 = FloatVector.fromArray(s, c, cOff + ldc); c11 = FloatVector.fromArray(s, c, cOff + ldc + l);
            c20 = FloatVector.fromArray(s, c, cOff + 2 * ldc); c21 = FloatVector.fromArray(s, c, cOff + 2 * ldc + l);
            c30 = FloatVector.fromArray(s, c, cOff + 3 * ldc); c31 = FloatVector.fromArray(s, c, cOff + 3 * ldc + l);
            c40 = FloatVector.fromArray(s, c, cOff + 4 * ldc); c41 = FloatVector.fromArray(s, c, cOff + 4 * ldc + l);
            c50 = FloatVector.fromArray(s, c, cOff + 5 * ldc); c51 = FloatVector.fromArray(s, c, cOff + 5 * ldc + l);
            c60 = FloatVector.fromArray(s, c, cOff + 6 * ldc); c61 = FloatVector.fromArray(s, c, cOff + 6 * ldc + l);
            c70 = FloatVector.fromArray(s, c, cOff + 7 * ldc); c71 = FloatVector.fromArray(s, c, cOff + 7 * ldc + l);
            c80 = FloatVector.fromArray(s, c, cOff + 8 * ldc); c81 = FloatVector.fromArray(s, c, cOff + 8 * ldc + l);
            c90 = FloatVector.fromArray(s, c, cOff + 9 * ldc); c91 = FloatVector.fromArray(s, c, cOff + 9 * ldc + l);
            ca0 = FloatVector.fromArray(s, c, cOff + 10 * ldc); ca1 = FloatVector.fromArray(s, c, cOff + 10 * ldc + l);
            cb0 = FloatVector.fromArray(s, c, cOff + 11 * ldc); cb1 = FloatVector.fromArray(s, c, cOff + 11 * ldc + l);
        }
        for (int k = 0, ak = aOff, pk = pOff; k < kc; k++, ak += MR_12, pk += nr) {
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
            FloatVector x5 = FloatVector.broadcast(s, ap[ak + 5]);
            c50 = x5.fma(b0, c50); c51 = x5.fma(b1, c51);
            FloatVector x6 = FloatVector.broadcast(s, ap[ak + 6]);
            c60 = x6.fma(b0, c60); c61 = x6.fma(b1, c61);
            FloatVector x7 = FloatVector.broadcast(s, ap[ak + 7]);
            c70 = x7.fma(b0, c70); c71 = x7.fma(b1, c71);
            FloatVector x8 = FloatVector.broadcast(s, ap[ak + 8]);
            c80 = x8.fma(b0, c80); c81 = x8.fma(b1, c81);
            FloatVector x9 = FloatVector.broadcast(s, ap[ak + 9]);
            c90 = x9.fma(b0, c90); c91 = x9.fma(b1, c91);
            FloatVector xa = FloatVector.broadcast(s, ap[ak + 10]);
            ca0 = xa.fma(b0, ca0); ca1 = xa.fma(b1, ca1);
            FloatVector xb = FloatVector.broadcast(s, ap[ak + 11]);
            cb0 = xb.fma(b0, cb0); cb1 = xb.fma(b1, cb1);
        }
        c00.intoArray(c, cOff); c01.intoArray(c, cOff + l);
        c10.intoArray(c, cOff + ldc); c11.intoArray(c, cOff + ldc + l);
        c20.intoArray(c, cOff + 2 * ldc); c21.intoArray(c, cOff + 2 * ldc + l);
        c30.intoArray(c, cOff + 3 * ldc); c31.intoArray(c, cOff + 3 * ldc + l);
        c40.intoArray(c, cOff + 4 * ldc); c41.intoArray(c, cOff + 4 * ldc + l);
        c50.intoArray(c, cOff + 5 * ldc); c51.intoArray(c, cOff + 5 * ldc + l);
        c60.intoArray(c, cOff + 6 * ldc); c61.intoArray(c, cOff + 6 * ldc + l);
        c70.intoArray(c, cOff + 7 * ldc); c71.intoArray(c, cOff + 7 * ldc + l);
        c80.intoArray(c, cOff + 8 * ldc); c81.intoArray(c, cOff + 8 * ldc + l);
        c90.intoArray(c, cOff + 9 * ldc); c91.intoArray(c, cOff + 9 * ldc + l);
        ca0.intoArray(c, cOff + 10 * ldc); ca1.intoArray(c, cOff + 10 * ldc + l);
        cb0.intoArray(c, cOff + 11 * ldc); cb1.intoArray(c, cOff + 11 * ldc + l);
    }

    /**
     * {@link #kernel8x2} reading the eight rows of {@code A} where they lie: row {@code r} of the block at
     * {@code a[aOff + r·lda ..]}, so nothing is packed (on AVX-512 machines packing A was 15% of a 3072→768 forward:
     * it streams all of X out to memory and back). The eight row indices are eight induction variables; on Zen 5 the
     * extra adds fit in the dispatch width (stand-alone, one thread: 203 GFLOP/s unpacked, 162–166 packed).
     */
    static void kernel8x2u(VectorWidth vw, float[] a, int aOff, int lda, float[] p, int pOff, int kc,
                           float[] c, int cOff, int ldc, float[] init, int initOff) {
        VectorSpecies<Float> s = vw.f();
        int l = s.length(), nr = 2 * l;
        int a0 = aOff, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda, a4 = a3 + lda, a5 = a4 + lda, a6 = a5 + lda,
                a7 = a6 + lda;
        FloatVector c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71;
        if (init != null) {
            FloatVector i0 = FloatVector.fromArray(s, init, initOff), i1 = FloatVector.fromArray(s, init, initOff + l);
            c00 = i0; c01 = i1; c10 = i0; c11 = i1; c20 = i0; c21 = i1; c30 = i0; c31 = i1;
            c40 = i0; c41 = i1; c50 = i0; c51 = i1; c60 = i0; c61 = i1; c70 = i0; c71 = i1;
        } else {
            c00 = FloatVector.fromArray(s, c, cOff); c01 = FloatVector.fromArray(s, c, cOff + l);
            c10 = FloatVector.fromArray(s, c, cOff + ldc); c11 = FloatVector.fromArray(s, c, cOff + ldc + l);
            c20 = FloatVector.fromArray(s, c, cOff + 2 * ldc); c21 = FloatVector.fromArray(s, c, cOff + 2 * ldc + l);
            c30 = FloatVector.fromArray(s, c, cOff + 3 * ldc); c31 = FloatVector.fromArray(s, c, cOff + 3 * ldc + l);
            c40 = FloatVector.fromArray(s, c, cOff + 4 * ldc); c41 = FloatVector.fromArray(s, c, cOff + 4 * ldc + l);
            c50 = FloatVector.fromArray(s, c, cOff + 5 * ldc); c51 = FloatVector.fromArray(s, c, cOff + 5 * ldc + l);
            c60 = FloatVector.fromArray(s, c, cOff + 6 * ldc); c61 = FloatVector.fromArray(s, c, cOff + 6 * ldc + l);
            c70 = FloatVector.fromArray(s, c, cOff + 7 * ldc); c71 = FloatVector.fromArray(s, c, cOff + 7 * ldc + l);
        }
        for (int k = 0, pk = pOff; k < kc; k++, pk += nr) {
            FloatVector b0 = FloatVector.fromArray(s, p, pk), b1 = FloatVector.fromArray(s, p, pk + l);
            FloatVector x0 = FloatVector.broadcast(s, a[a0 + k]);
            c00 = x0.fma(b0, c00); c01 = x0.fma(b1, c01);
            FloatVector x1 = FloatVector.broadcast(s, a[a1 + k]);
            c10 = x1.fma(b0, c10); c11 = x1.fma(b1, c11);
            FloatVector x2 = FloatVector.broadcast(s, a[a2 + k]);
            c20 = x2.fma(b0, c20); c21 = x2.fma(b1, c21);
            FloatVector x3 = FloatVector.broadcast(s, a[a3 + k]);
            c30 = x3.fma(b0, c30); c31 = x3.fma(b1, c31);
            FloatVector x4 = FloatVector.broadcast(s, a[a4 + k]);
            c40 = x4.fma(b0, c40); c41 = x4.fma(b1, c41);
            FloatVector x5 = FloatVector.broadcast(s, a[a5 + k]);
            c50 = x5.fma(b0, c50); c51 = x5.fma(b1, c51);
            FloatVector x6 = FloatVector.broadcast(s, a[a6 + k]);
            c60 = x6.fma(b0, c60); c61 = x6.fma(b1, c61);
            FloatVector x7 = FloatVector.broadcast(s, a[a7 + k]);
            c70 = x7.fma(b0, c70); c71 = x7.fma(b1, c71);
        }
        c00.intoArray(c, cOff); c01.intoArray(c, cOff + l);
        c10.intoArray(c, cOff + ldc); c11.intoArray(c, cOff + ldc + l);
        c20.intoArray(c, cOff + 2 * ldc); c21.intoArray(c, cOff + 2 * ldc + l);
        c30.intoArray(c, cOff + 3 * ldc); c31.intoArray(c, cOff + 3 * ldc + l);
        c40.intoArray(c, cOff + 4 * ldc); c41.intoArray(c, cOff + 4 * ldc + l);
        c50.intoArray(c, cOff + 5 * ldc); c51.intoArray(c, cOff + 5 * ldc + l);
        c60.intoArray(c, cOff + 6 * ldc); c61.intoArray(c, cOff + 6 * ldc + l);
        c70.intoArray(c, cOff + 7 * ldc); c71.intoArray(c, cOff + 7 * ldc + l);
    }

    /** Columns of A per chunk of {@link #packA}: a chunk of the packed block ({@code PACK_CHUNK · mr} floats) stays in L1. */
    static final int PACK_CHUNK = 64;

    /**
     * Packs rows {@code [i0, i0 + mr)} of {@code A (M, K)} (row stride {@code lda}) into {@code mr}-interleaved
     * order: {@code ap[apOff + k·mr + r] = A[i0 + r][k]}, rows at or past {@code m} as zeros. It walks
     * {@link #PACK_CHUNK} columns at a time: row by row over all of K, each row's stores (stride {@code mr}) would
     * spread over {@code K·mr·4} bytes (147 KB at K = 3072, mr = 12), past L1, and the next row would fetch the same
     * lines again from L2.
     */
    static void packA(int mr, float[] a, int aOff, int lda, int i0, int m, int k, float[] ap, int apOff) {
        for (int c0 = 0; c0 < k; c0 += PACK_CHUNK) {
            int c1 = Math.min(k, c0 + PACK_CHUNK);
            for (int r = 0; r < mr; r++) {
                int dst = apOff + c0 * mr + r;
                if (i0 + r < m) {
                    int src = aOff + (i0 + r) * lda;
                    for (int c = c0; c < c1; c++, dst += mr) ap[dst] = a[src + c];
                } else {
                    for (int c = c0; c < c1; c++, dst += mr) ap[dst] = 0f;
                }
            }
        }
    }

    /**
     * Packs columns {@code [j0, j0 + mr)} of {@code A (rows, cols)} (row stride {@code lda}) as mr-interleaved rows of
     * {@code Aᵀ}: {@code ap[apOff + i·mr + r] = A[i][j0 + r]}, columns at or past {@code cols} as zeros.
     */
    static void packAT(int mr, float[] a, int aOff, int lda, int j0, int cols, int rows, float[] ap, int apOff) {
        int full = Math.min(mr, cols - j0);
        for (int i = 0, dst = apOff, src = aOff + j0; i < rows; i++, dst += mr, src += lda) {
            for (int r = 0; r < full; r++) ap[dst + r] = a[src + r];
            for (int r = full; r < mr; r++) ap[dst + r] = 0f;
        }
    }

    /** Scalar reference of {@link #kernel8x2u}: {@code C[8, nr] (+)= A[8, kc] · P[kc, nr]}, {@code A} rows {@code lda} apart. */
    static void referenceUnpacked(int nr, float[] a, int aOff, int lda, float[] p, int pOff, int kc,
                                  float[] c, int cOff, int ldc, float[] init, int initOff) {
        for (int i = 0; i < MR_8; i++) {
            for (int j = 0; j < nr; j++) {
                float sum = init != null ? init[initOff + j] : c[cOff + i * ldc + j];
                for (int k = 0; k < kc; k++) sum += a[aOff + i * lda + k] * p[pOff + k * nr + j];
                c[cOff + i * ldc + j] = sum;
            }
        }
    }

    /** Scalar reference of the kernels: {@code C[mr, nr] (+)= A[mr, kc] · P[kc, nr]}, {@code A} packed as above. */
    static void reference(int mr, int nr, float[] ap, int aOff, float[] p, int pOff, int kc,
                          float[] c, int cOff, int ldc, float[] init, int initOff) {
        for (int i = 0; i < mr; i++) {
            for (int j = 0; j < nr; j++) {
                float sum = init != null ? init[initOff + j] : c[cOff + i * ldc + j];
                for (int k = 0; k < kc; k++) sum += ap[aOff + k * mr + i] * p[pOff + k * nr + j];
                c[cOff + i * ldc + j] = sum;
            }
        }
    }
}
