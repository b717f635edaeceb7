package dev.qlora4j.quant.codec;

import java.util.Arrays;

/**
 * LLM.int8 row-wise quantization (bitsandbytes {@code int8_vectorwise_quant}, as {@code Linear8bitLt} stores its
 * weight): {@code SCB = max |row|}, {@code CB = round(w * (127f / SCB))} with round half to even ({@code torch.round},
 * CUDA {@code __float2int_rn}). The scale is computed once per row in float32 and then multiplied, exactly as
 * bitsandbytes' torch implementation ({@code A * (127.0 / row_stats)}); the CUDA kernel's {@code __fdividef} may
 * differ by an ulp in the scale. An all-zero row has SCB 0 and CB 0 (the kernel's {@code __float2int_rn(NaN)}).
 */
public final class RowwiseInt8Codec {

    private RowwiseInt8Codec() {
    }

    /**
     * Quantizes one row {@code w[off .. off+cols)} into {@code cb[cbOff .. cbOff+cols)}.
     *
     * @return SCB, the row's absmax
     */
    public static float quantizeRow(float[] w, int off, int cols, byte[] cb, int cbOff) {
        float rowmax = BlockAbsmax.of(w, off, cols);
        if (rowmax == 0f) {
            Arrays.fill(cb, cbOff, cbOff + cols, (byte) 0);
            return rowmax;
        }
        float scale = 127f / rowmax;
        for (int j = 0; j < cols; j++) cb[cbOff + j] = (byte) (int) Math.rint(w[off + j] * scale);
        return rowmax;
    }

    /** Quantizes {@code w [rows, cols]} row-major: {@code cb (rows·cols)}, {@code scb (rows)}. */
    public static void quantize(float[] w, int rows, int cols, byte[] cb, float[] scb) {
        for (int r = 0; r < rows; r++) scb[r] = quantizeRow(w, r * cols, cols, cb, r * cols);
    }

    /** {@code dst[r, c] = cb[r, c] * (scb[r] / 127)}, as {@code RowwiseInt8Weight} dequantizes. */
    public static void dequantize(byte[] cb, float[] scb, int rows, int cols, float[] dst) {
        for (int r = 0; r < rows; r++) {
            float s = scb[r] / 127f;
            for (int c = 0; c < cols; c++) dst[r * cols + c] = cb[r * cols + c] * s;
        }
    }
}
