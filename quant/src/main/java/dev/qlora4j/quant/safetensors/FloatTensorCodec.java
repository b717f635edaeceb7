package dev.qlora4j.quant.safetensors;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;

/**
 * F32, F16 and BF16 tensor bytes (little-endian, possibly unaligned) to and from float32 on the heap.
 * F16 uses {@link Float#float16ToFloat}/{@link Float#floatToFloat16}; BF16 is the top half of the float32 bits,
 * encoded with round-to-nearest-even and NaN → 0x7FC0, as PyTorch does.
 */
public final class FloatTensorCodec {

    static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort U16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private FloatTensorCodec() {
    }

    public static boolean isFloat(DType dtype) {
        return dtype == DType.F32 || dtype == DType.F16 || dtype == DType.BF16;
    }

    /** Tensor {@code info} of {@code file}, held in {@code data}, as float32. */
    public static float[] decode(Path file, TensorInfo info, MemorySegment data) {
        if (!isFloat(info.dtype())) {
            throw SafetensorsException.forTensor(file, info.name(), "is " + info.dtype()
                    + ", readFloats reads only F32, F16 and BF16");
        }
        long n = info.elementCount();
        if (n > Integer.MAX_VALUE - 8) {
            throw SafetensorsException.forTensor(file, info.name(), n + " elements do not fit a Java float[]");
        }
        float[] out = new float[(int) n];
        switch (info.dtype()) {
            case F32 -> MemorySegment.copy(data, F32_LE, 0, out, 0, out.length);
            case F16 -> {
                for (int i = 0; i < out.length; i++) out[i] = Float.float16ToFloat(data.getAtIndex(U16_LE, i));
            }
            case BF16 -> {
                for (int i = 0; i < out.length; i++) out[i] = bf16ToFloat(data.getAtIndex(U16_LE, i));
            }
            default -> throw new AssertionError(info.dtype());
        }
        return out;
    }

    /** {@code values} as little-endian {@code dtype} (F32, F16 or BF16) bytes in a heap segment. */
    public static MemorySegment encode(DType dtype, float[] values) {
        if (!isFloat(dtype)) throw new IllegalArgumentException("cannot encode floats as " + dtype + " (F32, F16, BF16 only)");
        MemorySegment out = MemorySegment.ofArray(new byte[Math.multiplyExact(values.length, dtype.bytes())]);
        switch (dtype) {
            case F32 -> MemorySegment.copy(values, 0, out, F32_LE, 0, values.length);
            case F16 -> {
                for (int i = 0; i < values.length; i++) out.setAtIndex(U16_LE, i, Float.floatToFloat16(values[i]));
            }
            case BF16 -> {
                for (int i = 0; i < values.length; i++) out.setAtIndex(U16_LE, i, floatToBf16(values[i]));
            }
            default -> throw new AssertionError(dtype);
        }
        return out;
    }

    public static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }

    public static short floatToBf16(float f) {
        if (Float.isNaN(f)) return (short) 0x7FC0;
        int bits = Float.floatToRawIntBits(f);
        int roundingBias = 0x7FFF + ((bits >>> 16) & 1);
        return (short) ((bits + roundingBias) >>> 16);
    }
}
