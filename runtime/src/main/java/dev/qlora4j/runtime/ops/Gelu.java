package dev.qlora4j.runtime.ops;

import dev.qlora4j.quant.kernel.KernelPool;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * GELU, tanh approximation ({@code gelu_new} in GPT-2, {@code bloom_gelu_forward} in BLOOM):
 * {@code 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))}.
 *
 * <p>Evaluated as {@code x·σ(2u)} with {@code 0.5·(1 + tanh u) = σ(2u) = 1/(1 + e)}, {@code e = exp(-2u)}, so neither
 * tail cancels; the backward is {@code σ·(1 + 2·x·u'·e·σ)} (since {@code 0.5·(1 - tanh²u) = 2σ(1 - σ)} and
 * {@code 1 - σ = e·σ}). {@code exp} is a plain-float Cephes-style {@link #exp} (within 1e-7 relative of
 * {@link Math#exp}) split in two loops per block, the 2^n scale, then the polynomial, so that C2 vectorizes both:
 * no scalar {@code Math.tanh} / {@code Math.exp} call per element. Large calls run in fixed {@link #CHUNK}-element
 * tiles on the {@link KernelPool}; every element is computed the same way whatever the tiling or tier, so results do
 * not depend on the thread count.
 */
public final class Gelu {
    private Gelu() {
    }

    static final float SQRT_2_OVER_PI = 0.7978845608028654f;
    /** Elements per pool tile. */
    static final int CHUNK = 1 << 14;
    /** Elements per two-loop block (the size of the per-thread scale scratch). */
    static final int BLOCK = 512;

    private static final float LOG2E = 1.44269504088896341f, MAGIC = 12582912f; // 1.5·2^23: rounds to an integer
    private static final float LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f;
    private static final float EXP_MIN = -87f, EXP_MAX = 88f;

    /** {@code 2^round(z·log2 e)} for z clamped to [-87, 88], as a float built from its exponent bits. */
    private static float expScale(float z) {
        float c = Math.max(EXP_MIN, Math.min(EXP_MAX, z));
        // the low bits of c·log2e + 1.5·2^23 hold n + 0x400000; shifting by 23 keeps (n + 127) as the exponent
        return Float.intBitsToFloat((Float.floatToRawIntBits(c * LOG2E + MAGIC) + 127) << 23);
    }

    /** {@code exp(r)} of the reduced argument of z clamped to [-87, 88]: {@code exp(z) = expPoly(z) · expScale(z)}. */
    private static float expPoly(float z) {
        float c = Math.max(EXP_MIN, Math.min(EXP_MAX, z));
        float n = (c * LOG2E + MAGIC) - MAGIC;
        float r = c - n * LN2_HI - n * LN2_LO;
        float p = 1.9875691500E-4f;
        p = p * r + 1.3981999507E-3f;
        p = p * r + 8.3334519073E-3f;
        p = p * r + 4.1665795894E-2f;
        p = p * r + 1.6666665459E-1f;
        p = p * r + 5.0000001201E-1f;
        return p * r * r + r + 1f;
    }

    /** fp32 {@code exp(z)} for z in [-87, 88] (clamped outside), within 1e-7 relative of {@link Math#exp}. */
    static float exp(float z) {
        return expPoly(z) * expScale(z);
    }

    /** {@code -2u}, u the tanh argument. */
    private static float minus2u(float v) {
        return -2f * SQRT_2_OVER_PI * (v + 0.044715f * v * v * v);
    }

    /** @param x (n) at xOff; y (n) at yOff, may alias x at the same offset. */
    public static void forward(float[] x, int xOff, float[] y, int yOff, int n) {
        Job job = Job.LOCAL.get();
        if (!Parallel.worthIt(n)) {
            forwardRange(x, xOff, y, yOff, n, job.scratch(0));
            return;
        }
        job.set(false, x, xOff, null, 0, y, yOff, n);
        job.runOnPool();
    }

    /**
     * Backward of {@link #forward}: {@code dx = dy · (0.5·(1 + tanh u) + 0.5·x·(1 - tanh²u)·√(2/π)·(1 + 3·0.044715·x²))}.
     *
     * @param x  (n) at xOff, the forward input
     * @param dy (n) at dyOff, gradient w.r.t. the output
     * @param dx (n) at dxOff, overwritten; may alias dy at the same offset
     */
    public static void backward(float[] x, int xOff, float[] dy, int dyOff, float[] dx, int dxOff, int n) {
        Job job = Job.LOCAL.get();
        if (!Parallel.worthIt(n)) {
            backwardRange(x, xOff, dy, dyOff, dx, dxOff, n, job.scratch(0));
            return;
        }
        job.set(true, x, xOff, dy, dyOff, dx, dxOff, n);
        job.runOnPool();
    }

    /** Forward over a range: the Vector API loop, its scalar twin ({@link #forwardRangeScalar}) for the tail. */
    static void forwardRange(float[] x, int xOff, float[] y, int yOff, int n, float[] sc) {
        VectorSpecies<Float> s = FloatVector.SPECIES_PREFERRED;
        int l = s.length(), i = 0;
        for (; i <= n - l; i += l) {
            FloatVector v = FloatVector.fromArray(s, x, xOff + i);
            v.div(exp(minus2u(v)).add(1f)).intoArray(y, yOff + i);
        }
        if (i < n) forwardRangeScalar(x, xOff + i, y, yOff + i, n - i, sc);
    }

    /** Backward over a range: the Vector API loop, its scalar twin ({@link #backwardRangeScalar}) for the tail. */
    static void backwardRange(float[] x, int xOff, float[] dy, int dyOff, float[] dx, int dxOff, int n, float[] sc) {
        VectorSpecies<Float> s = FloatVector.SPECIES_PREFERRED;
        int l = s.length(), i = 0;
        for (; i <= n - l; i += l) {
            FloatVector v = FloatVector.fromArray(s, x, xOff + i);
            FloatVector e = exp(minus2u(v));                  // exp(-2u)
            FloatVector sig = FloatVector.broadcast(s, 1f).div(e.add(1f));   // 0.5·(1 + tanh u)
            FloatVector du = v.mul(3f * 0.044715f).mul(v).add(1f).mul(SQRT_2_OVER_PI);
            FloatVector g = sig.mul(v.mul(2f).mul(du).mul(e.mul(sig)).add(1f));
            FloatVector.fromArray(s, dy, dyOff + i).mul(g).intoArray(dx, dxOff + i);
        }
        if (i < n) backwardRangeScalar(x, xOff + i, dy, dyOff + i, dx, dxOff + i, n - i, sc);
    }

    /** {@link #minus2u(float)} lane-wise, the same float operations in the same order. */
    private static FloatVector minus2u(FloatVector v) {
        return v.mul(0.044715f).mul(v).mul(v).add(v).mul(-2f * SQRT_2_OVER_PI);
    }

    /** {@code expPoly(z) · expScale(z)} lane-wise, the same float operations in the same order. */
    private static FloatVector exp(FloatVector z) {
        FloatVector c = z.min(EXP_MAX).max(EXP_MIN);
        FloatVector t = c.mul(LOG2E).add(MAGIC);
        FloatVector n = t.sub(MAGIC);
        FloatVector r = c.sub(n.mul(LN2_HI)).sub(n.mul(LN2_LO));
        FloatVector p = r.mul(1.9875691500E-4f).add(1.3981999507E-3f);
        p = p.mul(r).add(8.3334519073E-3f);
        p = p.mul(r).add(4.1665795894E-2f);
        p = p.mul(r).add(1.6666665459E-1f);
        p = p.mul(r).add(5.0000001201E-1f);
        p = p.mul(r).mul(r).add(r).add(1f);
        IntVector bits = ((IntVector) t.reinterpretAsInts()).add(127).lanewise(VectorOperators.LSHL, 23);
        return p.mul(bits.reinterpretAsFloats());
    }

    /** Scalar reference of {@link #forwardRange}. @param sc scratch (≥ BLOCK) for the exp scales */
    static void forwardRangeScalar(float[] x, int xOff, float[] y, int yOff, int n, float[] sc) {
        for (int b0 = 0; b0 < n; b0 += BLOCK) {
            int len = Math.min(BLOCK, n - b0), xo = xOff + b0, yo = yOff + b0;
            for (int i = 0; i < len; i++) sc[i] = expScale(minus2u(x[xo + i]));
            for (int i = 0; i < len; i++) {
                float v = x[xo + i];
                float e = expPoly(minus2u(v)) * sc[i]; // exp(-2u)
                y[yo + i] = v / (1f + e);
            }
        }
    }

    /** Scalar reference of {@link #backwardRange}. */
    static void backwardRangeScalar(float[] x, int xOff, float[] dy, int dyOff, float[] dx, int dxOff, int n,
                                    float[] sc) {
        for (int b0 = 0; b0 < n; b0 += BLOCK) {
            int len = Math.min(BLOCK, n - b0), xo = xOff + b0, dyo = dyOff + b0, dxo = dxOff + b0;
            for (int i = 0; i < len; i++) sc[i] = expScale(minus2u(x[xo + i]));
            for (int i = 0; i < len; i++) {
                float v = x[xo + i];
                float e = expPoly(minus2u(v)) * sc[i]; // exp(-2u)
                float sig = 1f / (1f + e);             // 0.5·(1 + tanh u)
                float du = SQRT_2_OVER_PI * (1f + 3f * 0.044715f * v * v);
                dx[dxo + i] = dy[dyo + i] * (sig * (1f + 2f * v * du * (e * sig)));
            }
        }
    }

    /** Fixed {@link #CHUNK}-element tiles of one forward or backward call; one per calling thread, re-armed per call. */
    private static final class Job implements KernelPool.TileJob {
        static final ThreadLocal<Job> LOCAL = ThreadLocal.withInitial(Job::new);
        private float[][] scratch = new float[1][BLOCK]; // per pool slot
        private boolean backward;
        private float[] x, dy, out;
        private int xOff, dyOff, outOff, n;

        float[] scratch(int slot) {
            return scratch[slot];
        }

        void set(boolean backward, float[] x, int xOff, float[] dy, int dyOff, float[] out, int outOff, int n) {
            this.backward = backward;
            this.x = x;
            this.xOff = xOff;
            this.dy = dy;
            this.dyOff = dyOff;
            this.out = out;
            this.outOff = outOff;
            this.n = n;
        }

        void runOnPool() {
            KernelPool pool = KernelPool.shared();
            if (scratch.length < pool.threads()) { // once per calling thread
                float[][] s = new float[pool.threads()][];
                for (int i = 0; i < s.length; i++) s[i] = i < scratch.length ? scratch[i] : new float[BLOCK];
                scratch = s;
            }
            try {
                pool.run((n + CHUNK - 1) / CHUNK, this);
            } finally {
                x = dy = out = null;
            }
        }

        @Override
        public void run(int tile, int slot) {
            int i0 = tile * CHUNK, len = Math.min(CHUNK, n - i0);
            if (backward) {
                backwardRange(x, xOff + i0, dy, dyOff + i0, out, outOff + i0, len, scratch[slot]);
            } else {
                forwardRange(x, xOff + i0, out, outOff + i0, len, scratch[slot]);
            }
        }
    }
}
