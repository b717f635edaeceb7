package dev.qlora4j.lora.adapter;

import static dev.qlora4j.runtime.ops.SplitMix64.mix;

import dev.qlora4j.lora.params.ParamBuffer;
import dev.qlora4j.quant.kernel.KernelProvider;
import dev.qlora4j.quant.kernel.Kernels;
import dev.qlora4j.runtime.model.LinearHook;

/**
 * LoRA on one linear: {@code y += s · B(A(dropout(x)))} with {@code A [r, in]}, {@code B [out, r]} slices of a
 * {@link ParamBuffer}, {@code s = alpha / r} (rsLoRA: {@code alpha / √r}).
 *
 * <p>Backward, per row of {@code x} with {@code xd = dropout(x)}, {@code u = A·xd (r)} and
 * {@code g = s · Bᵀ·dy (r)}: {@code dB += s · dy ⊗ u}, {@code dA += g ⊗ xd}, {@code dx += mask ⊙ (Aᵀ·g)}. Everything
 * is recomputed from the {@code x} that backward receives, so backward needs no state from forward and is correct
 * under gradient checkpointing (forward recomputed before backward).
 *
 * <p>Dropout is inverted ({@code kept / (1 - p)}) and only in training mode. Its mask is a counter-based hash of
 * {@code (seed, module index, step, row, column)}: the same step gives the same mask in forward, in a recomputed
 * forward and in backward, with nothing stored. Advance {@link #setStep} once per micro-batch.
 *
 * <p>The work runs in {@link LoraHookJobs}: the {@link Kernels} row primitives ({@code dotRows},
 * {@code weightedRowSum}) on the shared {@link dev.qlora4j.quant.kernel.KernelPool}, parallel over row blocks for the
 * per-row products and over column blocks for {@code dA} and {@code dB}. Every output element is written by one tile
 * in a fixed order, so results are deterministic and do not depend on the thread count. The plain loops of
 * {@link #forwardReference} and {@link #backwardReference} are the scalar reference (tests). No allocation per call
 * once the scratch has grown to the largest batch seen.
 */
public final class LoraHook implements LinearHook {
    private final String path;
    private final int in, out, r;
    private final double alpha;
    private final float scale;
    private final float dropout;
    private final ParamBuffer buf;
    private final ParamBuffer.Slice a; // (r, in)
    private final ParamBuffer.Slice b; // (out, r)
    private final long seedBase;
    private final LoraHookJobs jobs;

    private boolean enabled = true;
    private boolean training;
    private long step;

    /**
     * With the process-wide kernels ({@link KernelProvider#get()}).
     *
     * @param index the module's position among the adapter's modules (decorrelates dropout masks)
     */
    public LoraHook(String path, int in, int out, int r, double alpha, boolean rslora, double dropout, ParamBuffer buf,
                    ParamBuffer.Slice a, ParamBuffer.Slice b, long seed, int index) {
        this(path, in, out, r, alpha, rslora, dropout, buf, a, b, seed, index, KernelProvider.get());
    }

    /**
     * @param index   the module's position among the adapter's modules (decorrelates dropout masks)
     * @param kernels the row primitives to compute with (the model's)
     */
    public LoraHook(String path, int in, int out, int r, double alpha, boolean rslora, double dropout, ParamBuffer buf,
                    ParamBuffer.Slice a, ParamBuffer.Slice b, long seed, int index, Kernels kernels) {
        this(path, in, out, r, alpha, rslora, dropout, buf, a, b, seed, index, new LoraHookJobs(kernels));
    }

    /** @param jobs compute and scratch, shared by the hooks of one model (they never run at the same time) */
    LoraHook(String path, int in, int out, int r, double alpha, boolean rslora, double dropout, ParamBuffer buf,
             ParamBuffer.Slice a, ParamBuffer.Slice b, long seed, int index, LoraHookJobs jobs) {
        if (a.length() != r * in) throw new IllegalArgumentException(path + ": lora_A slice " + a.shapeString() + " is not [" + r + ", " + in + "]");
        if (b.length() != out * r) throw new IllegalArgumentException(path + ": lora_B slice " + b.shapeString() + " is not [" + out + ", " + r + "]");
        this.path = path;
        this.in = in;
        this.out = out;
        this.r = r;
        this.alpha = alpha;
        this.scale = (float) LoraConfig.scaling(alpha, r, rslora);
        this.dropout = (float) dropout;
        this.buf = buf;
        this.a = a;
        this.b = b;
        this.seedBase = mix(seed * 0x9E3779B97F4A7C15L + index * 0xC2B2AE3D27D4EB4FL + 0x165667B19E3779F9L);
        this.jobs = jobs;
    }

    public String path() {
        return path;
    }

    public int in() {
        return in;
    }

    public int out() {
        return out;
    }

    public int r() {
        return r;
    }

    public double alpha() {
        return alpha;
    }

    /** {@code s}: alpha/r or alpha/√r. */
    public float scale() {
        return scale;
    }

    public float dropout() {
        return dropout;
    }

    public ParamBuffer.Slice sliceA() {
        return a;
    }

    public ParamBuffer.Slice sliceB() {
        return b;
    }

    public ParamBuffer buffer() {
        return buf;
    }

    public boolean enabled() {
        return enabled;
    }

    /** A disabled hook adds nothing in forward and nothing (no grads, no dx) in backward. */
    public void setEnabled(boolean enabled) {
        this.enabled = enabled;
    }

    public boolean training() {
        return training;
    }

    /** Dropout applies only in training mode (as nn.Dropout in {@code model.train()}). */
    public void setTraining(boolean training) {
        this.training = training;
    }

