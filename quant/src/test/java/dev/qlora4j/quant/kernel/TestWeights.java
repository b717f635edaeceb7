package dev.qlora4j.quant.kernel;

import dev.qlora4j.quant.weight.BlockScales;
import dev.qlora4j.quant.weight.BlockwiseInt8Weight;
import dev.qlora4j.quant.weight.DenseWeight;
import dev.qlora4j.quant.weight.FourBitWeight;
import dev.qlora4j.quant.weight.RowwiseInt8Weight;
import dev.qlora4j.quant.weight.StoredWeight;
import dev.qlora4j.quant.weight.WeightFormat;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;

/** Random weights of every stored format, built directly from random codes and scales (no quantizer involved). */
final class TestWeights {

    static final float[] NF4 = {-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
            -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f,
            0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f,
            0.5626170039176941f, 0.7229568362236023f, 1.0f};
    static final float[] FP4 = {0f, 0.0052083333f, 0.6666667f, 1f, 0.33333334f, 0.5f, 0.16666667f, 0.25f,
            -0f, -0.0052083333f, -0.6666667f, -1f, -0.33333334f, -0.5f, -0.16666667f, -0.25f};

    /** The weight kinds the tests sweep: every format, both block-scale variants for the blockwise ones. */
    enum Kind {
        F32, F32_OFF_HEAP, F16, BF16, NF4_F32_SCALES, NF4_DOUBLE_QUANT, FP4_F32_SCALES, FP4_DOUBLE_QUANT,
        INT8_BLOCKWISE_F32_SCALES, INT8_BLOCKWISE_DOUBLE_QUANT, INT8_ROWWISE
    }

    private TestWeights() {
    }

    /** Finite values only (the matmul tests compare sums). */
    static StoredWeight random(Kind kind, int rows, int cols, int blocksize, Random rnd) {
        long n = (long) rows * cols;
        return switch (kind) {
            case F32 -> new DenseWeight(WeightFormat.F32, floats(n, rnd, false), rows, cols);
            case F32_OFF_HEAP -> new DenseWeight(WeightFormat.F32, floats(n, rnd, true), rows, cols);
            case F16, BF16 -> {
                ByteBuffer bb = ByteBuffer.allocate((int) n * 2).order(ByteOrder.LITTLE_ENDIAN);
                for (long i = 0; i < n; i++) {
                    float v = (rnd.nextFloat() * 2 - 1) * (rnd.nextInt(8) == 0 ? 1e-6f : 1f); // some F16 subnormals
                    bb.putShort(kind == Kind.F16 ? Float.floatToFloat16(v)
                            : (short) (Float.floatToRawIntBits(v) >>> 16));
                }
                yield new DenseWeight(kind == Kind.F16 ? WeightFormat.F16 : WeightFormat.BF16,
                        MemorySegment.ofArray(bb.array()), rows, cols);
            }
            case NF4_F32_SCALES, NF4_DOUBLE_QUANT, FP4_F32_SCALES, FP4_DOUBLE_QUANT -> {
                boolean nf4 = kind.name().startsWith("NF4");
                byte[] packed = bytes((n + 1) / 2, rnd);
                yield new FourBitWeight(nf4 ? WeightFormat.NF4 : WeightFormat.FP4, rows, cols, blocksize,
                        nf4 ? NF4.clone() : FP4.clone(), MemorySegment.ofArray(packed),
                        scales((n + blocksize - 1) / blocksize, kind.name().endsWith("DOUBLE_QUANT"), rnd));
            }
            case INT8_BLOCKWISE_F32_SCALES, INT8_BLOCKWISE_DOUBLE_QUANT -> {
                float[] map = new float[256];
                for (int i = 0; i < 256; i++) map[i] = rnd.nextFloat() * 2 - 1;
                yield new BlockwiseInt8Weight(rows, cols, blocksize, map, MemorySegment.ofArray(bytes(n, rnd)),
                        scales((n + blocksize - 1) / blocksize, kind == Kind.INT8_BLOCKWISE_DOUBLE_QUANT, rnd));
            }
            case INT8_ROWWISE -> {
                MemorySegment scb = MemorySegment.ofArray(new byte[rows * 4]);
                for (int r = 0; r < rows; r++) {
                    scb.set(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), r * 4L,
                            0.05f + rnd.nextFloat());
                }
                yield new RowwiseInt8Weight(rows, cols, MemorySegment.ofArray(bytes(n, rnd)), scb);
            }
        };
    }

    /** Raw random bit patterns (NaN, Inf, subnormals included) for the dense half formats. */
    static DenseWeight rawHalf(WeightFormat f, int rows, int cols, Random rnd) {
        return new DenseWeight(f, MemorySegment.ofArray(bytes((long) rows * cols * 2, rnd)), rows, cols);
    }

    static BlockScales scales(long blocks, boolean doubleQuant, Random rnd) {
        if (!doubleQuant) return new BlockScales.F32Scales(floatsPositive(blocks, rnd));
        int nested = 1 + rnd.nextInt(5); // small nested blocks so several nested absmax values are used
        float[] map = new float[256];
        for (int i = 0; i < 256; i++) map[i] = rnd.nextFloat() * 2 - 1;
        return new BlockScales.DoubleQuantScales(MemorySegment.ofArray(bytes(blocks, rnd)),
                floatsPositive((blocks + nested - 1) / nested, rnd), map, nested, 0.5f + rnd.nextFloat());
    }

    static byte[] bytes(long n, Random rnd) {
        byte[] b = new byte[(int) n];
        rnd.nextBytes(b);
        return b;
    }

    static MemorySegment floats(long n, Random rnd, boolean offHeap) {
        MemorySegment s = offHeap ? Arena.ofAuto().allocate(n * 4, 64) : MemorySegment.ofArray(new byte[(int) n * 4]);
        for (long i = 0; i < n; i++) {
            s.set(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), i * 4, rnd.nextFloat() * 2 - 1);
        }
        return s;
    }

    static MemorySegment floatsPositive(long n, Random rnd) {
        MemorySegment s = MemorySegment.ofArray(new byte[(int) n * 4]);
        for (long i = 0; i < n; i++) {
            s.set(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), i * 4, 0.1f + rnd.nextFloat());
        }
        return s;
    }

    static float[] randomArray(int n, Random rnd) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = rnd.nextFloat() * 2 - 1;
        return a;
    }

    /**
     * {@code |bias[row]| + Σ_c |x[xOff + c] · W[row, c]|} in float64 (bias may be null): the scale of the fp32
     * reassociation error a GEMV output may carry, for {@link PanamaKernelsTest#check}.
     */
    static double absTerms(StoredWeight w, int row, float[] x, int xOff, float[] bias) {
        int k = w.cols();
        float[] r = new float[k]; // (K) the dequantized row
        w.dequantize((long) row * k, k, r, 0);
        double abs = bias == null ? 0 : Math.abs(bias[row]);
        for (int c = 0; c < k; c++) abs += Math.abs((double) x[xOff + c] * r[c]);
        return abs;
    }
}
