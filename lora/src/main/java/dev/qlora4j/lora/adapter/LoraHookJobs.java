package dev.qlora4j.lora.adapter;

import dev.qlora4j.quant.kernel.KernelPool;
import dev.qlora4j.quant.kernel.Kernels;

import java.util.Arrays;

/**
 * The compute of {@link LoraHook}, on the {@link Kernels} row primitives and the shared {@link KernelPool}, with the
 * scratch that all hooks of one model share (hooks of a model run one at a time; the methods are synchronized so a
 * shared instance stays safe anyway). With {@code A (r, in)}, {@code B (out, r)}, {@code xd = dropout(x) (M, in)}:
 *
 * <ul>
 *   <li>forward, over row blocks: {@code u_m = A·xd_m} ({@code dotRows} over the rows of A), then
 *       {@code y_m += Σ_k (s·u_m[k]) · Bᵀ_k} ({@code weightedRowSum} over the rows of {@code Bᵀ (r, out)}, transposed
 *       once per call);</li>
 *   <li>backward phase 1, over row blocks: {@code u_m = A·xd_m}, {@code g_m = s · Bᵀ·dy_m} ({@code dotRows} over
 *       the rows of {@code Bᵀ}), {@code dx_m += mask ⊙ Σ_k g_m[k] · A_k} ({@code weightedRowSum}); with dropout
 *       {@code xd} is kept for phase 2;</li>
 *   <li>backward phase 2, over column blocks: {@code dB[o, k] += s · Σ_m u[m, k] · dy[m, o]} (blocks of
 *       {@code out}) and {@code dA[k, i] += Σ_m g[m, k] · xd[m, i]} (blocks of {@code in}), rows summed in order
 *       into an {@code r × COLS} accumulator by plain {@code acc_k[i] += c_k·row[i]} loops that C2 vectorizes (the
 *       row is first copied to offset 0: C2 does not vectorize two same-typed arrays at different offsets, as they
 *       might alias), then added to the gradients.</li>
 * </ul>
 *
 * Tiles are fixed by the shapes alone and each output element is written by exactly one tile in a fixed order: the
 * results are deterministic and the same for every thread count. Tile jobs are created once; nothing is allocated
 * per call once the scratch has grown to the largest shapes seen.
 */
final class LoraHookJobs {
    /** Rows per tile of the row-parallel phases. */
    static final int ROWS = 16;
    /** Columns per tile of the dA / dB reductions (an {@code r × COLS} accumulator stays in L1). */
    static final int COLS = 256;
    private static final float[] ONE = {1f};

    private final Kernels k;
    private final KernelPool pool;
    private final int slots;

    // per-slot scratch
    private final float[][] rowScratch;  // (maxIn) dropped-out row in forward, Aᵀ·g row in backward
    private final float[][] maskScratch; // (maxIn) dropout mask of a row
    private final float[][] suScratch;   // (maxR) s·u of a row
    private final float[][][] colAcc;    // (maxR)(COLS) dA / dB accumulator, one array per k
    private final float[][] colRow;      // (COLS) the current row's column block, at offset 0

    // shared scratch, grown on demand
    private float[] bt = new float[0];    // (r, out) Bᵀ
    private float[] u = new float[0];     // (M, r) A·xd
    private float[] g = new float[0];     // (M, r) s·Bᵀ·dy
    private float[] xdAll = new float[0]; // (M, in) dropped-out input, backward with dropout only

    // the current call
    private LoraHook h;
    private float[] x, y, dy, dx, p, gr;
    private int xOff, yOff, dyOff, dxOff, m, in, out, r, aOff, bOff, outTiles, inTiles;
    private float scale;
    private boolean drop;

    private final KernelPool.TileJob forwardJob = this::forwardTile;
    private final KernelPool.TileJob rowsJob = this::backwardRowsTile;
    private final KernelPool.TileJob colsJob = this::backwardColsTile;

    LoraHookJobs(Kernels kernels) {
        this(kernels, KernelPool.shared());
    }

