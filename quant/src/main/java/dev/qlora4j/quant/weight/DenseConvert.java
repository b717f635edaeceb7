package dev.qlora4j.quant.weight;

import dev.qlora4j.quant.safetensors.FloatTensorCodec;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Converts a dense weight between F32, F16 and BF16 into off-heap memory (round to nearest even), row by row: e.g. a
 * float32 tied embedding / LM head held as BF16, as transformers does when a model is loaded in bfloat16.
 */
public final class DenseConvert {
    private DenseConvert() {
    }

    /** {@code w} as {@code target}; {@code w} itself when it already has that format. */
    public static DenseWeight convert(DenseWeight w, WeightFormat target, Arena arena) {
        if (w.format() == target) return w;
        int rows = w.rows(), cols = w.cols();
        MemorySegment dst = arena.allocate((long) rows * cols * DenseWeight.bytesPerElement(target), 64);
        float[] row = new float[cols]; // (cols) one row at a time
        for (int r = 0; r < rows; r++) {
            w.dequantizeRow(r, row, 0);
            long base = (long) r * cols;
            for (int c = 0; c < cols; c++) {
                long i = base + c;
                switch (target) {
                    case F32 -> dst.set(DenseWeight.F32_LE, i * 4, row[c]);
                    case F16 -> dst.set(DenseWeight.I16_LE, i * 2, Float.floatToFloat16(row[c]));
                    case BF16 -> dst.set(DenseWeight.I16_LE, i * 2, FloatTensorCodec.floatToBf16(row[c]));
                    default -> throw new IllegalArgumentException("dense formats are F32, F16, BF16, not " + target);
                }
            }
        }
        return new DenseWeight(target, dst, rows, cols);
    }
}
