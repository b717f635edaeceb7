package dev.qlora4j.quant.weight;

/** Every storage format a {@link StoredWeight} can have. */
public enum WeightFormat {
    F32, F16, BF16,
    /** bitsandbytes NF4 (4-bit NormalFloat), blockwise absmax scales. */
    NF4,
    /** bitsandbytes FP4 (E2M1), blockwise absmax scales. */
    FP4,
    /** Blockwise 8-bit with the signed dynamic map (bitsandbytes quantize_blockwise). */
    INT8_BLOCKWISE,
    /** LLM.int8 row-wise: {@code CB = round(W·127/rowmax)}, {@code SCB = rowmax}. */
    INT8_ROWWISE;

    public boolean isQuantized() {
        return this != F32 && this != F16 && this != BF16;
    }
}