    LoraHookJobs(Kernels kernels, KernelPool pool) {
        if (kernels == null) throw new IllegalArgumentException("kernels is null");
        this.k = kernels;
        this.pool = pool;
        this.slots = pool.threads();
        this.rowScratch = new float[slots][0];
        this.maskScratch = new float[slots][0];
        this.suScratch = new float[slots][0];
        this.colAcc = new float[slots][0][];
        this.colRow = new float[slots][COLS];
    }

    Kernels kernels() {
        return k;
    }

    synchronized void forward(LoraHook hook, float[] x, int xOff, float[] y, int yOff, int m) {
        begin(hook, m);
        this.x = x;
        this.xOff = xOff;
        this.y = y;
        this.yOff = yOff;
        transposeB();
        try {
            pool.run(ceilDiv(m, ROWS), forwardJob);
        } finally {
            end();
        }
    }

    synchronized void backward(LoraHook hook, float[] x, int xOff, float[] dy, int dyOff, float[] dx, int dxOff,
                               int m) {
        begin(hook, m);
        this.x = x;
        this.xOff = xOff;
        this.dy = dy;
        this.dyOff = dyOff;
        this.dx = dx;
        this.dxOff = dxOff;
        this.gr = hook.buffer().grads();
        if (drop && xdAll.length < m * in) xdAll = new float[m * in];
        transposeB();
        try {
            pool.run(ceilDiv(m, ROWS), rowsJob);
            outTiles = ceilDiv(out, COLS);
            inTiles = ceilDiv(in, COLS);
            pool.run(outTiles + inTiles, colsJob);
        } finally {
            end();
        }
    }

    private void begin(LoraHook hook, int m) {
        this.h = hook;
        this.m = m;
        this.in = hook.in();
        this.out = hook.out();
        this.r = hook.r();
        this.scale = hook.scale();
        this.drop = hook.dropping();
        this.p = hook.buffer().params();
        this.aOff = hook.sliceA().offset();
        this.bOff = hook.sliceB().offset();
        if (bt.length < r * out) bt = new float[r * out];
        if (u.length < m * r) u = new float[m * r];
        if (g.length < m * r) g = new float[m * r];
        for (int s = 0; s < slots; s++) {
            if (rowScratch[s].length < in) rowScratch[s] = new float[in];
            if (maskScratch[s].length < in) maskScratch[s] = new float[in];
            if (suScratch[s].length < r) suScratch[s] = new float[r];
            if (colAcc[s].length < r) colAcc[s] = new float[r][COLS];
        }
    }

    private void end() { // drop the references to the caller's arrays
        h = null;
        x = y = dy = dx = p = gr = null;
    }

    /** {@code bt (r, out) = Bᵀ}. */
    private void transposeB() {
        float[] p = this.p, bt = this.bt;
        int r = this.r, out = this.out, bOff = this.bOff;
        for (int o = 0; o < out; o++) {
            int bo = bOff + o * r;
            for (int kk = 0; kk < r; kk++) bt[kk * out + o] = p[bo + kk];
        }
    }

    // ------------------------------------------------------------------------------------------ forward

    private void forwardTile(int tile, int slot) {
        int m0 = tile * ROWS, m1 = Math.min(m, m0 + ROWS);
        float[] xd = rowScratch[slot], su = suScratch[slot];
        for (int row = m0; row < m1; row++) {
            float[] src = x;
            int so = xOff + row * in;
            if (drop) {
                h.dropRow(x, so, row, xd, 0, null, 0);
                src = xd;
                so = 0;
            }
            k.dotRows(src, so, p, aOff, in, in, r, 1f, u, row * r);                     // u = A·xd
            for (int kk = 0; kk < r; kk++) su[kk] = scale * u[row * r + kk];
            k.weightedRowSum(su, 0, bt, 0, out, out, r, y, yOff + row * out, true);     // y += Σ_k s·u_k·Bᵀ_k
        }
    }

    // ------------------------------------------------------------------------------------------ backward

