package dev.qlora4j.quant.weight;

import dev.qlora4j.quant.codec.BlockwiseInt8Codec;
import dev.qlora4j.quant.codec.Blocksize;
import dev.qlora4j.quant.codec.DoubleQuant;
import dev.qlora4j.quant.codec.DynamicMap;
import dev.qlora4j.quant.codec.FourBitCodec;
import dev.qlora4j.quant.codec.RowwiseInt8Codec;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Turns any {@link StoredWeight} (typically a mmap'd F32/F16/BF16 {@link DenseWeight}) into a bitsandbytes-layout
 * quantized weight whose codes and scales live in off-heap segments allocated from the caller's {@link Arena}.
 *
 * <p>The source is streamed through one reused float32 chunk of whole blocks (whole rows for LLM.int8), never copied
 * to the heap in full. Double quantization needs every absmax before the mean, so it keeps the float32 scales
 * ({@code (nblocks)}, 1/blocksize of the tensor) on the heap until they are quantized.
 */
public final class Quantizer {

    /** Target elements per streamed chunk (rounded down to whole blocks, at least one block). */
    static final int CHUNK = 1 << 16;

    private Quantizer() {
    }

    /**
     * Quantizes {@code w} to {@code format}.
     *
     * @param blocksize   block size for NF4/FP4 (32..4096) and INT8_BLOCKWISE (64..4096); ignored for INT8_ROWWISE
     * @param doubleQuant double-quantize the NF4/FP4 scales; must be false for the 8-bit formats
     */
    public static StoredWeight quantize(StoredWeight w, WeightFormat format, int blocksize, boolean doubleQuant,
                                        Arena arena) {
        if (doubleQuant && format != WeightFormat.NF4 && format != WeightFormat.FP4) {
            throw new IllegalArgumentException("double quantization applies to NF4/FP4 scales, not " + format);
        }
        return switch (format) {
            case NF4 -> fourBit(w, FourBitCodec.NF4, blocksize, doubleQuant, arena);
            case FP4 -> fourBit(w, FourBitCodec.FP4, blocksize, doubleQuant, arena);
            case INT8_BLOCKWISE -> blockwiseInt8(w, blocksize, arena);
            case INT8_ROWWISE -> rowwiseInt8(w, arena);
            default -> throw new IllegalArgumentException("quantize targets NF4, FP4, INT8_BLOCKWISE or "
                    + "INT8_ROWWISE, not " + format);
        };
    }

    /** QLoRA's default: NF4, blocksize 64, double-quantized scales. */
    public static FourBitWeight nf4(StoredWeight w, Arena arena) {
        return fourBit(w, FourBitCodec.NF4, Blocksize.FOUR_BIT_DEFAULT, true, arena);
    }

    public static FourBitWeight fourBit(StoredWeight w, FourBitCodec codec, int blocksize, boolean doubleQuant,
                                        Arena arena) {
        Blocksize.checkFourBit(blocksize);
        long n = w.elementCount();
        int nblocks = blockCount(n, blocksize);
        MemorySegment packed = arena.allocate((n + 1) / 2, 16); // (ceil(N/2)) U8
        float[] absmax = doubleQuant ? new float[nblocks] : null; // (nblocks), only when double-quantizing
        MemorySegment absmaxSeg = doubleQuant ? null : arena.allocate((long) nblocks * 4, 16); // (nblocks) F32

        int chunk = chunkElements(blocksize);
        float[] x = new float[chunk];              // (chunk) source elements
        byte[] codes = new byte[chunk / 2];        // (chunk/2) packed codes of the chunk
        float[] chunkAbsmax = new float[chunk / blocksize]; // (chunk/blocksize)
        for (long start = 0; start < n; start += chunk) {
            int len = (int) Math.min(chunk, n - start);
            int firstBlock = (int) (start / blocksize);
            int blocks = (len + blocksize - 1) / blocksize;
            w.dequantize(start, len, x, 0);
            for (int b = 0; b < blocks; b++) {
                int off = b * blocksize;
                chunkAbsmax[b] = codec.quantizeBlock(x, off, Math.min(blocksize, len - off), codes, off >>> 1);
            }
            MemorySegment.copy(codes, 0, packed, ValueLayout.JAVA_BYTE, start >>> 1, (len + 1) / 2);
            if (doubleQuant) {
                System.arraycopy(chunkAbsmax, 0, absmax, firstBlock, blocks);
            } else {
                MemorySegment.copy(chunkAbsmax, 0, absmaxSeg, DenseWeight.F32_LE, (long) firstBlock * 4, blocks);
            }
        }
        BlockScales scales = doubleQuant ? doubleQuantScales(absmax, arena) : new BlockScales.F32Scales(absmaxSeg);
        WeightFormat format = codec == FourBitCodec.NF4 ? WeightFormat.NF4 : WeightFormat.FP4;
        return new FourBitWeight(format, w.rows(), w.cols(), blocksize, codec.table(), packed, scales);
    }

    /** Double-quantizes float32 scales into off-heap {@code qabsmax (nblocks)} and {@code nested (ceil(nblocks/256))}. */
    public static BlockScales.DoubleQuantScales doubleQuantScales(float[] absmax, Arena arena) {
        DoubleQuant.Result dq = DoubleQuant.quantize(absmax, absmax.length);
        MemorySegment qabsmax = arena.allocate(absmax.length, 16); // (nblocks) U8
        MemorySegment.copy(dq.qabsmax(), 0, qabsmax, ValueLayout.JAVA_BYTE, 0, absmax.length);
        float[] nested = dq.nestedAbsmax();
        MemorySegment nestedSeg = arena.allocate((long) nested.length * 4, 16); // (ceil(nblocks/256)) F32
        MemorySegment.copy(nested, 0, nestedSeg, DenseWeight.F32_LE, 0, nested.length);
        return new BlockScales.DoubleQuantScales(qabsmax, nestedSeg, DynamicMap.signed(), Blocksize.NESTED,
                dq.offset());
    }

    public static BlockwiseInt8Weight blockwiseInt8(StoredWeight w, int blocksize, Arena arena) {
        Blocksize.checkBlockwise(blocksize);
        BlockwiseInt8Codec codec = BlockwiseInt8Codec.signedDynamic();
        long n = w.elementCount();
        int nblocks = blockCount(n, blocksize);
        MemorySegment codesSeg = arena.allocate(n, 16);                // (N) U8
        MemorySegment absmaxSeg = arena.allocate((long) nblocks * 4, 16); // (nblocks) F32

        int chunk = chunkElements(blocksize);
        float[] x = new float[chunk];                       // (chunk)
        byte[] codes = new byte[chunk];                     // (chunk)
        float[] chunkAbsmax = new float[chunk / blocksize]; // (chunk/blocksize)
        for (long start = 0; start < n; start += chunk) {
            int len = (int) Math.min(chunk, n - start);
            int blocks = (len + blocksize - 1) / blocksize;
            w.dequantize(start, len, x, 0);
            for (int b = 0; b < blocks; b++) {
                int off = b * blocksize;
                chunkAbsmax[b] = codec.quantizeBlock(x, off, Math.min(blocksize, len - off), codes, off);
            }
            MemorySegment.copy(codes, 0, codesSeg, ValueLayout.JAVA_BYTE, start, len);
            MemorySegment.copy(chunkAbsmax, 0, absmaxSeg, DenseWeight.F32_LE, start / blocksize * 4, blocks);
        }
        return new BlockwiseInt8Weight(w.rows(), w.cols(), blocksize, codec.map(), codesSeg,
                new BlockScales.F32Scales(absmaxSeg));
    }

    public static RowwiseInt8Weight rowwiseInt8(StoredWeight w, Arena arena) {
        int rows = w.rows();
        int cols = w.cols();
        MemorySegment cbSeg = arena.allocate((long) rows * cols, 16); // (rows, cols) I8
        MemorySegment scbSeg = arena.allocate((long) rows * 4, 16);   // (rows) F32
        float[] row = new float[cols]; // (cols)
        byte[] cb = new byte[cols];    // (cols)
        for (int r = 0; r < rows; r++) {
            w.dequantizeRow(r, row, 0);
            float scb = RowwiseInt8Codec.quantizeRow(row, 0, cols, cb, 0);
            MemorySegment.copy(cb, 0, cbSeg, ValueLayout.JAVA_BYTE, (long) r * cols, cols);
            scbSeg.set(DenseWeight.F32_LE, (long) r * 4, scb);
        }
        return new RowwiseInt8Weight(rows, cols, cbSeg, scbSeg);
    }

    private static int blockCount(long n, int blocksize) {
        long nblocks = (n + blocksize - 1) / blocksize;
        if (nblocks > Integer.MAX_VALUE) throw new IllegalArgumentException(nblocks + " blocks exceed an int");
        return (int) nblocks;
    }

    private static int chunkElements(int blocksize) {
        return Math.max(blocksize, CHUNK / blocksize * blocksize);
    }
}
