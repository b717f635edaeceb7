package dev.qlora4j.bench.kernel;

import dev.qlora4j.quant.kernel.Kernels;
import dev.qlora4j.quant.kernel.ScalarKernels;
import dev.qlora4j.quant.memory.HugePageArena;
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
import java.nio.ByteOrder;
import java.util.Random;

/**
 * Random off-heap weights for the kernel benchmarks (bitsandbytes defaults: blocksize 64, nested blocksize 256) and
 * the one-time check of a fast kernel's result against {@link ScalarKernels}.
 */
final class BenchWeights {

    static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    static final float[] NF4 = {-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
            -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f,
            0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f,
            0.5626170039176941f, 0.7229568362236023f, 1.0f};
    static final float[] FP4 = {0f, 0.0052083333f, 0.6666667f, 1f, 0.33333334f, 0.5f, 0.16666667f, 0.25f,
            -0f, -0.0052083333f, -0.6666667f, -1f, -0.33333334f, -0.5f, -0.16666667f, -0.25f};

    private BenchWeights() {
    }

    /**
     * Stored bytes a "cold" benchmark cycles through, so that every call streams W from DRAM: 256 MiB by default,
     * 8× the 32 MB L3 of the machines this was measured on (AMD's L3 is a victim cache that can keep part of a set
     * only twice its size; bench/RESULTS.md, session 11, has the fp32 GEMV at 64 and 256 MiB). {@code -Dbench.coldMiB=N}.
     */
    static final long COLD_BYTES = Long.getLong("bench.coldMiB", 256) << 20;

    /** Format suffix ({@code F32+HP}): the weight's memory comes from a {@link HugePageArena} (madvised huge pages). */
    static final String HUGE_PAGES = "+HP";

    /**
     * @param format F32, F16, BF16, NF4, NF4_DQ, FP4, FP4_DQ, INT8_BLOCKWISE, INT8_BLOCKWISE_DQ, INT8_ROWWISE; with
     *               {@link #HUGE_PAGES} appended, in huge pages
     */
    static StoredWeight random(String format, int rows, int cols, long seed) {
        Random rnd = new Random(seed);
        Arena arena = Arena.ofAuto();
        if (format.endsWith(HUGE_PAGES)) { // never closed: the benches keep their weights for the JVM's life
            format = format.substring(0, format.length() - HUGE_PAGES.length());
            arena = new HugePageArena(true);
        }
        long n = (long) rows * cols;
        boolean dq = format.endsWith("_DQ");
        return switch (format) {
            case "F32" -> {
                MemorySegment s = arena.allocate(n * 4, 64);
                for (long i = 0; i < n; i++) s.set(F32_LE, i * 4, rnd.nextFloat() * 2 - 1);
                yield new DenseWeight(WeightFormat.F32, s, rows, cols);
            }
            case "F16", "BF16" -> {
                MemorySegment s = arena.allocate(n * 2, 64);
                for (long i = 0; i < n; i++) {
                    float v = rnd.nextFloat() * 2 - 1;
                    s.set(I16_LE, i * 2, format.equals("F16") ? Float.floatToFloat16(v)
                            : (short) (Float.floatToRawIntBits(v) >>> 16));
                }
                yield new DenseWeight(WeightFormat.valueOf(format), s, rows, cols);
            }
            case "NF4", "NF4_DQ", "FP4", "FP4_DQ" -> {
                boolean nf4 = format.startsWith("NF4");
                yield new FourBitWeight(nf4 ? WeightFormat.NF4 : WeightFormat.FP4, rows, cols, 64,
                        nf4 ? NF4 : FP4, bytes(arena, (n + 1) / 2, rnd), scales(arena, (n + 63) / 64, dq, rnd));
            }
            case "INT8_BLOCKWISE", "INT8_BLOCKWISE_DQ" -> {
                float[] map = new float[256];
                for (int i = 0; i < 256; i++) map[i] = rnd.nextFloat() * 2 - 1;
                yield new BlockwiseInt8Weight(rows, cols, 64, map, bytes(arena, n, rnd),
                        scales(arena, (n + 63) / 64, dq, rnd));
            }
            case "INT8_ROWWISE" -> {
                MemorySegment scb = arena.allocate(rows * 4L, 64);
                for (int r = 0; r < rows; r++) scb.set(F32_LE, r * 4L, 0.05f + rnd.nextFloat());
                yield new RowwiseInt8Weight(rows, cols, bytes(arena, n, rnd), scb);
            }
            default -> throw new IllegalArgumentException(format);
        };
    }

    private static BlockScales scales(Arena arena, long blocks, boolean dq, Random rnd) {
        if (!dq) return new BlockScales.F32Scales(positive(arena, blocks, rnd));
        float[] map = new float[256];
        for (int i = 0; i < 256; i++) map[i] = rnd.nextFloat() * 2 - 1;
        return new BlockScales.DoubleQuantScales(bytes(arena, blocks, rnd), positive(arena, (blocks + 255) / 256, rnd),
                map, 256, 0.5f);
    }

    private static MemorySegment bytes(Arena arena, long n, Random rnd) {
        MemorySegment s = arena.allocate(n, 64);
        byte[] chunk = new byte[1 << 16];
        for (long o = 0; o < n; o += chunk.length) {
            rnd.nextBytes(chunk);
            MemorySegment.copy(MemorySegment.ofArray(chunk), 0, s, o, Math.min(chunk.length, n - o));
        }
        return s;
    }

    private static MemorySegment positive(Arena arena, long n, Random rnd) {
        MemorySegment s = arena.allocate(n * 4, 64);
        for (long i = 0; i < n; i++) s.set(F32_LE, i * 4, 0.1f + rnd.nextFloat());
        return s;
    }

    static float[] randomArray(int n, long seed) {
        Random rnd = new Random(seed);
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = rnd.nextFloat() * 2 - 1;
        return a;
    }

    /** Rows {@code [0, rows)} of a fast forward result against the scalar kernel on the same rows. */
    static void checkForward(Kernels fast, float[] x, StoredWeight w, float[] bias, int m, int rows) {
        int n = w.rows(), k = w.cols();
        float[] got = new float[m * n], want = new float[rows * n]; // (M, N), (rows, N)
        fast.matmul(x, 0, w, bias, got, 0, m);
        new ScalarKernels().matmul(x, 0, w, bias, want, 0, rows);
        compare(want, got, k, "forward " + fast.name() + " " + w.format());
    }

    /** Rows {@code [0, rows)} of a fast backward result against the scalar kernel on the same rows. */
    static void checkBackward(Kernels fast, float[] dy, StoredWeight w, int m, int rows) {
        int k = w.cols();
        float[] got = new float[m * k], want = new float[rows * k]; // (M, K), (rows, K)
        fast.matmulBackwardInput(dy, 0, w, got, 0, m, false);
        new ScalarKernels().matmulBackwardInput(dy, 0, w, want, 0, rows, false);
        compare(want, got, w.rows(), "backward " + fast.name() + " " + w.format());
    }

    private static void compare(float[] want, float[] got, int terms, String what) {
        for (int i = 0; i < want.length; i++) {
            // random ±1 data: |sum| of `terms` products is ~sqrt(terms); allow fp32 reassociation error on top
            if (!(Math.abs(want[i] - got[i]) <= 1e-5f * terms)) {
                throw new IllegalStateException(what + ": element " + i + " want " + want[i] + " got " + got[i]);
            }
        }
    }
}
