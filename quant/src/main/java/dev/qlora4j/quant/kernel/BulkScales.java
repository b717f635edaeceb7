package dev.qlora4j.quant.kernel;

import dev.qlora4j.quant.weight.BlockScales;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The absmax of a run of consecutive blocks in one call, bit-identical to {@link BlockScales#absmax(int)} (same
 * float expression), without a division or an interface call per block: the kernels fetch a row's scales up front
 * instead of paying ~20 cycles per 64-element block inside the decode loop.
 */
final class BulkScales {

    static final int CHUNK = 256; // blocks per call the kernels ask for at most (their scratch size)

    private static final ValueLayout.OfFloat F32_LE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private BulkScales() {
    }

    /**
     * {@code dst[off + i] = scales.absmax(b0 + i)} for {@code i < n}. Scalar reference: that loop.
     *
     * @param at512 the calling kernel runs at 512 bits ({@code -Dqlora.vectorBits} decides, as for every kernel):
     *              double-quantized runs of at least 32 blocks then decode 16 per step ({@link DoubleQuantScales512})
     */
    static void absmax(BlockScales scales, int b0, int n, float[] dst, int off, boolean at512) {
        switch (scales) {
            case BlockScales.F32Scales f -> MemorySegment.copy(f.absmax(), F32_LE, (long) b0 * 4, dst, off, n);
            case BlockScales.DoubleQuantScales d -> {
                int nb = d.nestedBlocksize(), i = 0;
                if (at512 && nb % 16 == 0 && n >= 32) {
                    int head = Math.min(n, (16 - (b0 & 15)) & 15), body = head + (n - head) / 16 * 16;
                    scalar(d, b0, 0, head, dst, off);
                    DoubleQuantScales512.steps(d.qabsmax(), d.nestedAbsmax(), d.nestedMap(), nb, d.offset(), b0, head,
                            body, dst, off);
                    i = body;
                }
                scalar(d, b0, i, n, dst, off);
            }
        }
    }

    /** {@code dst[off + i] = d.absmax(b0 + i)} for {@code from <= i < to}, one block at a time. */
    static void scalar(BlockScales.DoubleQuantScales d, int b0, int from, int to, float[] dst, int off) {
        if (from >= to) return;
        MemorySegment q = d.qabsmax(), nested = d.nestedAbsmax();
        float[] map = d.nestedMap();
        float offset = d.offset();
        int nb = d.nestedBlocksize(), group = (b0 + from) / nb, inGroup = b0 + from - group * nb;
        float na = nested.get(F32_LE, (long) group * 4);
        for (int i = from; i < to; i++) {
            dst[off + i] = map[q.get(ValueLayout.JAVA_BYTE, b0 + i) & 0xff] * na + offset;
            if (++inGroup == nb && i + 1 < to) {
                inGroup = 0;
                na = nested.get(F32_LE, (long) ++group * 4);
            }
        }
    }
}
