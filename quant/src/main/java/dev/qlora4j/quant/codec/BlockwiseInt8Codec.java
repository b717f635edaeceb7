package dev.qlora4j.quant.codec;

/**
 * bitsandbytes' blockwise 8-bit quantization ({@code quantize_blockwise}, CUDA {@code kQuantizeBlockwise} with
 * {@code General8bit}): per block {@code absmax = max |x|}, {@code scaled = x * (1f / absmax)}, code = the nearest
 * entry of a 256-value ascending map, found by {@code dQuantize}'s 7-step binary search. Its tie rule: at an exact
 * float32 midpoint {@code (a + b) * 0.5f} of two neighbouring codes the one with the even index wins, because the
 * search always ends on an even pivot and keeps it unless {@code x} is strictly past the midpoint. (bitsandbytes'
 * torch fallback uses {@code argmin |x - code|}, which sends such ties to the lower index; we follow the kernel.)
 * An all-zero block scales to NaN and gets code 0, which dequantizes to {@code map[0] * 0} = -0.0.
 */
public final class BlockwiseInt8Codec {

    private final float[] map; // (256) ascending

    /** @param map 256 ascending float32 code values (copied) */
    public BlockwiseInt8Codec(float[] map) {
        if (map.length != 256) throw new IllegalArgumentException("8-bit map needs 256 entries, got " + map.length);
        for (int i = 1; i < 256; i++) {
            if (!(map[i] >= map[i - 1])) throw new IllegalArgumentException("8-bit map not ascending at " + i);
        }
        this.map = map.clone();
    }

    /** The codec with bitsandbytes' signed dynamic map. */
    public static BlockwiseInt8Codec signedDynamic() {
        return new BlockwiseInt8Codec(DynamicMap.signed());
    }

    /** A copy of the 256 code values. */
    public float[] map() {
        return map.clone();
    }

    public float value(int code) {
        return map[code];
    }

    /** {@code dQuantize<STOCHASTIC=0>}: the code of an already scaled value. */
    public int code(float x) {
        int pivot = 127;
        int upperPivot = 255;
        int lowerPivot = 0;
        float lower = -1f;
        float upper = 1f;
        float val = map[pivot];
        for (int i = 64; i > 0; i >>= 1) {
            if (x > val) {
                lowerPivot = pivot;
                lower = val;
                pivot += i;
            } else {
                upperPivot = pivot;
                upper = val;
                pivot -= i;
            }
            val = map[pivot];
        }
        if (upperPivot == 255) upper = map[255];
        if (lowerPivot == 0) lower = map[0];
        if (x > val) {
            float midpoint = (upper + val) * 0.5f;
            return x > midpoint ? upperPivot : pivot;
        }
        float midpoint = (lower + val) * 0.5f;
        return x < midpoint ? lowerPivot : pivot;
    }

    /**
     * Quantizes one block {@code x[off .. off+len)} into {@code codes[codesOff .. codesOff+len)}.
     *
     * @return the block's absmax
     */
    public float quantizeBlock(float[] x, int off, int len, byte[] codes, int codesOff) {
        float absmax = BlockAbsmax.of(x, off, len);
        float recip = 1f / absmax;
        for (int j = 0; j < len; j++) codes[codesOff + j] = (byte) code(x[off + j] * recip);
        return absmax;
    }

    /**
     * Quantizes {@code x[0 .. n)} in blocks of {@code blocksize} (64..4096).
     *
     * @param codes  (≥ n)
     * @param absmax (≥ ceil(n/blocksize))
     */
    public void quantize(float[] x, int n, int blocksize, byte[] codes, float[] absmax) {
        Blocksize.checkBlockwise(blocksize);
        quantizeUnchecked(x, n, blocksize, codes, absmax);
    }

    /** As {@link #quantize} for any positive block size (double quantization uses 256). */
    void quantizeUnchecked(float[] x, int n, int blocksize, byte[] codes, float[] absmax) {
        for (int b = 0, start = 0; start < n; b++, start += blocksize) {
            absmax[b] = quantizeBlock(x, start, Math.min(blocksize, n - start), codes, start);
        }
    }

    /** {@code dst[i] = map[codes[i]] * absmax[i / blocksize]} for {@code i < n}. */
    public void dequantize(byte[] codes, float[] absmax, int n, int blocksize, float[] dst) {
        for (int i = 0; i < n; i++) dst[i] = map[codes[i] & 0xff] * absmax[i / blocksize];
    }
}
