package dev.qlora4j.quant.kernel;

import java.util.concurrent.atomic.AtomicIntegerArray;

/**
 * The broadcast operand of a GEMM, {@code A (M, depth)} (x of a forward, dy of a dY·W), packed into
 * {@code (ceil(M / MR), depth, MR)} ({@link MicroKernel#packA}) one (row block, reduction pass) at a time by the
 * first tile that needs it, instead of in a pass of its own before the GEMM.
 *
 * <p>Why: the separate pass streamed all of A out to memory and back before any FMA ran (on an AVX-512 Xeon, dY·W
 * 768→3072 at M = 1024: 1.3–1.6 ms of packing in a 19 ms call, and the call ran 3–4 ms faster when the pack was
 * skipped). Packed on first use, a block goes from A through L1 straight into the micro-kernel, and the tiles that
 * need it later read the packed copy.
 *
 * <p>Claiming: a block's state goes EMPTY → PACKING (one compare-and-set wins) → READY. A tile that finds a block
 * being packed by another thread packs its own copy into its scratch and goes on (no waiting: on a shared host the
 * other thread may be descheduled). Packing is a copy, so every copy is identical and results do not depend on who
 * packed. The READY write is a volatile store after the packed floats and every reader checks READY with a volatile
 * load first, so a reader sees the floats.
 */
final class LazyPackedA {

    private static final int EMPTY = 0, PACKING = 1, READY = 2;

    private final int mr, kcMax;
    private float[] packed = new float[0]; // (blocks, depth, MR) grown on demand
    private AtomicIntegerArray state = new AtomicIntegerArray(0); // (blocks, passes) grown on demand
    private float[] a; // (M, lda) at aOff, the source
    private int aOff, lda, m, depth, passes;
    private boolean shared; // false: a single column tile uses each block once, so blocks go to scratch only

    LazyPackedA(int mr, int kcMax) {
        this.mr = mr;
        this.kcMax = kcMax;
    }

    /**
     * @param a      source {@code A (m, depth)} at {@code aOff}, row stride {@code lda}
     * @param shared whether several tiles read each block (more than one column tile)
     */
    void set(float[] a, int aOff, int lda, int m, int depth, boolean shared) {
        int blocks = (m + mr - 1) / mr;
        this.passes = (depth + kcMax - 1) / kcMax;
        this.shared = shared;
        if (shared) {
            long need = (long) blocks * depth * mr;
            if (need > Integer.MAX_VALUE - 8) throw new IllegalArgumentException("M·K too large: " + m + "·" + depth);
            if (packed.length < need) packed = new float[(int) need];
            int states = blocks * passes;
            if (state.length() < states) state = new AtomicIntegerArray(states);
            for (int s = 0; s < states; s++) state.setPlain(s, EMPTY); // published by the pool's start of the job
        }
        this.a = a;
        this.aOff = aOff;
        this.lda = lda;
        this.m = m;
        this.depth = depth;
    }

    void clear() {
        a = null;
    }

    /**
     * The packed block of rows {@code [i, i + MR)} and reduction columns {@code [pc, pc + kc)} ({@code i} a multiple
     * of MR, {@code pc} of KC): either the shared packed array (at {@link #offset}) or {@code scratch (kc, MR)}
     * (at 0), which this call filled.
     */
    float[] block(int i, int pc, int kc, float[] scratch) {
        if (shared) {
            int s = (i / mr) * passes + pc / kcMax;
            int st = state.get(s);
            if (st == READY) return packed;
            if (st == EMPTY && state.compareAndSet(s, EMPTY, PACKING)) {
                MicroKernel.packA(mr, a, aOff + pc, lda, i, m, kc, packed, offset(i, pc));
                state.set(s, READY);
                return packed;
            }
        }
        MicroKernel.packA(mr, a, aOff + pc, lda, i, m, kc, scratch, 0);
        return scratch;
    }

    /** Where block {@code (i, pc)} starts in the shared packed array. */
    int offset(int i, int pc) {
        return (i / mr * depth + pc) * mr;
    }
}
