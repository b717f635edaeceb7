package dev.qlora4j.quant.weight;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Objects;

/**
 * An unquantized weight {@code W [rows, cols]} stored row-major, little-endian, as F32, F16 or BF16.
 *
 * @param data {@code rows·cols·bytesPerElement} bytes, e.g. a zero-copy slice of an mmap'd safetensors file
 */
public record DenseWeight(WeightFormat format, MemorySegment data, int rows, int cols) implements StoredWeight {

    static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    public DenseWeight {
        data = KernelSegments.plain(data); // one segment class at the kernels' call sites
        Objects.requireNonNull(data, "data");
        if (format != WeightFormat.F32 && format != WeightFormat.F16 && format != WeightFormat.BF16) {
            throw new IllegalArgumentException("DenseWeight holds F32/F16/BF16, not " + format);
        }
        if (rows <= 0 || cols <= 0) throw new IllegalArgumentException("bad shape [" + rows + ", " + cols + "]");
        long need = (long) rows * cols * bytesPerElement(format);
        if (data.byteSize() != need) {
            throw new IllegalArgumentException("DenseWeight " + format + " [" + rows + ", " + cols + "] needs " + need
                    + " bytes, segment has " + data.byteSize());
        }
    }

    public static int bytesPerElement(WeightFormat f) {
        return f == WeightFormat.F32 ? 4 : 2;
    }

    @Override
    public long storedBytes() {
        return data.byteSize();
    }

    /** Element {@code i} of the flattened tensor as float32. */
    public float get(long i) {
        return switch (format) {
            case F32 -> data.get(F32_LE, i * 4);
            case F16 -> Float.float16ToFloat(data.get(I16_LE, i * 2));
            case BF16 -> Float.intBitsToFloat((data.get(I16_LE, i * 2) & 0xffff) << 16);
            default -> throw new AssertionError(format);
        };
    }

    @Override
    public void dequantize(long start, int n, float[] dst, int off) {
        for (int j = 0; j < n; j++) dst[off + j] = get(start + j);
    }
}
