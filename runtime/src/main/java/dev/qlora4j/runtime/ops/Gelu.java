package dev.qlora4j.runtime.ops;

import dev.qlora4j.quant.kernel.FastExp;
import dev.qlora4j.quant.kernel.KernelPool;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * GELU, tanh approximation ({@code gelu_new} in GPT-2, {@code bloom_gelu_forward} in BLOOM):
 * {@code 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))}.
 *
 * <p>Evaluated as {@code x·σ(2u)} with {@code 0.5·(1 + tanh u) = σ(2u) = 1/(1 + e)}, {@code e = exp(-2u)}, so neither
 * tail cancels; the backward is {@code σ·(1 + 2·x·u'·e·σ)} (since {@code 0.5·(1 - tanh²u) = 2σ(1 - σ)} and
 * {@code 1 - σ = e·σ}). {@code exp} is {@link FastExp} (a plain-float polynomial, within 2e-7 relative of
 * {@link Math#exp}). The Vector API loops ({@link #forwardRange}, {@link #backwardRange}) perform the scalar
 * reference's float operations in the same order ({@link #forwardRangeScalar}, {@link #backwardRangeScalar}, which
 * also do the tails), so every element is bit-identical to it. Large calls run in fixed {@link #CHUNK}-element tiles
 * on the {@link KernelPool}; results do not depend on the thread count.
 */
public final class Gelu {
    private Gelu() {
    }

    static final float SQRT_2_OVER_PI = 0.7978845608028654f;
    /** Elements per pool tile. */
    static final int CHUNK = 1 << 14;

    /** fp32 {@code exp(z)} for z in [-87, 88] (clamped outside), within 2e-7 relative of {@link Math#exp}. */
    static float exp(float z) {
        return FastExp.exp(z);
    }

    /** {@code -2u}, u the tanh argument. */
    private static float minus2u(float v) {
        return -2f * SQRT_2_OVER_PI * (v + 0.044715f * v * v * v);
    }

    /** {@link #minus2u(float)} lane-wise, the same float operations in the same order. */
    private static FloatVector minus2u(FloatVector v) {
        return v.mul(0.044715f).mul(v).mul(v).add(v).mul(-2f * SQRT_2_OVER_PI);
    }

    /** @param x (n) at xOff; y (n) at yOff, may alias x at the same offset. */
    public static void forward(float[] x, int xOff, float[] y, int yOff, int n) {
        if (!Parallel.worthIt(n)) {
            forwardRange(x, xOff, y, yOff, n);
            return;
        }
        Job job = Job.LOCAL.get();
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
        if (!Parallel.worthIt(n)) {
            backwardRange(x, xOff, dy, dyOff, dx, dxOff, n);
            return;
        }
        Job job = Job.LOCAL.get();
        job.set(true, x, xOff, dy, dyOff, dx, dxOff, n);
        job.runOnPool();
    }

    /** Forward over a range: the Vector API loop, the scalar reference for the tail. */
    static void forwardRange(float[] x, int xOff, float[] y, int yOff, int n) {
        VectorSpecies<Float> s = FastExp.SPECIES; // the kernels' width
        int l = s.length(), i = 0;
        for (; i <= n - l; i += l) {
            FloatVector v = FloatVector.fromArray(s, x, xOff + i);
            v.div(FastExp.exp(minus2u(v)).add(1f)).intoArray(y, yOff + i);
        }
        if (i < n) forwardRangeScalar(x, xOff + i, y, yOff + i, n - i);
    }

    /** Backward over a range: the Vector API loop, the scalar reference for the tail. */
    static void backwardRange(float[] x, int xOff, float[] dy, int dyOff, float[] dx, int dxOff, int n) {
        VectorSpecies<Float> s = FastExp.SPECIES; // the kernels' width
        int l = s.length(), i = 0;
        for (; i <= n - l; i += l) {
            FloatVector v = FloatVector.fromArray(s, x, xOff + i);
            FloatVector e = FastExp.exp(minus2u(v));                        // exp(-2u)
            FloatVector sig = FloatVector.broadcast(s, 1f).div(e.add(1f));  // 0.5·(1 + tanh u)
            FloatVector du = v.mul(3f * 0.044715f).mul(v).add(1f).mul(SQRT_2_OVER_PI);
            FloatVector g = sig.mul(v.mul(2f).mul(du).mul(e.mul(sig)).add(1f));
            FloatVector.fromArray(s, dy, dyOff + i).mul(g).intoArray(dx, dxOff + i);
        }
        if (i < n) backwardRangeScalar(x, xOff + i, dy, dyOff + i, dx, dxOff + i, n - i);
    }

    /** Scalar reference of {@link #forwardRange}. */
    static void forwardRangeScalar(float[] x, int xOff, float[] y, int yOff, int n) {
        for (int i = 0; i < n; i++) {
            float v = x[xOff + i];
            float e = FastExp.exp(minus2u(v)); // exp(-2u)
            y[yOff + i] = v / (1f + e);
        }
    }

    /** Scalar reference of {@link #backwardRange}. */
    static void backwardRangeScalar(float[] x, int xOff, float[] dy, int dyOff, float[] dx, int dxOff, int n) {
        for (int i = 0; i < n; i++) {
            float v = x[xOff + i];
            float e = FastExp.exp(minus2u(v)); // exp(-2u)
            float sig = 1f / (1f + e);         // 0.5·(1 + tanh u)
            float du = SQRT_2_OVER_PI * (1f + 3f * 0.044715f * v * v);
            dx[dxOff + i] = dy[dyOff + i] * (sig * (1f + 2f * v * du * (e * sig)));
        }
    }

    /** Fixed {@link #CHUNK}-element tiles of one forward or backward call; one per calling thread, re-armed per call. */
    private static final class Job implements KernelPool.TileJob {
        static final ThreadLocal<Job> LOCAL = ThreadLocal.withInitial(Job::new);
        private boolean backward;
        private float[] x, dy, out;
        private int xOff, dyOff, outOff, n;

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
            try {
                KernelPool.shared().run((n + CHUNK - 1) / CHUNK, this);
            } finally {
                x = dy = out = null;
            }
        }

        @Override
        public void run(int tile, int slot) {
            int i0 = tile * CHUNK, len = Math.min(CHUNK, n - i0);
            if (backward) {
                backwardRange(x, xOff + i0, dy, dyOff + i0, out, outOff + i0, len);
            } else {
                forwardRange(x, xOff + i0, out, outOff + i0, len);
            }
        }
    }
}
