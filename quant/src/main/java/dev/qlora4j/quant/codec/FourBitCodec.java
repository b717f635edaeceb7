package dev.qlora4j.quant.codec;

/**
 * bitsandbytes' 4-bit number formats, bit-exact with {@code kQuantizeBlockwise} in {@code csrc/kernels.cu}.
 *
 * <p>Per block of {@code blocksize} elements (the last may be partial): {@code absmax = max |x|} (float32),
 * {@code scaled = x * (1f / absmax)} (the kernel multiplies by the float32 reciprocal), then the 4-bit code of
 * {@code scaled}: NF4 by its float32 midpoints with a tie going to the lower code ({@code dQuantizeNF4}), FP4 by
 * {@code dQuantizeFP4}'s thresholds on {@code |scaled|} plus a sign bit. The kernel does not clamp; clamping to
 * [-1, 1] as bitsandbytes' torch fallback does would not change any code, so it is left out.
 *
 * <p>Packing: element {@code 2i} goes to the high nibble of byte {@code i}, {@code 2i+1} to the low nibble. An
 * odd element count is padded with the value 0.0, quantized like the kernel's zero-filled load ({@code 0 * recip}):
 * the padding nibble is NF4 code 7 (0.0) or FP4 code 0.
 *
 * <p>All-zero block: absmax is 0, the reciprocal is +inf and every {@code 0 * inf} is NaN; every comparison with
 * NaN is false, so both kernels (and this codec) emit code 0. It dequantizes to {@code code[0] * 0} = -0.0 (NF4) or
 * 0.0 (FP4): zeros, never NaN. bitsandbytes' torch fallback yields the same codes for the real elements.
 */
public enum FourBitCodec {

    /** 4-bit NormalFloat; the literal bitsandbytes table (regenerating it from normal quantiles drifts). */
    NF4(new float[]{
            -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
            -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
            0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
            0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f}) {

        // dQuantizeNF4's decision values, ascending (float32 literals as in the kernel)
        private static final float[] MIDPOINTS = { // (15)
                -0.8480964004993439f, -0.6106329262256622f, -0.4599952697753906f, -0.33967943489551544f,
                -0.23460740596055984f, -0.13791173323988914f, -0.045525018125772476f, 0.03979014977812767f,
                0.1202552504837513f, 0.2035212516784668f, 0.2920137718319893f, 0.3893125355243683f,
                0.5016634166240692f, 0.6427869200706482f, 0.8614784181118011f};

        @Override
        public int code(float scaled) {
            int q = 0; // number of midpoints strictly below scaled: a tie stays on the lower code, NaN gives 0
            for (float m : MIDPOINTS) if (scaled > m) q++;
            return q;
        }
    },

    /** E2M1 with the sign in bit 3: {@code value = LUT[q & 7] * (bit3 ? -1 : 1)}. */
    FP4(new float[]{
            0.0f, 0.005208333333f, 0.66666667f, 1.0f, 0.33333333f, 0.5f, 0.16666667f, 0.25f,
            -0.0f, -0.005208333333f, -0.66666667f, -1.0f, -0.33333333f, -0.5f, -0.16666667f, -0.25f}) {

        // dQuantizeFP4's thresholds on |x|, ascending, and the magnitude code above the k-th of them
        private static final float[] THRESHOLDS = { // (7)
                0.00260417f, 0.0859375f, 0.20833333f, 0.29166667f, 0.4166667f, 0.583333f, 0.8333333f};
        private static final int[] CODE_BY_RANK = {0b000, 0b001, 0b110, 0b111, 0b100, 0b101, 0b010, 0b011}; // (8)

        @Override
        public int code(float scaled) {
            int sign = scaled < 0 ? 0b1000 : 0;
            float a = Math.abs(scaled);
            int rank = 0; // NaN: every comparison false, code 0
            for (float t : THRESHOLDS) if (a > t) rank++;
            return CODE_BY_RANK[rank] + sign;
        }
    };

    private final float[] table; // (16)

    FourBitCodec(float[] table) {
        this.table = table;
    }

    /** The 4-bit code of an already scaled value (nominally in [-1, 1]). */
    public abstract int code(float scaled);

    /** The float32 value of a 4-bit code. */
    public float value(int code) {
        return table[code];
    }

    /** A copy of the 16-entry code table, as bitsandbytes serializes it in {@code quant_map}. */
    public float[] table() {
        return table.clone();
    }

    /**
     * Quantizes one block {@code x[off .. off+len)} into {@code (len+1)/2} bytes at {@code packed[packedOff ..]}.
     *
     * @return the block's absmax
     */
    public float quantizeBlock(float[] x, int off, int len, byte[] packed, int packedOff) {
        float absmax = BlockAbsmax.of(x, off, len);
        float recip = 1f / absmax;
        int pairs = len >>> 1;
        for (int p = 0; p < pairs; p++) {
            int i = off + 2 * p;
            packed[packedOff + p] = (byte) (code(x[i] * recip) << 4 | code(x[i + 1] * recip));
        }
        if ((len & 1) != 0) {
            packed[packedOff + pairs] = (byte) (code(x[off + len - 1] * recip) << 4 | code(0f * recip));
        }
        return absmax;
    }

    /**
     * Quantizes {@code x[0 .. n)} in blocks of {@code blocksize}.
     *
     * @param packed (≥ (n+1)/2) codes, two per byte
     * @param absmax (≥ ceil(n/blocksize)) float32 scales
     */
    public void quantize(float[] x, int n, int blocksize, byte[] packed, float[] absmax) {
        Blocksize.checkFourBit(blocksize);
        for (int b = 0, start = 0; start < n; b++, start += blocksize) {
            absmax[b] = quantizeBlock(x, start, Math.min(blocksize, n - start), packed, start >>> 1);
        }
    }

    /** {@code dst[i] = value(code i) * absmax[i / blocksize]} for {@code i < n}. */
    public void dequantize(byte[] packed, float[] absmax, int n, int blocksize, float[] dst) {
        for (int i = 0; i < n; i++) {
            int b = packed[i >>> 1] & 0xff;
            int q = (i & 1) == 0 ? b >>> 4 : b & 0x0f;
            dst[i] = table[q] * absmax[i / blocksize];
        }
    }
}
