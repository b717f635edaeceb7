package dev.qlora4j.lora.adapter;

import dev.qlora4j.quant.safetensors.FloatTensorCodec;
import dev.qlora4j.quant.weight.BlockScales;
import dev.qlora4j.quant.weight.BlockwiseInt8Weight;
import dev.qlora4j.quant.weight.DenseWeight;
import dev.qlora4j.quant.weight.FourBitWeight;
import dev.qlora4j.quant.weight.Quantizer;
import dev.qlora4j.quant.weight.RowwiseInt8Weight;
import dev.qlora4j.quant.weight.StoredWeight;
import dev.qlora4j.quant.weight.WeightFormat;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * {@code W' = W + s·B·A} for a base weight {@code W [out, in]} in any stored format, into new off-heap memory (the
 * base, usually a read-only mmap'd slice, is never written). Row by row: dequantize one row of {@code W} to fp32,
 * add {@code s·Σ_k B[o,k]·A[k,:]} in fp32, encode. A quantized base merges as PEFT's does (dequantize → add); the
 * result stays dense, or is quantized again in the base's format on request (lossy, as bitsandbytes' merge is).
 */
public final class Merger {
    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private Merger() {
    }

    /** The dense format a merge of {@code w} produces by default: the base's own for dense bases, else F32. */
    public static WeightFormat defaultFormat(StoredWeight w) {
        return w.format().isQuantized() ? WeightFormat.F32 : w.format();
    }

    /**
     * @param hook    the adapter of this linear, or null for {@code W} unchanged (re-encoded)
     * @param format  F32, F16 or BF16
     * @param transpose write {@code W'ᵀ [in, out]} (GPT-2's Conv1D layout) instead of {@code [out, in]}
     */
    public static DenseWeight mergedDense(StoredWeight w, LoraHook hook, WeightFormat format, boolean transpose,
                                          Arena arena) {
        if (format.isQuantized()) throw new IllegalArgumentException("merged weights are F32, F16 or BF16, not " + format);
        int out = w.rows(), in = w.cols();
        if (hook != null && (hook.out() != out || hook.in() != in)) {
            throw new IllegalArgumentException(hook.path() + ": adapter is [" + hook.out() + ", " + hook.in()
                    + "], weight is [" + out + ", " + in + "]");
        }
        int e = DenseWeight.bytesPerElement(format);
        MemorySegment dst = arena.allocate((long) out * in * e, 64); // (out, in) or (in, out)
        float[] row = new float[in];
        float[] p = hook == null ? null : hook.buffer().params();
        for (int o = 0; o < out; o++) {
            w.dequantizeRow(o, row, 0);
            if (hook != null) addDeltaRow(hook, p, o, row);
            for (int i = 0; i < in; i++) {
                long idx = transpose ? (long) i * out + o : (long) o * in + i;
                put(dst, format, idx, row[i]);
            }
        }
        return transpose ? new DenseWeight(format, dst, in, out) : new DenseWeight(format, dst, out, in);
    }

    /** {@code row += s · Σ_k B[o,k] · A[k,:]} in fp32. */
    static void addDeltaRow(LoraHook h, float[] p, int o, float[] row) {
        int r = h.r(), in = h.in(), aOff = h.sliceA().offset(), bOff = h.sliceB().offset() + o * r;
        float s = h.scale();
        for (int k = 0; k < r; k++) {
            float c = s * p[bOff + k];
            if (c == 0f) continue;
            int ao = aOff + k * in;
            for (int i = 0; i < in; i++) row[i] += c * p[ao + i];
        }
    }

    /**
     * The merged weight used in place of {@code w}: dense in {@link #defaultFormat}, or, with {@code requantize} and a
     * quantized base, quantized again in the base's format, block size and double quantization.
     */
    public static StoredWeight merged(StoredWeight w, LoraHook hook, boolean requantize, Arena arena) {
        DenseWeight d = mergedDense(w, hook, defaultFormat(w), false, arena);
        if (!requantize || !w.format().isQuantized()) return d;
        return switch (w) {
            case FourBitWeight f -> Quantizer.quantize(d, f.format(), f.blocksize(),
                    f.scales() instanceof BlockScales.DoubleQuantScales, arena);
            case BlockwiseInt8Weight b -> Quantizer.quantize(d, WeightFormat.INT8_BLOCKWISE, b.blocksize(), false, arena);
            case RowwiseInt8Weight r -> Quantizer.quantize(d, WeightFormat.INT8_ROWWISE, 0, false, arena);
            case DenseWeight dw -> d;
        };
    }

    static void put(MemorySegment dst, WeightFormat f, long idx, float v) {
        switch (f) {
            case F32 -> dst.set(F32_LE, idx * 4, v);
            case F16 -> dst.set(I16_LE, idx * 2, Float.floatToFloat16(v));
            case BF16 -> dst.set(I16_LE, idx * 2, FloatTensorCodec.floatToBf16(v));
            default -> throw new AssertionError(f);
        }
    }
}
