package dev.qlora4j.quant.kernel;

/** One pool thread's preallocated buffers for the Panama kernels; reused on every call, never shared. */
final class KernelScratch {

    final float[] panel; // (NC / NR slivers, KC, NR) packed fp32 tile of W
    final float[] rowTmp; // (max(KC, NC)) one dequantized row segment of W before it is scattered into the panel
    final float[] initTile; // (NC) bias of the tile's columns, zero-padded
    final float[] zeros; // (NC) accumulator start for an overwriting backward pass
    final float[] cTile; // (MR, NR) output of a partial sliver
    final float[] aTail; // (KC, MR) a row block of A packed here: a partial one read in place, or one another thread is packing (LazyPackedA)
    final float[] rows16; // (16 or 8, KC) dequantized rows of W for PanelTranspose512 / PanelTranspose256 (empty without)
    final float[] scales = new float[BulkScales.CHUNK]; // (CHUNK) absmax of consecutive blocks
    final float[] pair = new float[2]; // (2) the two outputs of a paired GEMV row step
    final float[] quad = new float[16]; // (16) a four-row 512-bit GEMV step's folded lane sums (outputs in lanes 0, 8, 4, 12)
    final float[] runs = new float[PanamaKernels.GEMV_ROWS]; // (GEMV_ROWS / 2, 2) a GEMV tile's outputs, two runs of rows
    final float[] runPartials = new float[PanamaKernels.GEMV_ROWS * 16]; // (GEMV_ROWS, 16 lanes max) their row accumulators

    /** @param transposeRows rows per in-register panel transpose (16 at 512 bits, 8 at 256), or 0 for none */
    KernelScratch(int kc, int nc, int nr, int mr, int transposeRows) {
        rows16 = new float[transposeRows * kc];
        panel = new float[(nc + nr - 1) / nr * nr * kc];
        rowTmp = new float[Math.max(kc, nc)];
        initTile = new float[(nc + nr - 1) / nr * nr];
        zeros = new float[(nc + nr - 1) / nr * nr];
        cTile = new float[mr * nr];
        aTail = new float[kc * mr];
    }

    private float[] grownRow; // (K max seen) a dequantized row of W for GEMV formats without a fused path

    private float[] grownTileScales; // (most blocks seen) absmax of a GEMV tile's rows, for FourBitGemv512

    float[] tileScales(int n) {
        float[] t = grownTileScales;
        if (t == null || t.length < n) grownTileScales = t = new float[n];
        return t;
    }

    float[] row(int k) {
        float[] r = grownRow;
        if (r == null || r.length < k) grownRow = r = new float[k];
        return r;
    }
}
