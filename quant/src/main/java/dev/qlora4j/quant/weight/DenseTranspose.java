package dev.qlora4j.quant.weight;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Transposes a dense weight into off-heap memory, keeping its format: GPT-2's Conv1D weights are stored
 * {@code [in, out]} and the kernels (like transformers' bitsandbytes layers) want {@code [out, in]}.
 */
public final class DenseTranspose {
    private static final int TILE = 64;

    private DenseTranspose() {
    }

    /** {@code w [r, c]} → a new {@code [c, r]} weight allocated in {@code arena}; element bits are copied as-is. */
    public static DenseWeight transpose(DenseWeight w, Arena arena) {
        int r = w.rows(), c = w.cols();
        int e = DenseWeight.bytesPerElement(w.format());
        MemorySegment src = w.data();
        MemorySegment dst = arena.allocate((long) r * c * e, 64); // (c, r)
        for (int i0 = 0; i0 < r; i0 += TILE) {
            int i1 = Math.min(r, i0 + TILE);
            for (int j0 = 0; j0 < c; j0 += TILE) {
                int j1 = Math.min(c, j0 + TILE);
                for (int i = i0; i < i1; i++) {
                    for (int j = j0; j < j1; j++) {
                        long from = ((long) i * c + j) * e, to = ((long) j * r + i) * e;
                        if (e == 4) dst.set(DenseWeight.F32_LE, to, src.get(DenseWeight.F32_LE, from));
                        else dst.set(DenseWeight.I16_LE, to, src.get(DenseWeight.I16_LE, from));
                    }
                }
            }
        }
        return new DenseWeight(w.format(), dst, c, r);
    }
}
