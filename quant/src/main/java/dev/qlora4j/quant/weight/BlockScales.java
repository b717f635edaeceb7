package dev.qlora4j.quant.weight;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The per-block absmax scales of a blockwise-quantized weight: plain float32, or double-quantized
 * (bitsandbytes {@code compress_statistics=True}: 8-bit codes with the signed dynamic map, a float32 absmax per
 * {@code nestedBlocksize} scales, and a mean offset).
 */
public sealed interface BlockScales permits BlockScales.F32Scales, BlockScales.DoubleQuantScales {

    /** Number of blocks. */
    int blocks();

    /** Dequantized absmax of block {@code b}. */
    float absmax(int b);

    /** Bytes in storage. */
    long storedBytes();

    /** @param absmax F32 {@code [blocks]} little-endian */
    record F32Scales(MemorySegment absmax) implements BlockScales {
        public F32Scales {
            absmax = KernelSegments.plain(absmax);
        }

        @Override
        public int blocks() {
            return (int) (absmax.byteSize() / 4);
        }

        @Override
        public float absmax(int b) {
            return absmax.get(DenseWeight.F32_LE, (long) b * 4);
        }

        @Override
        public long storedBytes() {
            return absmax.byteSize();
        }
    }

    /**
     * {@code absmax[b] = nestedMap[qabsmax[b]] · nestedAbsmax[b / nestedBlocksize] + offset}.
     *
     * @param qabsmax      U8 {@code [blocks]}
     * @param nestedAbsmax F32 {@code [ceil(blocks / nestedBlocksize)]}
     * @param nestedMap    the 256-entry signed dynamic map (read from the checkpoint's nested_quant_map)
     */
    record DoubleQuantScales(MemorySegment qabsmax, MemorySegment nestedAbsmax, float[] nestedMap,
                             int nestedBlocksize, float offset) implements BlockScales {
        public DoubleQuantScales {
            qabsmax = KernelSegments.plain(qabsmax);
            nestedAbsmax = KernelSegments.plain(nestedAbsmax);
            if (nestedMap.length != 256) throw new IllegalArgumentException("nested map needs 256 entries");
            if (nestedBlocksize <= 0) throw new IllegalArgumentException("nested blocksize " + nestedBlocksize);
            long need = (qabsmax.byteSize() + nestedBlocksize - 1) / nestedBlocksize;
            if (nestedAbsmax.byteSize() != need * 4) {
                throw new IllegalArgumentException("nested absmax has " + nestedAbsmax.byteSize() / 4
                        + " entries, " + need + " expected for " + qabsmax.byteSize() + " blocks");
            }
        }

        @Override
        public int blocks() {
            return (int) qabsmax.byteSize();
        }

        @Override
        public float absmax(int b) {
            int q = qabsmax.get(ValueLayout.JAVA_BYTE, b) & 0xff;
            return nestedMap[q] * nestedAbsmax.get(DenseWeight.F32_LE, (long) (b / nestedBlocksize) * 4) + offset;
        }

        @Override
        public long storedBytes() {
            return qabsmax.byteSize() + nestedAbsmax.byteSize() + 256 * 4 + 4;
        }
    }
}
