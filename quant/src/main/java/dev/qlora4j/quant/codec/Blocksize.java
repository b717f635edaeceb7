package dev.qlora4j.quant.codec;

/**
 * The block sizes bitsandbytes accepts: 4-bit (NF4/FP4) quantization has CUDA kernels for the powers of two
 * 32..4096, blockwise 8-bit for 64..4096 ({@code quantize_blockwise} asserts that list). Double quantization
 * quantizes the scales in blocks of {@link #NESTED}.
 */
public final class Blocksize {

    /** QLoRA's and bitsandbytes' default for 4-bit weights. */
    public static final int FOUR_BIT_DEFAULT = 64;
    /** bitsandbytes' default for {@code quantize_blockwise} on general tensors. */
    public static final int BLOCKWISE_DEFAULT = 4096;
    /** Block size of the double-quantized absmax scales ({@code nested_blocksize}). */
    public static final int NESTED = 256;

    private Blocksize() {
    }

    /** Returns {@code blocksize} if it is a power of two in 32..4096, else throws. */
    public static int checkFourBit(int blocksize) {
        return check(blocksize, 32, "4-bit (NF4/FP4)");
    }

    /** Returns {@code blocksize} if it is a power of two in 64..4096, else throws. */
    public static int checkBlockwise(int blocksize) {
        return check(blocksize, 64, "blockwise 8-bit");
    }

    private static int check(int blocksize, int min, String what) {
        if (blocksize < min || blocksize > 4096 || Integer.bitCount(blocksize) != 1) {
            throw new IllegalArgumentException(what + " blocksize must be a power of two in " + min
                    + "..4096 (as bitsandbytes' kernels), got " + blocksize);
        }
        return blocksize;
    }
}
