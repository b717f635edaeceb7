package dev.qlora4j.runtime.ops;

import dev.qlora4j.quant.kernel.KernelPool;

/**
 * Elementwise fp32 ops of the residual stream: a plain loop C2 vectorizes. Memory-bound, so only very large calls
 * ({@link #POOL_MIN}) go to the {@link KernelPool} in fixed chunks; at GPT-2 training sizes (1024 × 768) waking the
 * pool cost more than the add (0.66 ms vs 0.16 ms measured on 2 shared cores).
 */
public final class Elementwise {
    private Elementwise() {
    }

    /** Elements per pool tile. */
    static final int CHUNK = 1 << 15;
    /** Elements from which an add runs on the pool. */
    static final int POOL_MIN = 1 << 22;

    /**
     * {@code out[i] = a[i] + b[i]} for {@code i < n}; {@code out} may alias {@code a} or {@code b} at the same offset
     * (so {@code add(d, 0, s, 0, d, 0, n)} is {@code d += s}).
     */
    public static void add(float[] a, int aOff, float[] b, int bOff, float[] out, int outOff, int n) {
        if (n < POOL_MIN || !Parallel.worthIt(n)) {
            addRange(a, aOff, b, bOff, out, outOff, n);
            return;
        }
        AddJob job = AddJob.LOCAL.get();
        job.a = a;
        job.aOff = aOff;
        job.b = b;
        job.bOff = bOff;
        job.out = out;
        job.outOff = outOff;
        job.n = n;
        try {
            KernelPool.shared().run((n + CHUNK - 1) / CHUNK, job);
        } finally {
            job.a = job.b = job.out = null;
        }
    }

    private static void addRange(float[] a, int aOff, float[] b, int bOff, float[] out, int outOff, int n) {
        if (aOff == outOff && bOff == outOff) { // one index for all three: C2 vectorizes it even if they alias
            for (int i = outOff; i < outOff + n; i++) out[i] = a[i] + b[i];
        } else {
            for (int i = 0; i < n; i++) out[outOff + i] = a[aOff + i] + b[bOff + i];
        }
    }

    /** One per calling thread, re-armed per call: nothing is allocated per step. */
    private static final class AddJob implements KernelPool.TileJob {
        static final ThreadLocal<AddJob> LOCAL = ThreadLocal.withInitial(AddJob::new);
        float[] a, b, out;
        int aOff, bOff, outOff, n;

        @Override
        public void run(int tile, int slot) {
            int i0 = tile * CHUNK;
            addRange(a, aOff + i0, b, bOff + i0, out, outOff + i0, Math.min(CHUNK, n - i0));
        }
    }
}
