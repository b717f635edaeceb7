package dev.qlora4j.quant.weight;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Blockwise 8-bit weight (bitsandbytes {@code quantize_blockwise} with the signed dynamic map):
 * value = {@code map[code] · absmax[block]}.
 *
 * @param map   256 float32 code values
 * @param codes U8 {@code [rows·cols]}
 */
public record BlockwiseInt8Weight(int rows, int cols, int blocksize, float[] map, MemorySegment codes,
                                  BlockScales scales) implements StoredWeight {

    public BlockwiseInt8Weight {
        codes = KernelSegments.plain(codes);
        if (map.length != 256) throw new IllegalArgumentException("map needs 256 entries");
        long n = (long) rows * cols;
        if (codes.byteSize() != n) {
            throw new IllegalArgumentException("codes: " + codes.byteSize() + " bytes, " + n + " expected");
        }
        if (scales.blocks() != (n + blocksize - 1) / blocksize) {
            throw new IllegalArgumentException("absmax: " + scales.blocks() + " blocks, "
                    + (n + blocksize - 1) / blocksize + " expected");
        }
    }

    @Override
    public WeightFormat format() {
        return WeightFormat.INT8_BLOCKWISE;
    }

    @Override
    public long storedBytes() {
        return codes.byteSize() + scales.storedBytes() + 256 * 4;
    }

    @Override
    public void dequantize(long start, int n, float[] dst, int off) {
        for (int j = 0; j < n; j++) {
            long i = start + j;
            dst[off + j] = map[codes.get(ValueLayout.JAVA_BYTE, i) & 0xff] * scales.absmax((int) (i / blocksize));
        }
    }
}
