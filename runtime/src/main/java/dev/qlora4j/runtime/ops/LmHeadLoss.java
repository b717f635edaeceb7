package dev.qlora4j.runtime.ops;

import dev.qlora4j.quant.kernel.KernelPool;
import dev.qlora4j.quant.kernel.Kernels;
import dev.qlora4j.quant.weight.DenseWeight;

/**
 * The tied LM head fused with cross-entropy, in row chunks so the (B·T, V) logits are never materialized: for each
 * chunk of rows, {@code logits (rows, V) = x · Wteᵀ}, then per row the log-sum-exp, the loss and (fused, same pass)
 * {@code dlogits = (softmax - onehot(target)) / divisor} in place, then {@code dx = dlogits · Wte} through
 * {@link Kernels#matmulBackwardInput} and optionally {@code dWte += dlogitsᵀ · x} through
 * {@link Kernels#matmulWeightGrad}. Targets equal to
 * {@link #IGNORE_INDEX} contribute neither loss nor gradient, as torch's {@code ignore_index = -100}.
 *
 * <p>The per-row softmax runs on the kernel pool (one tile per row); the two matmuls parallelize inside the kernels.
 * One instance per training workspace; nothing is allocated per call.
 */
public final class LmHeadLoss {
    public static final int IGNORE_INDEX = -100;

    private final Kernels kernels;
    private final DenseWeight wte;   // (V, C)
    private final int v, c, chunkRows;
    private final float[] logits;    // (chunkRows, V), overwritten in place by dlogits
    private final double[] rowLoss;  // (chunkRows)
    private final float[] xg, dxg;   // (chunkRows, C) gathered rows with a target, and their dx
    private final int[] tg, src;     // (chunkRows) their targets, and their row in the caller's x
    private final RowJob rowJob = new RowJob();

    /** Allocates its own (chunkRows, V) logits buffer. */
    public LmHeadLoss(Kernels kernels, DenseWeight wte, int chunkRows) {
        this(kernels, wte, new float[Math.multiplyExact(chunkRows, wte.rows())], chunkRows);
    }

    /** @param logitsBuffer (≥ chunkRows·V) scratch, e.g. a workspace's {@code logits} */
    public LmHeadLoss(Kernels kernels, DenseWeight wte, float[] logitsBuffer, int chunkRows) {
        if (chunkRows <= 0) throw new IllegalArgumentException("chunkRows " + chunkRows);
        if (logitsBuffer.length < (long) chunkRows * wte.rows()) {
            throw new IllegalArgumentException("logits buffer holds " + logitsBuffer.length + " floats, needs "
                    + (long) chunkRows * wte.rows());
        }
        this.kernels = kernels;
        this.wte = wte;
        this.v = wte.rows();
        this.c = wte.cols();
        this.chunkRows = chunkRows;
        this.logits = logitsBuffer;
        this.rowLoss = new double[chunkRows];
        this.xg = new float[chunkRows * c];
        this.dxg = new float[chunkRows * c];
        this.tg = new int[chunkRows];
        this.src = new int[chunkRows];
    }

    /** Rows whose target is not {@link #IGNORE_INDEX}; throws on a target outside {@code [0, V)}. */
    public int countTargets(int[] targets, int tgtOff, int rows) {
        int count = 0;
        for (int r = 0; r < rows; r++) {
            int y = targets[tgtOff + r];
            if (y == IGNORE_INDEX) continue;
            if (y < 0 || y >= v) {
                throw new IllegalArgumentException("target " + y + " at row " + r + " outside [0, " + v + ") and not "
                        + IGNORE_INDEX);
            }
            count++;
        }
        return count;
    }

    /**
     * Mean cross-entropy over the rows whose target is not ignored (NaN when all are, as torch); no gradients.
     *
     * @param x       (rows, C) at xOff, the final hidden states (after ln_f)
     * @param targets (rows) at tgtOff
     */
    public double forward(float[] x, int xOff, int[] targets, int tgtOff, int rows) {
        int count = countTargets(targets, tgtOff, rows);
        return run(x, xOff, targets, tgtOff, rows, null, 0, null, 0, 1.0) / count;
    }

    /** {@link #forwardBackward(float[], int, int[], int, int, float[], int, float[], double)} for the mean loss. */
    public double forwardBackward(float[] x, int xOff, int[] targets, int tgtOff, int rows, float[] dx, int dxOff) {
        int count = countTargets(targets, tgtOff, rows);
        return forwardBackward(x, xOff, targets, tgtOff, rows, dx, dxOff, null, count);
    }