    /** Selects the dropout masks: one value per micro-batch, the same for its forward, recompute and backward. */
    public void setStep(long step) {
        this.step = step;
    }

    /** Whether dropout applies now (training mode and p > 0). */
    boolean dropping() {
        return training && dropout > 0;
    }

    @Override
    public void forward(float[] x, int xOff, float[] y, int yOff, int m) {
        if (!enabled || m <= 0) return;
        jobs.forward(this, x, xOff, y, yOff, m);
    }

    @Override
    public void backward(float[] x, int xOff, float[] dy, int dyOff, float[] dx, int dxOff, int m) {
        if (!enabled || m <= 0) return;
        jobs.backward(this, x, xOff, dy, dyOff, dx, dxOff, m);
    }

    /** The scalar reference of {@link #forward}: plain loops, one row at a time (tests compare against it). */
    void forwardReference(float[] x, int xOff, float[] y, int yOff, int m) {
        if (!enabled) return;
        float[] xd = new float[in], u = new float[r];
        float[] p = buf.params();
        int aOff = a.offset(), bOff = b.offset();
        boolean drop = training && dropout > 0;
        for (int row = 0; row < m; row++) {
            float[] src = x;
            int so = xOff + row * in;
            if (drop) {
                dropRow(x, so, row, xd, 0, null, 0);
                src = xd;
                so = 0;
            }
            for (int k = 0; k < r; k++) u[k] = dot(p, aOff + k * in, src, so, in);   // u = A·xd
            int yo = yOff + row * out;
            for (int o = 0; o < out; o++) {                                          // y += s·B·u
                int bo = bOff + o * r;
                float acc = 0;
                for (int k = 0; k < r; k++) acc += p[bo + k] * u[k];
                y[yo + o] += scale * acc;
            }
        }
    }

    /** The scalar reference of {@link #backward}: plain loops, one row at a time (tests compare against it). */
    void backwardReference(float[] x, int xOff, float[] dy, int dyOff, float[] dx, int dxOff, int m) {
        if (!enabled) return;
        float[] xd = new float[in], mask = new float[in], dxd = new float[in], u = new float[r], g = new float[r];
        float[] p = buf.params(), gr = buf.grads();
        int aOff = a.offset(), bOff = b.offset();
        boolean drop = training && dropout > 0;
        for (int row = 0; row < m; row++) {
            float[] src = x;
            int so = xOff + row * in;
            if (drop) {
                dropRow(x, so, row, xd, 0, mask, 0);
                src = xd;
                so = 0;
            }
            for (int k = 0; k < r; k++) u[k] = dot(p, aOff + k * in, src, so, in);   // u = A·xd
            int dyo = dyOff + row * out;
            java.util.Arrays.fill(g, 0f);
            for (int o = 0; o < out; o++) {
                float d = dy[dyo + o];
                if (d == 0f) continue;
                int bo = bOff + o * r;
                float sd = scale * d;
                for (int k = 0; k < r; k++) {
                    g[k] += sd * p[bo + k];                                          // g = s·Bᵀ·dy
                    gr[bo + k] += sd * u[k];                                         // dB += s·dy ⊗ u
                }
            }
            java.util.Arrays.fill(dxd, 0f);
            for (int k = 0; k < r; k++) {
                float gk = g[k];
                if (gk == 0f) continue;
                int ao = aOff + k * in;
                for (int i = 0; i < in; i++) {
                    gr[ao + i] += gk * src[so + i];                                  // dA += g ⊗ xd
                    dxd[i] += gk * p[ao + i];                                        // dxd = Aᵀ·g
                }
            }
            int dxo = dxOff + row * in;
            if (drop) {
                for (int i = 0; i < in; i++) dx[dxo + i] += dxd[i] * mask[i];
            } else {
                for (int i = 0; i < in; i++) dx[dxo + i] += dxd[i];
            }
        }
    }

    /**
     * The dropout of one row {@code row} of {@code x} (at {@code off}): {@code xd = x ⊙ mask} into {@code xd} at
     * {@code xdOff}, and the mask (0 or 1/(1-p)) into {@code mask} at {@code maskOff} unless {@code mask} is null.
     */
    void dropRow(float[] x, int off, int row, float[] xd, int xdOff, float[] mask, int maskOff) {
        float keepScale = dropout >= 1f ? 0f : 1f / (1f - dropout);
        long threshold = (long) Math.floor((double) dropout * (1L << 24));
        long base = mix(seedBase ^ (step * 0xD6E8FEB86659FD93L)) + (long) row * in;
        for (int i = 0; i < in; i++) {
            long h = mix(base + i) >>> 40; // 24 uniform bits
            float mk = h >= threshold ? keepScale : 0f;
            if (mask != null) mask[maskOff + i] = mk;
            xd[xdOff + i] = x[off + i] * mk;
        }
    }

    /** The dropout mask of {@code row} at the current step (1/(1-p) kept, 0 dropped), for tests. */
    float[] maskOf(int row) {
        float[] mask = new float[in];
        dropRow(new float[in], 0, row, new float[in], 0, mask, 0);
        return mask;
    }

    /** Dot product with four independent accumulators (no FMA chain through one register). */
    static float dot(float[] a, int ao, float[] b, int bo, int n) {
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int i = 0;
        for (; i + 3 < n; i += 4) {
            s0 += a[ao + i] * b[bo + i];
            s1 += a[ao + i + 1] * b[bo + i + 1];
            s2 += a[ao + i + 2] * b[bo + i + 2];
            s3 += a[ao + i + 3] * b[bo + i + 3];
        }
        for (; i < n; i++) s0 += a[ao + i] * b[bo + i];
        return (s0 + s1) + (s2 + s3);
    }

}