    /** Row-local part: u, g, dx. */
    private void backwardRowsTile(int tile, int slot) {
        int m0 = tile * ROWS, m1 = Math.min(m, m0 + ROWS);
        float[] dxd = rowScratch[slot], mask = maskScratch[slot];
        for (int row = m0; row < m1; row++) {
            float[] src = x;
            int so = xOff + row * in;
            if (drop) {
                h.dropRow(x, so, row, xdAll, row * in, mask, 0);
                src = xdAll;
                so = row * in;
            }
            k.dotRows(src, so, p, aOff, in, in, r, 1f, u, row * r);                     // u = A·xd
            k.dotRows(dy, dyOff + row * out, bt, 0, out, out, r, scale, g, row * r);     // g = s·Bᵀ·dy
            int dxo = dxOff + row * in;
            if (drop) {
                k.weightedRowSum(g, row * r, p, aOff, in, in, r, dxd, 0, false);        // dxd = Aᵀ·g
                for (int i = 0; i < in; i++) dxd[i] *= mask[i];
                k.weightedRowSum(ONE, 0, dxd, 0, in, in, 1, dx, dxo, true);              // dx += 1·(mask ⊙ dxd)
            } else {
                k.weightedRowSum(g, row * r, p, aOff, in, in, r, dx, dxo, true);        // dx += Aᵀ·g
            }
        }
    }

    /** Cross-row reductions: tiles {@code [0, outTiles)} are column blocks of dB, the rest column blocks of dA. */
    private void backwardColsTile(int tile, int slot) {
        float[][] acc = colAcc[slot];
        if (tile < outTiles) { // dB[o, k] += s · Σ_m u[m, k] · dy[m, o]
            int c0 = tile * COLS, c1 = Math.min(out, c0 + COLS), len = c1 - c0;
            accumulateColumns(acc, colRow[slot], u, dy, dyOff + c0, out, len);
            float s = scale;
            for (int o = c0; o < c1; o++) {
                int bo = bOff + o * r, ai = o - c0;
                for (int kk = 0; kk < r; kk++) gr[bo + kk] += s * acc[kk][ai];
            }
        } else {               // dA[k, i] += Σ_m g[m, k] · xd[m, i]
            int c0 = (tile - outTiles) * COLS, c1 = Math.min(in, c0 + COLS), len = c1 - c0;
            if (drop) accumulateColumns(acc, colRow[slot], g, xdAll, c0, in, len);
            else accumulateColumns(acc, colRow[slot], g, x, xOff + c0, in, len);
            for (int kk = 0; kk < r; kk++) {
                float[] ak = acc[kk];
                int go = aOff + kk * in + c0;
                for (int i = 0; i < len; i++) gr[go + i] += ak[i];
            }
        }
    }

    /**
     * {@code acc[k][0..len) = Σ_m coef[m·r + k] · src[srcOff + m·stride .. + len)} for {@code k < r}, rows summed in
     * order. Each source row is copied to {@code row} first so that every array in the inner loops is indexed
     * {@code [i]}: C2 vectorizes that, not two same-typed arrays at different offsets (they might alias).
     */
    private void accumulateColumns(float[][] acc, float[] row, float[] coef, float[] src, int srcOff, int stride,
                                   int len) {
        int r = this.r, m = this.m;
        for (int kk = 0; kk < r; kk++) Arrays.fill(acc[kk], 0, len, 0f);
        for (int mm = 0; mm < m; mm++) {
            System.arraycopy(src, srcOff + mm * stride, row, 0, len);
            int co = mm * r, kk = 0;
            for (; kk + 4 <= r; kk += 4) { // four accumulators per pass: one load of the row for four FMAs
                float[] a0 = acc[kk], a1 = acc[kk + 1], a2 = acc[kk + 2], a3 = acc[kk + 3];
                float c0 = coef[co + kk], c1 = coef[co + kk + 1], c2 = coef[co + kk + 2], c3 = coef[co + kk + 3];
                for (int i = 0; i < len; i++) {
                    float v = row[i];
                    a0[i] += c0 * v;
                    a1[i] += c1 * v;
                    a2[i] += c2 * v;
                    a3[i] += c3 * v;
                }
            }
            for (; kk < r; kk++) {
                float[] a0 = acc[kk];
                float c0 = coef[co + kk];
                for (int i = 0; i < len; i++) a0[i] += c0 * row[i];
            }
        }
    }

    private static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }
}
