package dev.qlora4j.quant.weight;

/**
 * A frozen linear weight {@code W [rows = out, cols = in]} as it is stored: dense (F32/F16/BF16) or quantized
 * (NF4/FP4 with plain or double-quantized scales, blockwise 8-bit, row-wise LLM.int8). The bytes live in
 * off-heap {@link java.lang.foreign.MemorySegment}s (usually slices of one mmap'd safetensors file) and are never
 * copied to the heap; kernels dequantize tiles on the fly.
 *
 * <p>{@link #dequantize} is the scalar reference every fast kernel is tested against.
 */
public sealed interface StoredWeight
        permits DenseWeight, FourBitWeight, BlockwiseInt8Weight, RowwiseInt8Weight {

    /** Output features (rows of {@code W [out, in]}). */
    int rows();

    /** Input features (columns of {@code W [out, in]}). */
    int cols();

    WeightFormat format();

    /** Bytes this weight occupies in storage (codes + scales + tables). */
    long storedBytes();

    /**
     * Scalar reference: dequantizes elements {@code [start, start + n)} of the row-major flattened tensor into
     * {@code dst[off .. off + n)} as float32.
     */
    void dequantize(long start, int n, float[] dst, int off);

    /** Dequantizes row {@code row} ({@code cols()} floats) into {@code dst[off ..]}. */
    default void dequantizeRow(int row, float[] dst, int off) {
        dequantize((long) row * cols(), cols(), dst, off);
    }

    default long elementCount() {
        return (long) rows() * cols();
    }
}