    /**
     * Loss and gradient in one pass over the chunks.
     *
     * @param x       (rows, C) at xOff
     * @param targets (rows) at tgtOff
     * @param dx      (rows, C) at dxOff, overwritten with {@code d(Σ loss / divisor) / dx}
     * @param dWte    (V, C) accumulated into ({@code dWte += dlogitsᵀ·x}, the LM head's share of the tied
     *                embedding's gradient, for full fine-tuning), or null
     * @param divisor what the summed loss is divided by for the gradient: the number of non-ignored targets for
     *                this call's mean, or the total over all micro-batches of a gradient-accumulation step
     * @return the mean loss over this call's non-ignored targets (NaN when every target is ignored)
     */
    public double forwardBackward(float[] x, int xOff, int[] targets, int tgtOff, int rows, float[] dx, int dxOff,
                                  float[] dWte, double divisor) {
        return forwardBackward(x, xOff, targets, tgtOff, rows, dx, dxOff, dWte, 0, divisor);
    }

    /** As above with {@code dWte (V, C)} at {@code dWteOff} (e.g. inside one flat gradient buffer). */
    public double forwardBackward(float[] x, int xOff, int[] targets, int tgtOff, int rows, float[] dx, int dxOff,
                                  float[] dWte, int dWteOff, double divisor) {
        int count = countTargets(targets, tgtOff, rows);
        if (dWte != null && dWte.length - (long) dWteOff < (long) v * c) {
            throw new IllegalArgumentException("dWte too small");
        }
        if (count == 0) {
            java.util.Arrays.fill(dx, dxOff, dxOff + rows * c, 0f);
            return Double.NaN;
        }
        return run(x, xOff, targets, tgtOff, rows, dx, dxOff, dWte, dWteOff, 1.0 / divisor) / count;
    }

    /**
     * Summed loss over the non-ignored rows; with dx != null, also the gradients scaled by {@code gradScale}. Only rows
     * with a target go through the LM head: they are gathered, chunkRows at a time, into {@link #xg} (ignored rows get
     * {@code dx = 0} directly), so prompt tokens and padding of prompt/completion data cost nothing here.
     */
    private double run(float[] x, int xOff, int[] targets, int tgtOff, int rows, float[] dx, int dxOff, float[] dWte,
                       int dWteOff, double gradScale) {
        double total = 0;
        KernelPool pool = KernelPool.shared();
        for (int r = 0; r < rows; ) {
            int m = 0; // gather up to chunkRows rows that have a target
            for (; r < rows && m < chunkRows; r++) {
                int y = targets[tgtOff + r];
                if (y == IGNORE_INDEX) {
                    if (dx != null) java.util.Arrays.fill(dx, dxOff + r * c, dxOff + (r + 1) * c, 0f);
                    continue;
                }
                System.arraycopy(x, xOff + r * c, xg, m * c, c);
                tg[m] = y;
                src[m] = r;
                m++;
            }
            if (m == 0) continue;
            kernels.matmul(xg, 0, wte, null, logits, 0, m); // logits (m, V)
            rowJob.arm(tg, 0, dx != null, gradScale);
            if (m == 1 || (long) m * v < 1 << 15) {
                for (int i = 0; i < m; i++) rowJob.run(i, 0);
            } else {
                pool.run(m, rowJob);
            }
            rowJob.targets = null;
            for (int i = 0; i < m; i++) total += rowLoss[i];
            if (dx != null) {
                kernels.matmulBackwardInput(logits, 0, wte, dxg, 0, m, false); // dxg (m, C)
                for (int i = 0; i < m; i++) System.arraycopy(dxg, i * c, dx, dxOff + src[i] * c, c);
                if (dWte != null) { // dWte (V, C) += dlogitsᵀ (V, m) · xg (m, C)
                    kernels.matmulWeightGrad(logits, 0, xg, 0, m, v, c, dWte, dWteOff);
                }
            }
        }
        return total;
    }

    /** One row of the chunk: loss, and with backward, dlogits in place of the logits. */
    private final class RowJob implements KernelPool.TileJob {
        int[] targets;
        int tgtOff;
        boolean backward;
        double gradScale;

        void arm(int[] targets, int tgtOff, boolean backward, double gradScale) {
            this.targets = targets;
            this.tgtOff = tgtOff;
            this.backward = backward;
            this.gradScale = gradScale;
        }

        @Override
        public void run(int r, int slot) {
            int y = targets[tgtOff + r]; // never IGNORE_INDEX: run() gathers only rows with a target
            int o = r * v;               // row r of logits (m, V)
            float max = kernels.rowMax(logits, o, v);
            float target = logits[o + y];
            double sum = kernels.expInPlace(logits, o, v, max); // logits row → exp(logit - max)
            if (backward) {
                float s = (float) (gradScale / sum);
                for (int j = 0; j < v; j++) logits[o + j] *= s;
                logits[o + y] -= (float) gradScale;
            }
            rowLoss[r] = max + Math.log(sum) - target;
        }
    }
}
