package dev.qlora4j.quant.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The GEMV tile size rule ({@link PanamaKernels#gemvTileRows}): its stated properties, over many shapes. */
class GemvTilesTest {

    @Test
    void tilesAreEvenCappedAndComeInWholeRoundsOfThreads() {
        for (int threads = 1; threads <= 8; threads++) {
            for (int n = 1; n <= 3000; n += n < 300 ? 1 : 37) {
                for (long rowBytes : new long[] {1, 24, 384, 1560, 3072, 6144, 12288, 1 << 20}) {
                    int rows = PanamaKernels.gemvTileRows(n, threads, rowBytes);
                    String at = "n " + n + ", threads " + threads + ", row bytes " + rowBytes;
                    assertTrue(rows >= 2 && rows % 2 == 0, at + ": even, at least 2 rows, got " + rows);
                    assertTrue(rows <= PanamaKernels.GEMV_ROWS, at);
                    assertTrue(rows == 2 || rows * rowBytes <= PanamaKernels.GEMV_TILE_BYTES, at + ": byte cap");
                    int tiles = Math.ceilDiv(n, rows);
                    // the threads get the same number of tiles, unless there are fewer rows than a round of tiles
                    int want = threads * Math.max(PanamaKernels.GEMV_MIN_TILES_PER_THREAD,
                            Math.ceilDiv(n, threads * (int) Math.max(2, Math.min(PanamaKernels.GEMV_ROWS,
                                    PanamaKernels.GEMV_TILE_BYTES / rowBytes)) & ~1));
                    assertTrue(tiles <= want, at + ": " + tiles + " tiles, planned " + want);
                }
            }
        }
    }

    @Test
    void gpt2DecodeShapes() {
        // hand-computed from the rule: {n, row bytes, rows}
        long[][] cases = {{3072, 768 * 4, 256}, {768, 3072 * 4, 64}, {768, 768 * 4, 96}, {2304, 768 * 4, 232},
                {50257, 768 * 4, 254}, {3072, 768 / 2 + 12, 256}, {768, 3072 / 2 + 48, 96}};
        for (long[] c : cases) {
            assertEquals(c[2], PanamaKernels.gemvTileRows((int) c[0], 2, c[1]), "n " + c[0] + ", row bytes " + c[1]);
        }
    }
}
