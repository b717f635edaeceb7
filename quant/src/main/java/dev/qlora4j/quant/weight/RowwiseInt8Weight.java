package dev.qlora4j.quant.weight;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * LLM.int8-style row-wise int8 weight (bitsandbytes {@code Linear8bitLt}): {@code CB = round(W·127/rowmax)},
 * {@code SCB = rowmax}; value = {@code CB[r, c] · SCB[r] / 127}.
 *
 * @param cb  I8 {@code [rows, cols]}
 * @param scb F32 {@code [rows]}
 */
public record RowwiseInt8Weight(int rows, int cols, MemorySegment cb, MemorySegment scb) implements StoredWeight {

    public RowwiseInt8Weight {
        cb = KernelSegments.plain(cb);
        scb = KernelSegments.plain(scb);
        if (cb.byteSize() != (long) rows * cols) {
            throw new IllegalArgumentException("CB: " + cb.byteSize() + " bytes, " + (long) rows * cols + " expected");
        }
        if (scb.byteSize() != (long) rows * 4) {
            throw new IllegalArgumentException("SCB: " + scb.byteSize() / 4 + " entries, " + rows + " expected");
        }
    }

    @Override
    public WeightFormat format() {
        return WeightFormat.INT8_ROWWISE;
    }

    @Override
    public long storedBytes() {
        return cb.byteSize() + scb.byteSize();
    }

    /** Row scale {@code SCB[r] / 127}. */
    public float rowScale(int r) {
        return scb.get(DenseWeight.F32_LE, (long) r * 4) / 127f;
    }

    @Override
    public void dequantize(long start, int n, float[] dst, int off) {
        for (int j = 0; j < n; j++) {
            long i = start + j;
            int r = (int) (i / cols);
            dst[off + j] = cb.get(ValueLayout.JAVA_BYTE, i) * rowScale(r);
        }
    }
}
