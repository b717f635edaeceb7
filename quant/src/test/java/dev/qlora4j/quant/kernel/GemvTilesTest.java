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

    @Test
    void pageAlignedTilesSpanWholePagesPerQuarterAndKeepEveryThreadBusy() {
        for (int threads = 1; threads <= 4; threads++) {
            for (int n = 1; n <= 6000; n += n < 300 ? 1 : 53) {
                for (long stream : new long[] {64, 384, 512, 1536, 3072, 4096, 6144, 1000}) {
                    long rowBytes = stream + stream / 32; // plus per-row scales
                    int plain = PanamaKernels.gemvTileRows(n, threads, rowBytes);
                    int rows = PanamaKernels.pageAlignedTileRows(n, threads, rowBytes, stream, plain);
                    String at = "n " + n + ", threads " + threads + ", stream row bytes " + stream;
                    long unit = 4 * PanamaKernels.PAGE / gcd(PanamaKernels.PAGE, stream); // rows of a page-whole tile
                    long cap = Math.min(PanamaKernels.GEMV_ROWS, PanamaKernels.GEMV_TILE_BYTES / rowBytes);
                    if (unit > cap || n < unit * threads) { // no aligned size fits: the plain rule's
                        assertEquals(plain, rows, at);
                        continue;
                    }
                    assertEquals(0, (rows / 4) * stream % PanamaKernels.PAGE, at + ": quarter spans whole pages");
                    assertEquals(0, rows % 4, at);
                    assertTrue(rows <= PanamaKernels.GEMV_ROWS && rows * rowBytes <= PanamaKernels.GEMV_TILE_BYTES,
                            at + ": caps, got " + rows);
                    assertTrue(Math.ceilDiv(n, rows) >= threads, at + ": a tile for every thread, got " + rows);
                }
            }
        }
    }

    @Test
    void pageAlignedGpt2DecodeShapes() {
        // hand-computed from the rule, two threads: {n, stream row bytes (NF4: K / 2, F16: 2K, F32: 4K), rows}
        long[][] cases = {{2304, 384, 128}, {768, 384, 128}, {3072, 384, 256}, {768, 1536, 96}, {2304, 3072, 192},
                {50257, 1536, 256}};
        for (long[] c : cases) {
            long rowBytes = c[1] + c[1] / 32;
            int plain = PanamaKernels.gemvTileRows((int) c[0], 2, rowBytes);
            assertEquals(c[2], PanamaKernels.pageAlignedTileRows((int) c[0], 2, rowBytes, c[1], plain),
                    "n " + c[0] + ", stream row bytes " + c[1]);
        }
    }

    private static long gcd(long a, long b) {
        return b == 0 ? a : gcd(b, a % b);
    }
}
