package dev.qlora4j.quant.codec;

/**
 * bitsandbytes' double quantization of 4-bit absmax scales ({@code quantize_4bit(compress_statistics=True)}):
 * {@code offset = mean(absmax)} (float32), {@code qabsmax = quantize_blockwise(absmax - offset, blocksize=256)} with
 * the signed dynamic map, one float32 nested absmax per 256 scales. Dequantized:
 * {@code absmax[b] = map[qabsmax[b]] * nestedAbsmax[b / 256] + offset}.
 *
 * <p>The offset: torch computes {@code mean} on CPU as its float32 cascade sum divided by n (and on CUDA with yet
 * another reduction order); we take the float64 sum rounded to float32, divided by n in float32. The two can differ
 * by an ulp; pass the checkpoint's {@code nested_offset} to {@link #quantize(float[], int, float)} to reproduce a
 * given file exactly.
 */
public final class DoubleQuant {

    /**
     * @param offset       the float32 mean subtracted before quantizing
     * @param qabsmax      (nblocks) 8-bit codes of {@code absmax - offset}
     * @param nestedAbsmax (ceil(nblocks / 256)) float32
     */
    public record Result(float offset, byte[] qabsmax, float[] nestedAbsmax) {
    }

    private static final BlockwiseInt8Codec CODEC = BlockwiseInt8Codec.signedDynamic();

    private DoubleQuant() {
    }

    /** The float32 mean of {@code absmax[0 .. n)}: float64 sum rounded to float32, then divided by n in float32. */
    public static float offset(float[] absmax, int n) {
        if (n <= 0) throw new IllegalArgumentException("no scales to average");
        double sum = 0;
        for (int i = 0; i < n; i++) sum += absmax[i];
        return (float) sum / n;
    }

    public static Result quantize(float[] absmax, int n) {
        return quantize(absmax, n, offset(absmax, n));
    }

    /** Double-quantizes {@code absmax[0 .. n)} around a given offset. */
    public static Result quantize(float[] absmax, int n, float offset) {
        int nested = Blocksize.NESTED;
        byte[] qabsmax = new byte[n];
        float[] nestedAbsmax = new float[(n + nested - 1) / nested];
        float[] centered = new float[nested]; // (256) one nested block of absmax - offset
        for (int b = 0, start = 0; start < n; b++, start += nested) {
            int len = Math.min(nested, n - start);
            for (int j = 0; j < len; j++) centered[j] = absmax[start + j] - offset;
            nestedAbsmax[b] = CODEC.quantizeBlock(centered, 0, len, qabsmax, start);
        }
        return new Result(offset, qabsmax, nestedAbsmax);
    }

    /** {@code absmax[b] = map[qabsmax[b]] * nestedAbsmax[b / 256] + offset} for {@code b < n}. */
    public static void dequantize(Result dq, int n, float[] absmax) {
        for (int b = 0; b < n; b++) {
            absmax[b] = CODEC.value(dq.qabsmax()[b] & 0xff) * dq.nestedAbsmax()[b / Blocksize.NESTED] + dq.offset();
        }
    }
}
