package dev.qlora4j.quant.kernel;

import dev.qlora4j.quant.weight.DenseWeight;
import dev.qlora4j.quant.weight.FourBitWeight;
import dev.qlora4j.quant.weight.StoredWeight;
import java.util.Arrays;
import jdk.incubator.vector.FloatVector;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Vector API kernels. Forward GEMM {@code y = x·Wᵀ + bias} and backward {@code dx (+)= dy·W} dequantize a tile of
 * {@code W} (NC or NC_WIDE output columns × kc of the reduction) once into a per-thread packed fp32 panel and sweep
 * every row of the activations over it with the {@link MicroKernel} (5, 8 or 12 rows × 2 vectors): below 512 bits and
 * with the 12-row kernel (Intel) the activations are packed on first use ({@link LazyPackedA}); with the 8-row kernel
 * (AMD) they are read in place (the forward's x packed when {@code packForwardA}). Decode-sized forwards
 * ({@code M ≤ 4}) use the fused dequantize-and-dot GEMVs. Work is split by output tiles over {@link KernelPool}; the
 * scalar twin of every path is {@link ScalarKernels}.
 */
public final class PanamaKernels implements Kernels {

    /**
     * Reduction depth of a packed panel at 512 bits: a GPT-2 124M K = 768 in one pass, so C is written once, and the
     * panel (NC × KC fp32 = 384 KB) stays in the 1 MB L2 of Zen 4/5 while the rows of A stream past it (JMH, 8×2
     * kernel on packed A, 2 threads: 768 beat 256 at 6 of the 8 GPT-2 shapes in both of two rounds, and was within the
     * host's noise at the other two; bench/RESULTS.md, session 9).
     */
    static final int KC_512 = 768;
    /** Reduction depth of a packed panel below 512 bits (AVX2 CPUs, whose L2 may be 256–512 KB): a 128 KB panel. */
    static final int KC_NARROW = 256;
    static final int NC = 128; // output columns of a packed panel (a multiple of NR at every width)
    /**
     * Output columns of a panel with the 12-row kernel (Intel cores with 2 MB of L2 per core, e.g. Sapphire Rapids):
     * the 768 KB panel stays in L2, and every row block of A fetched from L3 feeds 8 slivers instead of 4. On an
     * AVX-512 Xeon (with the chunked {@link MicroKernel#packA}), in-JVM A/B against NC = 128 at the GPT-2 shapes,
     * M = 1024, two runs: forward 0.98–1.10×, dY·W 1.02–1.19×; NC = 384 was no better (0.97–1.15×). Used only with an
     * L2 of at least 1.5 MB ({@link #widePanelsFit}; not measured on smaller ones) and where it leaves enough tiles
     * ({@link #panelCols}).
     */
    static final int NC_WIDE = 256;
    static final int GEMV_MAX_M = 4; // forward with at most this many rows uses the fused GEMV
    /**
     * Most rows of W per GEMV tile ({@link #gemvTileRows}). Small tiles cost streaming rate: 16-row tiles kept the
     * 2-thread 4-bit GEMV at 1-thread speed in half the runs (tile edges sharing cache lines of y, per-tile overhead),
     * and with W streamed from DRAM 256-row tiles beat 64-row ones by 1.06–1.20× (NF4+DQ and F32 at K = 768;
     * bench/RESULTS.md, session 5).
     */
    static final int GEMV_ROWS = 256;
    static final int GEMV_MIN_TILES_PER_THREAD = 4;
    static final long GEMV_TILE_BYTES = 768 << 10; // most stored bytes of W per GEMV tile (256 F32 rows at K = 768)
    static final int DEQUANT_TILE = 1 << 16; // elements per dequantizeRows tile
    static final int PACK_BLOCKS = 16; // MR-row blocks of dyᵀ per packing tile (weight gradient)
    /**
     * {@code dY·W} over more rows of W than this (an LM head: N = V = 50,257) runs in passes of this many rows, so the
     * packed {@code dY} (when packed) is (M, BWD_N_BLOCK) instead of (M, N): 9 MB instead of 51 MB at M = 256. A
     * multiple of both KCs, so the passes add the same kc-deep partial products in the same order: bit-identical to one
     * pass.
     */
    static final int BWD_N_BLOCK = 12 * KC_512; // = 36 · KC_NARROW

    private final VectorWidth vw;
    private final PanamaAttention attention;
    private final PanamaSoftmax softmax;
    private final KernelPool pool;
    private final int nr;
    private final int mr; // rows of the micro-kernel at this width (MicroKernel.mr512 at 512 bits, else 5)
    private final int kcMax; // reduction depth of a panel at this width (KC_512 or KC_NARROW)
    private final int ncMax; // output columns of a panel: NC, or NC_WIDE with the 12-row kernel and a large L2
    private final boolean directA; // 8-row kernel at 512 bits: dy (and x, unless packForwardA) read in place (kernel8x2u)
    private final boolean directForwardA; // directA for the forward's x
    /** {@code -Dqlora.transposePack=false} keeps the forward panel on the float-by-float scatter (for A/B runs). */
    private static final boolean TRANSPOSE_PACK_ENABLED = !"false".equals(System.getProperty("qlora.transposePack"));
    private final int transposeRows; // rows per in-register panel transpose: 16 (512 bits), 8 (256 bits), 0 (scatter)
    private final KernelScratch[] scratch; // one per pool slot
    private final ReentrantLock callLock = new ReentrantLock(); // the job objects below are reused across calls
    private final ForwardJob forward = new ForwardJob();
    private final BackwardJob backward = new BackwardJob();
    private final GemvJob gemv = new GemvJob();
    private final FourBitBytesJob gemvBytes = new FourBitBytesJob();
    private final DequantJob dequant = new DequantJob();
    private final PackJob pack = new PackJob();
    private final WeightGradJob weightGrad = new WeightGradJob();
    private float[] packedA = new float[0]; // (ceil(N / MR), M, MR) dyᵀ of a weight gradient, MR-row interleaved; grown on demand
    private final LazyPackedA lazyA; // x or dy of a packed-path GEMM, packed on first use
    private float[] xDeinterleaved = new float[0]; // (K) x of a 512-bit 4-bit decode GEMV (FourBitGemv512); grown on demand
    private float[] xPermuted = new float[0]; // (K) x in FourBitGemvBytes128's lane order; grown on demand
    private final byte[] codePlanes = new byte[64]; // (4, 16) byte planes of the code table of a FourBitGemvBytes128 call
    private float[] xF16 = new float[0]; // (K) x scaled and de-interleaved for an F16 decode GEMV (F16Gemv512 / 256); grown on demand
    /**
     * {@code -Dqlora.f16Gemv=false} keeps F16 decode GEMVs on the exact widening ({@link DenseRuns512} at 512 bits, the
     * row buffer of {@link PanamaDot#dot} below) instead of {@link F16Gemv512} / {@link F16Gemv256} (for A/B).
     */
    private static final boolean F16_FAST = !"false".equals(System.getProperty("qlora.f16Gemv"));
    /**
     * The 256-bit NF4/FP4 decode GEMV: {@code -Dqlora.nf4Gemv256=bytes} ({@link FourBitGemvBytes128}, byte-shuffle
     * lookups) or {@code permute} ({@link FourBitGemv256}, {@code vpermd} lookups); by default bytes on Zen/Zen+
     * ({@link CpuVendor#zen1()}), where it ran the GEMV 1.4–1.6× faster (bench/RESULTS.md "Session 22"), and permute
     * elsewhere.
     */
    static final boolean NF4_GEMV_BYTES = nf4GemvBytes(System.getProperty("qlora.nf4Gemv256"), CpuVendor.zen1());

    static boolean nf4GemvBytes(String property, boolean zen1) {
        if (property == null) return zen1;
        return switch (property.trim()) {
            case "bytes" -> true;
            case "permute" -> false;
            default -> throw new IllegalArgumentException("-Dqlora.nf4Gemv256 must be bytes or permute, not '" + property + "'");
        };
    }

    /** Width from {@code -Dqlora.vectorBits} (default: the CPU's preferred), the shared pool. */
    public PanamaKernels() {
        this(VectorWidth.defaultBits());
    }

    /** @param vectorBits 128, 256 or 512 (512 runs emulated, correctly but slowly, on CPUs without AVX-512) */
    public PanamaKernels(int vectorBits) {
        this(vectorBits, KernelPool.shared());
    }

    public PanamaKernels(int vectorBits, KernelPool pool) {
        this(vectorBits, pool, packForwardADefault());
    }

    /**
     * Whether a 512-bit forward packs x first ({@link MicroKernel#kernel8x2}) instead of reading it in place
     * ({@link MicroKernel#kernel8x2u}): {@code -Dqlora.packA=true|false}, by default true on Intel cores. There the
     * eight row pointers of the in-place kernel cost 0–19% of the GEMM at the GPT-2 forward shapes (M = 1024: 1.19×
     * at 768→3072, 1.03–1.05× at 3072→768 and 768→2304; 1.08–1.12× at M = 512, alternated in one JVM on an AVX-512
     * Xeon), presumably as their address arithmetic shares ports 0 and 5 with the FMAs; on Zen 4/5, whose integer and
     * vector pipes are apart, the in-place kernel was the faster one (bench/RESULTS.md, sessions 9 and 18). With the
     * 8-row kernel dY·W reads dy in place (on the Xeon packing it gained nothing: 0.94–1.04×); the 12-row kernel,
     * Intel's default since session 20 ({@link MicroKernel#mr512}), packs both.
     */
    static boolean packForwardADefault() {
        String p = System.getProperty("qlora.packA");
        return p != null ? Boolean.parseBoolean(p) : CpuVendor.intel();
    }

    PanamaKernels(int vectorBits, KernelPool pool, boolean packForwardA) {
        this(vectorBits, pool, packForwardA, MicroKernel.mr512());
    }

    /**
     * @param mr512 rows of the 512-bit micro-kernel ({@link MicroKernel#mr512}): 8 (x, unless packForwardA, and dy
     *              read in place) or 12 (both packed); ignored below 512 bits (5 rows, packed)
     */
    PanamaKernels(int vectorBits, KernelPool pool, boolean packForwardA, int mr512) {
        this(vectorBits, pool, packForwardA, mr512, widePanelsFit(CpuVendor.l2Bytes()));
    }

    /**
     * Whether an NC_WIDE panel (768 KB at KC = 768) fits this L2 with room for the rows of A streaming past: at least
     * 1.5 MB (the 2 MB L2 of the Xeon it was measured on), or an L2 of unknown size (the measured case kept).
     */
    static boolean widePanelsFit(long l2Bytes) {
        return l2Bytes < 0 || l2Bytes >= 3L << 19;
    }

    /** @param widePanels whether the 12-row kernel uses NC_WIDE-column panels ({@link #widePanelsFit}) */
    PanamaKernels(int vectorBits, KernelPool pool, boolean packForwardA, int mr512, boolean widePanels) {
        this.vw = VectorWidth.of(vectorBits);
        this.attention = new PanamaAttention(vw);
        this.softmax = new PanamaSoftmax(vw);
        this.pool = pool;
        this.nr = MicroKernel.nr(vw);
        this.mr = vw.bits() == 512 ? mr512 : MicroKernel.MR_5;
        if (mr != MicroKernel.MR_5 && mr != MicroKernel.MR_8 && mr != MicroKernel.MR_12) {
            throw new IllegalArgumentException("micro-kernel rows " + mr + " (5, 8 or 12)");
        }
        this.directA = mr == MicroKernel.MR_8;
        this.directForwardA = directA && !packForwardA;
        this.kcMax = vw.bits() == 512 ? KC_512 : KC_NARROW;
        this.ncMax = mr == MicroKernel.MR_12 && widePanels ? NC_WIDE : NC;
        this.lazyA = new LazyPackedA(mr, kcMax);
        this.transposeRows = !TRANSPOSE_PACK_ENABLED ? 0
                : vw.bits() == 512 && nr % PanelTranspose512.L == 0 ? PanelTranspose512.L
                : vw.bits() == 256 && nr % PanelTranspose256.L == 0 ? PanelTranspose256.L : 0;
        this.scratch = new KernelScratch[pool.threads()];
        for (int i = 0; i < scratch.length; i++) scratch[i] = new KernelScratch(kcMax, ncMax, nr, mr, transposeRows);
    }

    @Override
    public String name() {
        return "panama";
    }

    public int vectorBits() {
        return vw.bits();
    }

    public int threads() {
        return pool.threads();
    }

    @Override
    public void matmul(float[] x, int xOff, StoredWeight w, float[] bias, float[] y, int yOff, int m) {
        int n = w.rows(), k = w.cols();
        check(x, xOff, (long) m * k, "x");
        check(y, yOff, (long) m * n, "y");
        if (bias != null && bias.length < n) throw new IllegalArgumentException("bias has " + bias.length + " < N " + n);
        if (m <= 0) return;
        callLock.lock();
        try {
            if (m <= GEMV_MAX_M) {
                gemv.set(x, xOff, w, bias, y, yOff, m);
                if (m == 1 && vw.bits() == 512 && w instanceof FourBitWeight q && FourBitGemv512.supports(q)) {
                    if (xDeinterleaved.length < k) xDeinterleaved = new float[k];
                    FourBitGemv512.deinterleave(x, xOff, k, xDeinterleaved);
                    gemv.xd = xDeinterleaved;
                } else if (m == 1 && vw.bits() == 256 && NF4_GEMV_BYTES && w instanceof FourBitWeight q
                        && FourBitGemvBytes128.supports(q)) {
                    if (xPermuted.length < k) xPermuted = new float[k];
                    FourBitGemvBytes128.permute(x, xOff, k, xPermuted);
                    FourBitGemvBytes128.planes(q.codeTable(), codePlanes);
                    gemv.xp = xPermuted;
                    gemv.planes = codePlanes;
                } else if (m == 1 && vw.bits() == 512 && F16_FAST && w instanceof DenseWeight d && F16Gemv512.supports(d)) {
                    if (xF16.length < k) xF16 = new float[k];
                    if (F16Gemv512.prepare(x, xOff, k, xF16)) gemv.xs = xF16; // else |x| too large: the exact widening
                } else if (m == 1 && vw.bits() == 256 && F16_FAST && w instanceof DenseWeight d && F16Gemv256.supports(d)) {
                    if (xF16.length < k) xF16 = new float[k];
                    if (F16Gemv256.prepare(x, xOff, k, xF16)) gemv.xs = xF16; // else |x| too large: the exact widening
                }
                int rows = gemvTileRows(n, pool.threads(), w.storedBytes() / n);
                boolean quarterRuns = gemv.xd != null || gemv.xs != null || PanamaDot.densePairs(vw, w);
                if (PAGE_ALIGNED_STREAMS && m == 1 && quarterRuns) {
                    long streamRow = w instanceof FourBitWeight q ? q.packed().byteSize() / n : w.storedBytes() / n;
                    rows = pageAlignedTileRows(n, pool.threads(), w.storedBytes() / n, streamRow, rows);
                }
                gemv.tileRows = rows;
                // the byte-table kernel runs as a job of its own, so GemvJob.run's compiled code for the other paths
                // (the F16 head) does not change with it
                pool.run((n + rows - 1) / rows, gemv.xp != null ? gemvBytes : gemv);
                gemv.clear();
            } else {
                if (directForwardA) {
                    forward.set(x, xOff, null, w, bias, y, yOff, m);
                } else {
                    forward.set(x, xOff, lazyA, w, bias, y, yOff, m);
                    lazyA.set(x, xOff, k, m, k, forward.colTiles > 1);
                }
                pool.run(forward.tiles(), forward);
                forward.clear();
                lazyA.clear();
            }
        } finally {
            callLock.unlock();
        }
    }

    @Override
    public void matmulBackwardInput(float[] dy, int dyOff, StoredWeight w, float[] dx, int dxOff, int m,
                                    boolean accumulate) {
        int n = w.rows(), k = w.cols();
        check(dy, dyOff, (long) m * n, "dy");
        check(dx, dxOff, (long) m * k, "dx");
        if (m <= 0) return;
        callLock.lock();
        try {
            int nb = n > 2 * BWD_N_BLOCK ? BWD_N_BLOCK : n;
            for (int n0 = 0; n0 < n; n0 += nb) {
                int rows = Math.min(nb, n - n0);
                if (directA) {
                    backward.set(dy, dyOff + n0, n, null, w, n0, rows, dx, dxOff, m, accumulate || n0 > 0);
                } else {
                    backward.set(dy, dyOff + n0, n, lazyA, w, n0, rows, dx, dxOff, m, accumulate || n0 > 0);
                    lazyA.set(dy, dyOff + n0, n, m, rows, backward.colTiles > 1);
                }
                pool.run(backward.tiles(), backward);
            }
            backward.clear();
            lazyA.clear();
        } finally {
            callLock.unlock();
        }
    }

    @Override
    public void matmulWeightGrad(float[] dy, int dyOff, float[] x, int xOff, int m, int n, int k, float[] dw,
                                 int dwOff) {
        check(dy, dyOff, (long) m * n, "dy");
        check(x, xOff, (long) m * k, "x");
        check(dw, dwOff, (long) n * k, "dw");
        if (m <= 0 || n <= 0 || k <= 0) return;
        callLock.lock();
        try {
            weightGrad.set(packAT(dy, dyOff, m, n), x, xOff, dw, dwOff, m, n, k);
            pool.run(weightGrad.tiles(), weightGrad);
            weightGrad.clear();
        } finally {
            callLock.unlock();
        }
    }

    @Override
    public void dequantizeRows(StoredWeight w, int row0, int nrows, float[] dst, int dstOff) {
        int k = w.cols();
        if (row0 < 0 || nrows < 0 || row0 + nrows > w.rows()) {
            throw new IllegalArgumentException("rows [" + row0 + ", " + (row0 + nrows) + ") of " + w.rows());
        }
        check(dst, dstOff, (long) nrows * k, "dst");
        long total = (long) nrows * k;
        if (total == 0) return;
        callLock.lock();
        try {
            dequant.set(w, (long) row0 * k, total, dst, dstOff);
            pool.run((int) ((total + DEQUANT_TILE - 1) / DEQUANT_TILE), dequant); // one tile runs on the caller
            dequant.clear();
        } finally {
            callLock.unlock();
        }
    }

    private static void check(float[] a, int off, long len, String what) {
        if (off < 0 || off + len > a.length) {
            throw new IllegalArgumentException(what + ": needs [" + off + ", " + (off + len) + ") of " + a.length);
        }
    }

    /**
     * Output columns per panel for a GEMM with {@code cols} output columns over {@code rows} rows: {@link #ncMax},
     * unless that leaves fewer than 4 tiles per thread even with M split as far as {@link #mChunks} goes; then
     * {@link #NC}. (With 256-column panels only, a LoRA-sized step, M = 88 at C = 256, ran on one thread: 0.62–0.88×
     * the 128-column code.)
     */
    private int panelCols(int cols, int rows) {
        if (ncMax == NC) return NC;
        long tiles = (long) ((cols + ncMax - 1) / ncMax) * Math.max(1, rows / (4 * mr));
        return tiles >= 4L * pool.threads() ? ncMax : NC;
    }

    /**
     * Splits M into chunks when there are fewer than 4 column tiles per thread: with the dynamic tile counter that
     * is enough slack to rebalance when a thread is preempted, at the price of dequantizing the panel once per chunk.
     */
    private int mChunks(int colTiles, int m) {
        int want = (2 * pool.threads() + colTiles - 1) / colTiles;
        return Math.max(1, Math.min(want, m / (4 * mr)));
    }

    /**
     * {@link #mChunks}, and when A is packed on first use at least one row chunk per thread, so the threads start on
     * different row blocks and no two pack the same ones (in-JVM A/B against one chunk at the 9- and 12-column-tile
     * shapes: 1.02–1.12×).
     */
    private int rowChunks(int colTiles, int m, boolean packedOnFirstUse) {
        int chunks = mChunks(colTiles, m);
        return packedOnFirstUse ? Math.max(chunks, Math.min(pool.threads(), m / (4 * mr))) : chunks;
    }

    /**
     * {@code C[rows, cols] (+)= A[rows, kc] · P[kc, cols]} for one row block of the packed {@code A} and one sliver
     * ({@code cols ≤ NR}); a partial block (rows past M, or a partial sliver) goes through {@code cTile}.
     */
    private void block(int rows, int cols, float[] ap, int aOff, float[] p, int pOff, int kc,
                       float[] c, int cOff, int ldc, float[] init, int initOff, KernelScratch sc) {
        if (rows == mr && cols == nr) {
            MicroKernel.kernel(vw, mr, ap, aOff, p, pOff, kc, c, cOff, ldc, init, initOff);
            return;
        }
        float[] t = sc.cTile; // (MR, NR)
        if (init == null) {
            for (int r = 0; r < rows; r++) System.arraycopy(c, cOff + r * ldc, t, r * nr, cols);
        }
        MicroKernel.kernel(vw, mr, ap, aOff, p, pOff, kc, t, 0, nr, init, initOff);
        for (int r = 0; r < rows; r++) System.arraycopy(t, r * nr, c, cOff + r * ldc, cols);
    }

    /**
     * {@link #block} for a full row block of {@code A} read in place: row {@code r} at {@code a[aOff + r·lda ..]}.
     */
    private void blockDirect(int cols, float[] a, int aOff, int lda, float[] p, int pOff, int kc,
                             float[] c, int cOff, int ldc, float[] init, int initOff, KernelScratch sc) {
        if (cols == nr) {
            MicroKernel.kernel8x2u(vw, a, aOff, lda, p, pOff, kc, c, cOff, ldc, init, initOff);
            return;
        }
        float[] t = sc.cTile; // (MR, NR)
        if (init == null) {
            for (int r = 0; r < mr; r++) System.arraycopy(c, cOff + r * ldc, t, r * nr, cols);
        }
        MicroKernel.kernel8x2u(vw, a, aOff, lda, p, pOff, kc, t, 0, nr, init, initOff);
        for (int r = 0; r < mr; r++) System.arraycopy(t, r * nr, c, cOff + r * ldc, cols);
    }

    /**
     * One MR-row block of {@code A} against every sliver of the packed panel: {@code C[i.., 0 : nc] (+)= A[i.., pc :
     * pc + kc] · P}. {@code A} is either packed on first use ({@code lazy}, see {@link LazyPackedA}) or, when
     * {@code lazy} is null, read in place with row stride {@code lda}; a partial block read in place is packed
     * into {@code sc.aTail} first, so no row past {@code rowEnd} is read.
     */
    private void rowBlock(LazyPackedA lazy, float[] a, int aOff, int lda, int i, int rowEnd, int pc, int kc,
                          float[] panel, int nc, int slivers, float[] c, int cOff, int ldc, float[] init,
                          KernelScratch sc) {
        int rows = Math.min(mr, rowEnd - i);
        if (lazy == null && rows == mr) {
            for (int s = 0; s < slivers; s++) {
                blockDirect(Math.min(nr, nc - s * nr), a, aOff + i * lda + pc, lda, panel, s * kc * nr, kc,
                        c, cOff + s * nr, ldc, init, s * nr, sc);
            }
            return;
        }
        float[] ap;
        int ao;
        if (lazy != null) {
            ap = lazy.block(i, pc, kc, sc.aTail); // (kc, MR) at ao
            ao = ap == sc.aTail ? 0 : lazy.offset(i, pc);
        } else {
            MicroKernel.packA(mr, a, aOff + pc, lda, i, rowEnd, kc, sc.aTail, 0); // (kc, MR)
            ap = sc.aTail;
            ao = 0;
        }
        for (int s = 0; s < slivers; s++) {
            block(rows, Math.min(nr, nc - s * nr), ap, ao, panel, s * kc * nr, kc, c, cOff + s * nr, ldc, init,
                    s * nr, sc);
        }
    }

    /**
     * Packs the transpose of {@code a (M, N)}, i.e. {@code aᵀ (N, M)}, into {@code packedA (ceil(N / MR), M, MR)}:
     * {@code packedA[(b·M + i)·MR + r] = a[i][b·MR + r]} (zeros past N); MR consecutive columns of a row are
     * contiguous, so this is a strided copy, not a gather.
     */
    private float[] packAT(float[] a, int aOff, int m, int n) {
        int blocks = (n + mr - 1) / mr;
        long need = (long) blocks * m * mr;
        if (need > Integer.MAX_VALUE - 8) throw new IllegalArgumentException("M·N too large: " + m + "·" + n);
        if (packedA.length < need) packedA = new float[(int) need];
        pack.setTransposed(a, aOff, m, n, packedA);
        pool.run((blocks + PACK_BLOCKS - 1) / PACK_BLOCKS, pack);
        pack.clear();
        return packedA;
    }

    @Override
    public void dotRows(float[] q, int qOff, float[] k, int kOff, int stride, int n, int len, float scale,
                        float[] out, int outOff) {
        attention.dotRows(q, qOff, k, kOff, stride, n, len, scale, out, outOff);
    }

    @Override
    public float rowMax(float[] a, int off, int n) {
        return softmax.max(a, off, n);
    }

    @Override
    public double expInPlace(float[] a, int off, int n, float shift) {
        return softmax.expInPlace(a, off, n, shift);
    }

    @Override
    public boolean blockedAttention(int n) {
        return vw.bits() == 512 ? n % 16 == 0 : vw.bits() == 256 && n % 8 == 0;
    }

    @Override
    public void dotRowsT4(float[] q, int q0, int q1, int q2, int q3, float[] kt, int ktOff, int ktStride, int n,
                          int len, float scale, float[] out, int o0, int o1, int o2, int o3) {
        if (blockedAttention(n) && vw.bits() == 512) {
            AttentionBlock512.dotRowsT4(q, q0, q1, q2, q3, kt, ktOff, ktStride, n, len, scale, out, o0, o1, o2, o3);
        } else if (blockedAttention(n)) {
            AttentionBlock256.dotRowsT4(q, q0, q1, q2, q3, kt, ktOff, ktStride, n, len, scale, out, o0, o1, o2, o3);
        } else {
            Kernels.super.dotRowsT4(q, q0, q1, q2, q3, kt, ktOff, ktStride, n, len, scale, out, o0, o1, o2, o3);
        }
    }

    @Override
    public void weightedRowSums4(float[] p, int p0, int p1, int p2, int p3, float[] v, int vOff, int stride, int n,
                                 int len, float[] y, int y0, int y1, int y2, int y3) {
        if (blockedAttention(n) && vw.bits() == 512) {
            AttentionBlock512.weightedRowSums4(p, p0, p1, p2, p3, v, vOff, stride, n, len, y, y0, y1, y2, y3);
        } else if (blockedAttention(n)) {
            AttentionBlock256.weightedRowSums4(p, p0, p1, p2, p3, v, vOff, stride, n, len, y, y0, y1, y2, y3);
        } else {
            Kernels.super.weightedRowSums4(p, p0, p1, p2, p3, v, vOff, stride, n, len, y, y0, y1, y2, y3);
        }
    }

    @Override
    public void weightedRowSum(float[] p, int pOff, float[] v, int vOff, int stride, int n, int len, float[] y,
                               int yOff, boolean accumulate) {
        attention.weightedRowSum(p, pOff, v, vOff, stride, n, len, y, yOff, accumulate);
    }

    /**
     * The forward panel at 512 and 256 bits: {@code panel (slivers, kc, NR)} ← {@code W[n0 .. n0 + slivers·NR, pc ..
     * pc + kc)} transposed, as the scalar loop in {@link ForwardJob#run} packs it: rows dequantized
     * {@link #transposeRows} (16 or 8) at a time into {@code sc.rows16 (transposeRows, kc)} (rows past {@code nc} as
     * zeros), then {@link PanelTranspose512#pack} or {@link PanelTranspose256#pack}.
     */
    private void packPanelTransposed(StoredWeight w, int n0, int nc, int slivers, int pc, int kc, float[] panel,
                                     KernelScratch sc) {
        int k = w.cols(), l = transposeRows;
        float[] rows = sc.rows16; // (transposeRows, kc)
        for (int g = 0; g < slivers * nr; g += l) {
            for (int i = 0; i < l; i++) {
                int r = g + i;
                if (r < nc) PanamaDequant.dequantize(vw, w, (long) (n0 + r) * k + pc, kc, rows, i * kc, sc.scales);
                else Arrays.fill(rows, i * kc, (i + 1) * kc, 0f);
            }
            if (l == PanelTranspose512.L) PanelTranspose512.pack(rows, kc, panel, (g / nr) * kc * nr + g % nr, nr);
            else PanelTranspose256.pack(rows, kc, panel, (g / nr) * kc * nr + g % nr, nr);
        }
    }

    /** {@code y[M, N] = x[M, K] · Wᵀ + bias}; tile = (NC columns of y, a chunk of M rows). */
    private final class ForwardJob implements KernelPool.TileJob {
        float[] x, bias, y; // x: (M, K) at xOff
        int xOff, yOff, m, n, k, colTiles, mPer, chunks, ncTile; // ncTile: output columns per panel (panelCols)
        LazyPackedA lazy; // x packed on first use, or null: x read in place
        StoredWeight w;

        void set(float[] x, int xOff, LazyPackedA lazy, StoredWeight w, float[] bias, float[] y, int yOff, int m) {
            this.x = x; this.xOff = xOff; this.lazy = lazy;
            this.w = w; this.bias = bias; this.y = y; this.yOff = yOff; this.m = m;
            this.n = w.rows();
            this.k = w.cols();
            this.ncTile = panelCols(n, m);
            this.colTiles = (n + ncTile - 1) / ncTile;
            int want = rowChunks(colTiles, m, lazy != null);
            this.mPer = ((m + want - 1) / want + mr - 1) / mr * mr;
            this.chunks = (m + mPer - 1) / mPer; // row chunks of mPer rows (the last may be shorter)
        }

        int tiles() {
            return colTiles * chunks;
        }

        void clear() {
            x = bias = y = null;
            w = null;
            lazy = null;
        }

        @Override
        public void run(int tile, int slot) {
            KernelScratch sc = scratch[slot];
            // chunk-major, so the first tiles (one per thread) pack different row blocks of A (LazyPackedA)
            int n0 = (tile / chunks) * ncTile, nc = Math.min(ncTile, n - n0), slivers = (nc + nr - 1) / nr;
            int i0 = (tile % chunks) * mPer, i1 = Math.min(m, i0 + mPer);
            float[] initTile = sc.initTile; // (slivers · NR)
            for (int j = 0; j < slivers * nr; j++) initTile[j] = bias != null && j < nc ? bias[n0 + j] : 0f;
            float[] panel = sc.panel, tmp = sc.rowTmp;
            for (int pc = 0; pc < k; pc += kcMax) {
                int kc = Math.min(kcMax, k - pc);
                // pack W[n0 .. n0+nc, pc .. pc+kc) transposed: sliver s holds P (kc, NR) with P[c][j] = W[n0+s·NR+j][pc+c]
                if (transposeRows > 0) {
                    packPanelTransposed(w, n0, nc, slivers, pc, kc, panel, sc);
                } else {
                    for (int r = 0; r < slivers * nr; r++) {
                        int base = (r / nr) * kc * nr + r % nr;
                        if (r < nc) {
                            PanamaDequant.dequantize(vw, w, (long) (n0 + r) * k + pc, kc, tmp, 0, sc.scales); // (kc)
                            for (int c = 0; c < kc; c++) panel[base + c * nr] = tmp[c];
                        } else {
                            for (int c = 0; c < kc; c++) panel[base + c * nr] = 0f;
                        }
                    }
                }
                float[] init = pc == 0 ? initTile : null;
                for (int i = i0; i < i1; i += mr) { // the x block stays in L1 across the slivers
                    rowBlock(lazy, x, xOff, k, i, i1, pc, kc, panel, nc, slivers, y, yOff + i * n + n0, n, init,
                            sc);
                }
            }
        }
    }

    /**
     * {@code dx[M, K] (+)= dy[M, n0 : n0 + n] · W[n0 : n0 + n, :]}; tile = (NC columns of dx, a chunk of M rows): no
     * two tiles share dx.
     */
    private final class BackwardJob implements KernelPool.TileJob {
        float[] dy, dx; // dy: its columns [n0, n0 + n) at dyOff, row stride ldy
        int dyOff, ldy, dxOff, m, n0, n, k, colTiles, mPer, chunks, ncTile; // ncTile: columns of dx per panel
        boolean accumulate;
        LazyPackedA lazy; // dy packed on first use, or null: dy read in place
        StoredWeight w;

        void set(float[] dy, int dyOff, int ldy, LazyPackedA lazy, StoredWeight w, int n0, int n, float[] dx,
                 int dxOff, int m, boolean accumulate) {
            this.dy = dy; this.dyOff = dyOff; this.ldy = ldy; this.lazy = lazy;
            this.w = w; this.dx = dx; this.dxOff = dxOff; this.m = m;
            this.accumulate = accumulate;
            this.n0 = n0;
            this.n = n;
            this.k = w.cols();
            this.ncTile = panelCols(k, m);
            this.colTiles = (k + ncTile - 1) / ncTile;
            int want = rowChunks(colTiles, m, lazy != null);
            this.mPer = ((m + want - 1) / want + mr - 1) / mr * mr;
            this.chunks = (m + mPer - 1) / mPer; // row chunks of mPer rows (the last may be shorter)
        }

        int tiles() {
            return colTiles * chunks;
        }

        void clear() {
            dy = dx = null;
            w = null;
            lazy = null;
        }

        @Override
        public void run(int tile, int slot) {
            KernelScratch sc = scratch[slot];
            // chunk-major, so the first tiles (one per thread) pack different row blocks of A (LazyPackedA)
            int k0 = (tile / chunks) * ncTile, nc = Math.min(ncTile, k - k0), slivers = (nc + nr - 1) / nr;
            int i0 = (tile % chunks) * mPer, i1 = Math.min(m, i0 + mPer);
            float[] panel = sc.panel, tmp = sc.rowTmp;
            for (int pc = 0; pc < n; pc += kcMax) {
                int kc = Math.min(kcMax, n - pc);
                // pack W[pc .. pc+kc, k0 .. k0+nc): sliver s holds P (kc, NR) with P[r][j] = W[pc+r][k0+s·NR+j]
                for (int r = 0; r < kc; r++) {
                    PanamaDequant.dequantize(vw, w, (long) (n0 + pc + r) * k + k0, nc, tmp, 0, sc.scales); // (nc)
                    for (int s = 0; s < slivers; s++) {
                        int cols = Math.min(nr, nc - s * nr), dst = s * kc * nr + r * nr;
                        System.arraycopy(tmp, s * nr, panel, dst, cols);
                        for (int j = cols; j < nr; j++) panel[dst + j] = 0f;
                    }
                }
                float[] init = pc == 0 && !accumulate ? sc.zeros : null;
                for (int i = i0; i < i1; i += mr) {
                    rowBlock(lazy, dy, dyOff, ldy, i, i1, pc, kc, panel, nc, slivers, dx, dxOff + i * k + k0, k,
                            init, sc);
                }
            }
        }
    }

    /**
     * {@code dw[N, K] += dyᵀ[N, M] · x[M, K]}; tile = (NC columns of dw, a chunk of its N rows): no two tiles share
     * dw. The panel is a plain copy of x rows (P[r][j] = x[pc+r][k0+s·NR+j]), the packed A is dyᵀ.
     */
    private final class WeightGradJob implements KernelPool.TileJob {
        float[] dytp, x, dw; // dytp: dyᵀ packed (ceil(N / MR), M, MR)
        int xOff, dwOff, m, n, k, colTiles, nPer, ncTile; // ncTile: columns of dw per panel (panelCols)

        void set(float[] dytp, float[] x, int xOff, float[] dw, int dwOff, int m, int n, int k) {
            this.dytp = dytp; this.x = x; this.xOff = xOff; this.dw = dw; this.dwOff = dwOff;
            this.m = m; this.n = n; this.k = k;
            this.ncTile = panelCols(k, n);
            this.colTiles = (k + ncTile - 1) / ncTile;
            int chunks = mChunks(colTiles, n);
            this.nPer = ((n + chunks - 1) / chunks + mr - 1) / mr * mr;
        }

        int tiles() {
            return colTiles * ((n + nPer - 1) / nPer);
        }

        void clear() {
            dytp = x = dw = null;
        }

        @Override
        public void run(int tile, int slot) {
            KernelScratch sc = scratch[slot];
            int k0 = (tile % colTiles) * ncTile, nc = Math.min(ncTile, k - k0), slivers = (nc + nr - 1) / nr;
            int j0 = (tile / colTiles) * nPer, j1 = Math.min(n, j0 + nPer);
            float[] panel = sc.panel;
            for (int pc = 0; pc < m; pc += kcMax) {
                int kc = Math.min(kcMax, m - pc);
                for (int r = 0; r < kc; r++) {
                    int src = xOff + (pc + r) * k + k0;
                    for (int s = 0; s < slivers; s++) {
                        int cols = Math.min(nr, nc - s * nr), dst = s * kc * nr + r * nr;
                        System.arraycopy(x, src + s * nr, panel, dst, cols);
                        for (int j = cols; j < nr; j++) panel[dst + j] = 0f;
                    }
                }
                for (int j = j0; j < j1; j += mr) {
                    int rows = Math.min(mr, j1 - j), aOff = (j / mr * m + pc) * mr;
                    for (int s = 0; s < slivers; s++) {
                        block(rows, Math.min(nr, nc - s * nr), dytp, aOff, panel, s * kc * nr, kc,
                                dw, dwOff + j * k + k0 + s * nr, k, null, 0, sc);
                    }
                }
            }
        }
    }

    /**
     * Whether the decode GEMVs that walk four row runs at once (a quarter tile apart: {@link FourBitGemv512#quad},
     * {@link F16Gemv512#quads}, {@link PanamaDot#denseQuads}) size tiles with {@link #pageAlignedTileRows}
     * ({@code -Dqlora.pageAlignedStreams=false} to compare).
     */
    static final boolean PAGE_ALIGNED_STREAMS = Boolean.parseBoolean(
            System.getProperty("qlora.pageAlignedStreams", "true"));
    static final int PAGE = 4096; // bytes; the hardware prefetchers stop at page boundaries

    /**
     * Rows per GEMV tile such that a quarter tile spans whole 4 KiB pages of W ({@code quarter · streamRowBytes} a
     * multiple of {@link #PAGE}), so the four runs of a tile enter their next pages at the same step: the misses
     * there (the prefetchers do not cross pages) overlap instead of stalling the core four times, one after another.
     * Measured with W streamed from DRAM on the Xeon: NF4+DQ 768→2304 1.13–1.16×, the F16 head 1.03×
     * (bench/RESULTS.md, session 19). Among multiples of that unit up to {@code cap} rows (the byte and row caps of
     * {@link #gemvTileRows}), with at least {@link #GEMV_MIN_TILES_PER_THREAD} tiles per thread where the shape
     * allows it, the one whose busiest thread has the fewest rows, the larger within 1% of that. {@code fallback}
     * (the plain rule's size) where no multiple fits.
     */
    static int pageAlignedTileRows(int n, int threads, long rowBytes, long streamRowBytes, int fallback) {
        long unit = 4 * (PAGE / gcd(PAGE, streamRowBytes));
        int cap = gemvRowCap(rowBytes);
        if (unit > cap || n < unit * threads) return fallback;
        int best = -1;
        for (int pass = 0; pass < 2 && best < 0; pass++) { // pass 0 keeps the tile count per thread, pass 1 drops it
            long minTiles = pass == 0 ? (long) threads * GEMV_MIN_TILES_PER_THREAD : threads;
            long span = Long.MAX_VALUE;
            for (long r = unit; r <= cap; r += unit) { // fewest rows on the busiest thread
                long tiles = Math.ceilDiv(n, r);
                if (tiles >= minTiles) span = Math.min(span, Math.ceilDiv(tiles, threads) * r);
            }
            for (long r = unit; r <= cap; r += unit) { // the largest tile within 1% of that
                long tiles = Math.ceilDiv(n, r);
                if (tiles >= minTiles && Math.ceilDiv(tiles, threads) * r * 100 <= span * 101) best = (int) r;
            }
        }
        return best > 0 ? best : fallback;
    }

    /** Most rows of {@code rowBytes} stored bytes a GEMV tile may hold: {@link #GEMV_ROWS}, {@link #GEMV_TILE_BYTES}. */
    private static int gemvRowCap(long rowBytes) {
        return (int) Math.max(2, Math.min(GEMV_ROWS, GEMV_TILE_BYTES / Math.max(1, rowBytes)));
    }

    private static long gcd(long a, long b) {
        while (b != 0) {
            long t = a % b;
            a = b;
            b = t;
        }
        return a;
    }

    /**
     * Rows per GEMV tile for {@code n} rows of W of {@code rowBytes} stored bytes each, on {@code threads} threads: at
     * most {@link #GEMV_ROWS} and at most {@link #GEMV_TILE_BYTES} of W, even, with a tile count that is a multiple of
     * the thread count and at least {@link #GEMV_MIN_TILES_PER_THREAD} per thread, so the threads finish together even
     * when the shared host slows one of them (3 tiles of 256 rows on 2 threads ran F32 3072→768 at 0.84× of 64-row
     * tiles, 4 tiles of 192 rows at 0.74×; the byte cap keeps such long rows at 64 per tile).
     */
    static int gemvTileRows(int n, int threads, long rowBytes) {
        int cap = gemvRowCap(rowBytes) & ~1;
        int tiles = threads * Math.max(GEMV_MIN_TILES_PER_THREAD, Math.ceilDiv(n, threads * cap));
        return Math.min(cap, (Math.ceilDiv(n, tiles) + 1) & ~1);
    }

    /** Decode-sized forward: {@code y[i, j] = W[j, :] · x[i, :] + bias[j]}, fused dequant-dot; tile = tileRows rows of W. */
    private final class GemvJob implements KernelPool.TileJob {
        float[] x, bias, y;
        float[] xd; // (K) x de-interleaved for FourBitGemv512, or null when that path does not apply
        float[] xs; // (K) x scaled and de-interleaved for F16Gemv512 / F16Gemv256, or null when that path does not apply
        float[] xp; // (K) x permuted for FourBitGemvBytes128, or null when that path does not apply
        byte[] planes; // (64) the code table's byte planes for FourBitGemvBytes128, with xp
        int xOff, yOff, m, n, k, tileRows;
        StoredWeight w;

        void set(float[] x, int xOff, StoredWeight w, float[] bias, float[] y, int yOff, int m) {
            this.x = x; this.xOff = xOff; this.w = w; this.bias = bias; this.y = y; this.yOff = yOff; this.m = m;
            this.n = w.rows();
            this.k = w.cols();
        }

        void clear() {
            x = bias = y = xd = xs = xp = null;
            planes = null;
            w = null;
        }

        /** {@code y[0, row] = dot + bias[row]} (M = 1). */
        private void store(int row, float dot) {
            y[yOff + row] = dot + (bias == null ? 0f : bias[row]);
        }

        @Override
        public void run(int tile, int slot) {
            KernelScratch sc = scratch[slot];
            float[] rowBuf = sc.row(k); // (K)
            int j = tile * tileRows, j1 = Math.min(n, (tile + 1) * tileRows);
            if (xd != null) {
                FourBitWeight q = (FourBitWeight) w;
                int blocks = k / q.blocksize(), rows = j1 - j;
                float[] tileScales = sc.tileScales(rows * blocks); // (rows, K / blocksize) absmax of the tile's rows
                BulkScales.absmax(q.scales(), j * blocks, rows * blocks, tileScales, 0, true); // consecutive rows; 512 bits
                int quarter = rows / 4;
                float[] quad = sc.quad; // (16)
                for (int i = 0; i < quarter; i++) { // rows j + i + {0, 1, 2, 3}·quarter: four sequential streams
                    int r0 = j + i, r1 = r0 + quarter, r2 = r1 + quarter, r3 = r2 + quarter;
                    FourBitGemv512.quad(q, r0, r1, r2, r3, xd, tileScales, i * blocks, (quarter + i) * blocks,
                            (2 * quarter + i) * blocks, (3 * quarter + i) * blocks, quad);
                    store(r0, quad[0]);
                    store(r1, quad[8]);
                    store(r2, quad[4]);
                    store(r3, quad[12]);
                }
                int done = 4 * quarter;
                if (rows - done >= 2) { // two rows left over: the paired kernel
                    float[] pair = sc.pair; // (2)
                    FourBitGemv512.pair(q, j + done, j + done + 1, xd, tileScales, done * blocks, (done + 1) * blocks,
                            pair, 0);
                    store(j + done, pair[0]);
                    store(j + done + 1, pair[1]);
                    done += 2;
                }
                j += done; // an odd last row takes the one-row kernel below
            } else if (m == 1 && vw.bits() == 256 && w instanceof FourBitWeight q && FourBitGemv256.supports(q)) {
                float[] pair = sc.pair; // (2)
                for (; j + 1 < j1; j += 2) {
                    FourBitGemv256.pair(q, j, x, xOff, sc.scales, pair, 0);
                    store(j, pair[0]);
                    store(j + 1, pair[1]);
                }
            }
            if (xs != null && vw.bits() == 256) { // F16 rows, M = 1, AVX2: F16Gemv256 as F16Gemv512 below
                DenseWeight d = (DenseWeight) w;
                float[] runs = sc.runs; // (tileRows) outputs in run order
                int quarter = (j1 - j) / 4, l = F16Gemv256.L;
                if (quarter > 0) {
                    F16Gemv256.quads(d, j, quarter, quarter, xs, sc.runPartials);
                    for (int i = 0; i < 4 * quarter; i += 2) {
                        vw.sum2(FloatVector.fromArray(vw.f(), sc.runPartials, i * l),
                                FloatVector.fromArray(vw.f(), sc.runPartials, (i + 1) * l), runs, i);
                    }
                    for (int i = 0; i < quarter; i++) {
                        for (int u = 0; u < 4; u++) store(j + u * quarter + i, runs[4 * i + u]);
                    }
                    j += 4 * quarter;
                }
                if (j1 - j >= 2) {
                    F16Gemv256.pairs(d, j, j + 1, 1, xs, sc.runPartials);
                    vw.sum2(FloatVector.fromArray(vw.f(), sc.runPartials, 0),
                            FloatVector.fromArray(vw.f(), sc.runPartials, l), runs, 0);
                    store(j, runs[0]);
                    store(j + 1, runs[1]);
                    j += 2;
                }
                if (j < j1) {
                    store(j, F16Gemv256.row(vw, d, j, xs));
                    j++;
                }
            } else if (xs != null) { // F16 rows, M = 1: F16Gemv512 in four runs, then a pair, then a lone row
                DenseWeight d = (DenseWeight) w;
                float[] runs = sc.runs; // (tileRows) outputs in run order
                int quarter = (j1 - j) / 4;
                if (quarter > 0) {
                    F16Gemv512.quads(d, j, quarter, quarter, xs, sc.runPartials);
                    for (int i = 0; i < 4 * quarter; i += 2) {
                        vw.sum2(FloatVector.fromArray(vw.f(), sc.runPartials, i * 16),
                                FloatVector.fromArray(vw.f(), sc.runPartials, (i + 1) * 16), runs, i);
                    }
                    for (int i = 0; i < quarter; i++) {
                        for (int u = 0; u < 4; u++) store(j + u * quarter + i, runs[4 * i + u]);
                    }
                    j += 4 * quarter;
                }
                if (j1 - j >= 2) {
                    F16Gemv512.pairs(d, j, j + 1, 1, xs, sc.runPartials);
                    vw.sum2(FloatVector.fromArray(vw.f(), sc.runPartials, 0),
                            FloatVector.fromArray(vw.f(), sc.runPartials, 16), runs, 0);
                    store(j, runs[0]);
                    store(j + 1, runs[1]);
                    j += 2;
                }
                if (j < j1) {
                    store(j, F16Gemv512.row(vw, d, j, xs));
                    j++;
                }
            }
            if (m == 1 && xd == null && xs == null && PanamaDot.densePairs(vw, w)) {
                DenseWeight d = (DenseWeight) w;
                float[] runs = sc.runs; // (tileRows) outputs in run order, see below
                int quarter = (j1 - j) / 4;
                if (quarter > 0) { // rows j + u·quarter + i, u < 4: four sequential streams (see denseQuads)
                    PanamaDot.denseQuads(vw, d, j, quarter, quarter, x, xOff, sc.runPartials, runs, 0);
                    for (int i = 0; i < quarter; i++) {
                        for (int u = 0; u < 4; u++) store(j + u * quarter + i, runs[4 * i + u]);
                    }
                    j += 4 * quarter;
                }
                int half = (j1 - j) / 2; // at most three rows are left: a pair, then a lone row below
                if (half > 0) { // rows j + i and j + half + i: two sequential streams, each walked by one flat loop
                    PanamaDot.denseRuns(vw, d, j, j + half, half, x, xOff, sc.runPartials, runs, 0);
                    for (int i = 0; i < half; i++) {
                        store(j + i, runs[2 * i]);
                        store(j + half + i, runs[2 * i + 1]);
                    }
                }
                j += 2 * half;
            }
            for (; j < j1; j++) {
                float b = bias == null ? 0f : bias[j];
                for (int i = 0; i < m; i++) {
                    y[yOff + i * n + j] = PanamaDot.dot(vw, w, j, x, xOff + i * k, rowBuf, sc.scales) + b;
                }
            }
        }
    }

    /** {@link GemvJob}'s rows (M = 1, 4-bit W) through {@link FourBitGemvBytes128}; reads the fields of {@link #gemv}. */
    private final class FourBitBytesJob implements KernelPool.TileJob {
        @Override
        public void run(int tile, int slot) {
            GemvJob g = gemv;
            float[] scales = scratch[slot].scales; // (K / blocksize) the row's absmax
            FourBitWeight q = (FourBitWeight) g.w;
            int blocks = g.k / q.blocksize();
            for (int j = tile * g.tileRows, j1 = Math.min(g.n, j + g.tileRows); j < j1; j++) {
                BulkScales.absmax(q.scales(), j * blocks, blocks, scales, 0, false);
                g.store(j, FourBitGemvBytes128.row(q, j, g.xp, g.planes, scales));
            }
        }
    }

    private final class DequantJob implements KernelPool.TileJob {
        StoredWeight w;
        long start, total;
        float[] dst;
        int dstOff;

        void set(StoredWeight w, long start, long total, float[] dst, int dstOff) {
            this.w = w; this.start = start; this.total = total; this.dst = dst; this.dstOff = dstOff;
        }

        void clear() {
            w = null;
            dst = null;
        }

        @Override
        public void run(int tile, int slot) {
            long from = (long) tile * DEQUANT_TILE;
            int len = (int) Math.min(DEQUANT_TILE, total - from);
            PanamaDequant.dequantize(vw, w, start + from, len, dst, dstOff + (int) from, scratch[slot].scales);
        }
    }

    /** {@code aᵀ} of {@code a (M, N)} → {@code (ceil(N / MR), M, MR)}; tile = PACK_BLOCKS row blocks of aᵀ. */
    private final class PackJob implements KernelPool.TileJob {
        float[] a, ap;
        int aOff, lda, m, k; // aᵀ of a: k = M rows of a, m = its N cols (see packAT)

        /** Packs {@code a (rows, cols)} transposed: blocks run over the columns, the reduction over the rows. */
        void setTransposed(float[] a, int aOff, int rows, int cols, float[] ap) {
            this.a = a; this.aOff = aOff; this.lda = cols; this.m = cols; this.k = rows; this.ap = ap;
        }

        void clear() {
            a = ap = null;
        }

        @Override
        public void run(int tile, int slot) {
            int b1 = Math.min((m + mr - 1) / mr, (tile + 1) * PACK_BLOCKS);
            for (int b = tile * PACK_BLOCKS; b < b1; b++) {
                MicroKernel.packAT(mr, a, aOff, lda, b * mr, m, k, ap, b * k * mr);
            }
        }
    }
}
