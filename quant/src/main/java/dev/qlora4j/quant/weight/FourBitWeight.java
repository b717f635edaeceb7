package dev.qlora4j.quant.weight;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A bitsandbytes 4-bit weight (NF4 or FP4) {@code W [rows, cols]}: the row-major flattened tensor is cut into
 * blocks of {@code blocksize} elements (the last may be partial), each with one absmax scale; element {@code 2i}
 * is the high nibble of byte {@code i}, element {@code 2i+1} the low nibble. Value = {@code codeTable[q] ·
 * absmax[block]}.
 *
 * @param codeTable 16 float32 code values (from the checkpoint's quant_map, or the literal NF4/FP4 table)
 * @param packed    U8 {@code [(rows·cols + 1) / 2]}
 */
public record FourBitWeight(WeightFormat format, int rows, int cols, int blocksize, float[] codeTable,
                            MemorySegment packed, BlockScales scales) implements StoredWeight {

    public FourBitWeight {
        packed = KernelSegments.plain(packed);
        if (format != WeightFormat.NF4 && format != WeightFormat.FP4) {
            throw new IllegalArgumentException("FourBitWeight holds NF4/FP4, not " + format);
        }
        if (codeTable.length != 16) throw new IllegalArgumentException("code table needs 16 entries");
        long n = (long) rows * cols;
        if (packed.byteSize() != (n + 1) / 2) {
            throw new IllegalArgumentException("packed codes: " + packed.byteSize() + " bytes, " + (n + 1) / 2
                    + " expected for [" + rows + ", " + cols + "]");
        }
        long nblocks = (n + blocksize - 1) / blocksize;
        if (scales.blocks() != nblocks) {
            throw new IllegalArgumentException("absmax: " + scales.blocks() + " blocks, " + nblocks
                    + " expected for [" + rows + ", " + cols + "] with blocksize " + blocksize);
        }
    }

    @Override
    public long storedBytes() {
        return packed.byteSize() + scales.storedBytes() + 16 * 4;
    }

    /** The 4-bit code of flattened element {@code i}. */
    public int code(long i) {
        int b = packed.get(ValueLayout.JAVA_BYTE, i >>> 1) & 0xff;
        return (i & 1) == 0 ? b >>> 4 : b & 0x0f;
    }

    @Override
    public void dequantize(long start, int n, float[] dst, int off) {
        for (int j = 0; j < n; j++) {
            long i = start + j;
            dst[off + j] = codeTable[code(i)] * scales.absmax((int) (i / blocksize));
        }
    }
}
