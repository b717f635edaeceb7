package dev.qlora4j.quant.kernel;

import dev.qlora4j.quant.weight.BlockScales;
import dev.qlora4j.quant.weight.BlockwiseInt8Weight;
import dev.qlora4j.quant.weight.DenseWeight;
import dev.qlora4j.quant.weight.FourBitWeight;
import dev.qlora4j.quant.weight.RowwiseInt8Weight;
import dev.qlora4j.quant.weight.StoredWeight;
import dev.qlora4j.quant.weight.WeightFormat;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Fused dequantize-and-dot for GEMV (decode): {@code W[row, :] · x[0, K)} read straight from the stored codes, never
 * materializing the fp32 row; two accumulator chains, one fixed-order lane sum ({@link VectorWidth#sum}) per output. Blockwise formats sum a
 * block's {@code code value · x} products first and apply the block's absmax once per block.
 * Scalar reference: {@code Σ_k w.dequantize(row·K + k) · x[k]}.
 */
final class PanamaDot {

    private PanamaDot() {
    }

    /**
     * @param x        {@code (K)} at {@code xOff}
     * @param rowBuf   {@code (K)} scratch for formats without a fused path
     * @param scaleBuf {@code (BulkScales.CHUNK)} scratch for block scales
     */
    static float dot(VectorWidth vw, StoredWeight w, int row, float[] x, int xOff, float[] rowBuf, float[] scaleBuf) {
        return switch (w) {
            case DenseWeight d -> switch (d.format()) {
                case F32 -> f32(vw, d, row, x, xOff);
                case BF16 -> bf16(vw, d, row, x, xOff);
                case F16 -> {
                    if (vw.bits() == 512) yield DenseRuns512.f16Row(vw, d, row, x, xOff); // fused, as the runs
                    // auto-vectorized conversion (vcvtph2ps) into the row buffer, then the dense dot
                    PanamaDequant.dense(vw, d, (long) row * d.cols(), d.cols(), rowBuf, 0);
                    yield dense(vw, rowBuf, 0, x, xOff, d.cols());
                }
                default -> throw new AssertionError(d.format());
            };
            case FourBitWeight q -> q.cols() % q.blocksize() == 0 && q.blocksize() % (2 * vw.f().length()) == 0
                    ? fourBitAligned(vw, q, row, x, xOff, scaleBuf)
                    : fourBit(vw, q, row, x, xOff);
            case RowwiseInt8Weight q -> rowwiseInt8(vw, q, row, x, xOff);
            case BlockwiseInt8Weight q -> {
                int k = q.cols();
                PanamaDequant.blockwiseInt8(vw, q, (long) row * k, k, rowBuf, 0, scaleBuf);
                yield dense(vw, rowBuf, 0, x, xOff, k);
            }
        };
    }

    /** {@code a[aOff, +n) · x[xOff, +n)} over heap arrays. */
    static float dense(VectorWidth vw, float[] a, int aOff, float[] x, int xOff, int n) {
        VectorSpecies<Float> s = vw.f();
        int l = s.length(), j = 0;
        FloatVector acc0 = FloatVector.zero(s), acc1 = FloatVector.zero(s);
        for (; j + 2 * l <= n; j += 2 * l) {
            acc0 = FloatVector.fromArray(s, a, aOff + j).fma(FloatVector.fromArray(s, x, xOff + j), acc0);
            acc1 = FloatVector.fromArray(s, a, aOff + j + l).fma(FloatVector.fromArray(s, x, xOff + j + l), acc1);
        }
        for (; j + l <= n; j += l) acc0 = FloatVector.fromArray(s, a, aOff + j).fma(FloatVector.fromArray(s, x, xOff + j), acc0);
        float sum = vw.sum(acc0.add(acc1));
        for (; j < n; j++) sum += a[aOff + j] * x[xOff + j];
        return sum;
    }

    static float f32(VectorWidth vw, DenseWeight d, int row, float[] x, int xOff) {
        VectorSpecies<Float> s = vw.f();
        int l = s.length(), k = d.cols(), j = 0;
        MemorySegment seg = d.data();
        long base = (long) row * k * 4;
        FloatVector acc0 = FloatVector.zero(s), acc1 = FloatVector.zero(s);
        for (; j + 2 * l <= k; j += 2 * l) {
            long o = base + (long) j * 4;
            acc0 = FloatVector.fromMemorySegment(s, seg, o, VectorWidth.LE).fma(FloatVector.fromArray(s, x, xOff + j), acc0);
            acc1 = FloatVector.fromMemorySegment(s, seg, o + 4L * l, VectorWidth.LE)
                    .fma(FloatVector.fromArray(s, x, xOff + j + l), acc1);
        }
        for (; j + l <= k; j += l) {
            acc0 = FloatVector.fromMemorySegment(s, seg, base + (long) j * 4, VectorWidth.LE)
                    .fma(FloatVector.fromArray(s, x, xOff + j), acc0);
        }
        float sum = vw.sum(acc0.add(acc1));
        for (; j < k; j++) sum += seg.get(VectorWidth.F32_LE, base + (long) j * 4) * x[xOff + j];
        return sum;
    }

    /**
     * F32 or BF16 (or, at 512 bits, F16) rows {@code rowA + r} and {@code rowB + r} · x for {@code r < rows}, into
     * {@code out[outOff + 2r]} and {@code out[outOff + 2r + 1]}: per row the same products, accumulator chains and lane
     * sum as {@link #f32} / {@link #bf16} / {@link DenseRuns512#f16Row} (bit-identical outputs), with the x loads
     * shared by the two rows and the two lane sums done together ({@link VectorWidth#sum2}). Rows must have no tail ({@code K % 2L == 0}).
     *
     * <p>Each of the two runs of rows is one contiguous stretch of W, walked by one flat loop that switches rows when
     * its column index wraps. A loop per row (or a call per row pair) streams W from DRAM at ~0.6 of a plain read of
     * the same bytes on the Zen 5 box, the flat loop at ~0.8: the per-row loop exit costs ~200 cycles of lost
     * memory-level parallelism per row (bench/RESULTS.md, session 5).
     *
     * <p>At a row switch the loop only stores the row's two accumulator sums ({@code partial}); the lane sums run after
     * it, so the branch stays small and the loop keeps its registers.
     *
     * @param partial {@code (2 · rows, lanes)} scratch: the accumulators of row {@code rowA + r}, then of {@code rowB + r}
     * @param out     {@code (2 · rows)} at {@code outOff}: row {@code rowA + r}, then row {@code rowB + r}
     */
    static void denseRuns(VectorWidth vw, DenseWeight d, int rowA, int rowB, int rows, float[] x, int xOff,
                          float[] partial, float[] out, int outOff) {
        boolean bf16 = d.format() == WeightFormat.BF16;
        if (vw.bits() == 512) { // constant species: see DenseRuns512 for why
            switch (d.format()) {
                case BF16 -> DenseRuns512.bf16(d, rowA, rowB, rows, x, xOff, partial);
                case F16 -> DenseRuns512.f16(d, rowA, rowB, rows, x, xOff, partial);
                default -> DenseRuns512.f32(d, rowA, rowB, rows, x, xOff, partial);
            }
        } else if (bf16) {
            bf16Runs(vw, d, rowA, rowB, rows, x, xOff, partial);
        } else {
            f32Runs(vw, d, rowA, rowB, rows, x, xOff, partial);
        }
        VectorSpecies<Float> s = vw.f();
        int l = s.length();
        for (int r = 0; r < rows; r++) {
            vw.sum2(FloatVector.fromArray(s, partial, 2 * r * l), FloatVector.fromArray(s, partial, (2 * r + 1) * l),
                    out, outOff + 2 * r);
        }
    }

    /**
     * F32 or BF16 (or, at 512 bits, F16) rows in four runs of {@code rows} rows, {@code gap} rows apart: row
     * {@code rowA + u·gap + r} · x into {@code out[outOff + 4r + u]} for {@code u < 4}, {@code r < rows}
     * ({@code gap >= rows}). Per row the same products, accumulator chains and lane sum as {@link #f32} / {@link #bf16}
     * / {@link DenseRuns512#f16Row} (bit-identical outputs), as {@link #denseRuns} does for two runs.
     *
     * <p>Why four: each run is its own sequential stream, and on the Zen 5 box W streamed from DRAM faster with four
     * per thread than with two (alternated in one JVM, 2 threads: F32 3072→768 1.41–1.46×, 768→3072 1.03–1.12×;
     * bench/RESULTS.md, session 10) — more streams keep more of the hardware prefetchers' lines in flight.
     *
     * @param partial {@code (4 · rows, lanes)} scratch: the accumulator sum of row {@code rowA + u·gap + r} at
     *                {@code (4r + u) · lanes}
     * @param out     {@code (4 · rows)} at {@code outOff}
     */
    static void denseQuads(VectorWidth vw, DenseWeight d, int rowA, int gap, int rows, float[] x, int xOff,
                           float[] partial, float[] out, int outOff) {
        boolean bf16 = d.format() == WeightFormat.BF16;
        if (vw.bits() == 512) { // constant species: see DenseRuns512 for why
            switch (d.format()) {
                case BF16 -> DenseRuns512.bf16Quads(d, rowA, gap, rows, x, xOff, partial);
                case F16 -> DenseRuns512.f16Quads(d, rowA, gap, rows, x, xOff, partial);
                default -> DenseRuns512.f32Quads(d, rowA, gap, rows, x, xOff, partial);
            }
        } else {
            quadRuns(vw, d, bf16, rowA, gap, rows, x, xOff, partial);
        }
        VectorSpecies<Float> s = vw.f();
        int l = s.length();
        for (int i = 0; i < 4 * rows; i += 2) {
            vw.sum2(FloatVector.fromArray(s, partial, i * l), FloatVector.fromArray(s, partial, (i + 1) * l), out,
                    outOff + i);
        }
    }

    /** {@link #denseQuads}' loop at any width: each row's accumulator sum into {@code partial}. */
    private static void quadRuns(VectorWidth vw, DenseWeight d, boolean bf16, int rowA, int gap, int rows, float[] x,
                                 int xOff, float[] partial) {
        VectorSpecies<Float> s = vw.f();
        int l = s.length(), k = d.cols(), j = 0, o = 0, bytes = bf16 ? 2 : 4;
        MemorySegment seg = d.data();
        FloatVector a0 = FloatVector.zero(s), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, e0 = a0, e1 = a0;
        long g = (long) gap * k * bytes, p = (long) rowA * k * bytes, end = p + (long) rows * k * bytes;
        long half = (long) l * bytes; // bytes of one vector of weights
        for (; p < end; p += 2 * half) {
            FloatVector x0 = FloatVector.fromArray(s, x, xOff + j), x1 = FloatVector.fromArray(s, x, xOff + j + l);
            a0 = load(vw, seg, p, bf16).fma(x0, a0);
            a1 = load(vw, seg, p + half, bf16).fma(x1, a1);
            b0 = load(vw, seg, p + g, bf16).fma(x0, b0);
            b1 = load(vw, seg, p + g + half, bf16).fma(x1, b1);
            c0 = load(vw, seg, p + 2 * g, bf16).fma(x0, c0);
            c1 = load(vw, seg, p + 2 * g + half, bf16).fma(x1, c1);
            e0 = load(vw, seg, p + 3 * g, bf16).fma(x0, e0);
            e1 = load(vw, seg, p + 3 * g + half, bf16).fma(x1, e1);
            j += 2 * l;
            if (j == k) { // the end of a row in all four runs
                a0.add(a1).intoArray(partial, o);
                b0.add(b1).intoArray(partial, o + l);
                c0.add(c1).intoArray(partial, o + 2 * l);
                e0.add(e1).intoArray(partial, o + 3 * l);
                o += 4 * l;
                j = 0;
                a0 = a1 = b0 = b1 = c0 = c1 = e0 = e1 = FloatVector.zero(s);
            }
        }
    }

    /** One vector of F32 or BF16 weights at {@code byteOff}, as floats. */
    private static FloatVector load(VectorWidth vw, MemorySegment seg, long byteOff, boolean bf16) {
        return bf16 ? vw.bf16(seg, byteOff) : FloatVector.fromMemorySegment(vw.f(), seg, byteOff, VectorWidth.LE);
    }

    /** {@link #denseRuns}' loop for F32 rows: each row's accumulator sum into {@code partial}. */
    private static void f32Runs(VectorWidth vw, DenseWeight d, int rowA, int rowB, int rows, float[] x, int xOff,
                                float[] partial) {
        VectorSpecies<Float> s = vw.f();
        int l = s.length(), k = d.cols(), j = 0, o = 0;
        MemorySegment seg = d.data();
        FloatVector a0 = FloatVector.zero(s), a1 = a0, c0 = a0, c1 = a0;
        long p = (long) rowA * k * 4, q = (long) rowB * k * 4, end = p + (long) rows * k * 4;
        for (; p < end; p += 8L * l, q += 8L * l) {
            FloatVector x0 = FloatVector.fromArray(s, x, xOff + j), x1 = FloatVector.fromArray(s, x, xOff + j + l);
            a0 = FloatVector.fromMemorySegment(s, seg, p, VectorWidth.LE).fma(x0, a0);
            a1 = FloatVector.fromMemorySegment(s, seg, p + 4L * l, VectorWidth.LE).fma(x1, a1);
            c0 = FloatVector.fromMemorySegment(s, seg, q, VectorWidth.LE).fma(x0, c0);
            c1 = FloatVector.fromMemorySegment(s, seg, q + 4L * l, VectorWidth.LE).fma(x1, c1);
            j += 2 * l;
            if (j == k) { // the end of a row in both runs
                a0.add(a1).intoArray(partial, o);
                c0.add(c1).intoArray(partial, o + l);
                o += 2 * l;
                j = 0;
                a0 = a1 = c0 = c1 = FloatVector.zero(s);
            }
        }
    }

    /** {@link #denseRuns}' loop for BF16 rows: each row's accumulator sum into {@code partial}. */
    private static void bf16Runs(VectorWidth vw, DenseWeight d, int rowA, int rowB, int rows, float[] x, int xOff,
                                 float[] partial) {
        VectorSpecies<Float> s = vw.f();
        int l = s.length(), k = d.cols(), j = 0, o = 0;
        MemorySegment seg = d.data();
        FloatVector a0 = FloatVector.zero(s), a1 = a0, c0 = a0, c1 = a0;
        long p = (long) rowA * k * 2, q = (long) rowB * k * 2, end = p + (long) rows * k * 2;
        for (; p < end; p += 4L * l, q += 4L * l) {
            FloatVector x0 = FloatVector.fromArray(s, x, xOff + j), x1 = FloatVector.fromArray(s, x, xOff + j + l);
            a0 = vw.bf16(seg, p).fma(x0, a0);
            a1 = vw.bf16(seg, p + 2L * l).fma(x1, a1);
            c0 = vw.bf16(seg, q).fma(x0, c0);
            c1 = vw.bf16(seg, q + 2L * l).fma(x1, c1);
            j += 2 * l;
            if (j == k) { // the end of a row in both runs
                a0.add(a1).intoArray(partial, o);
                c0.add(c1).intoArray(partial, o + l);
                o += 2 * l;
                j = 0;
                a0 = a1 = c0 = c1 = FloatVector.zero(s);
            }
        }
    }

    /**
     * Whether {@link #denseRuns} takes this weight: F32 or BF16 (and F16 at 512 bits, {@link DenseRuns512#f16Row})
     * with whole double vectors per row.
     */
    static boolean densePairs(VectorWidth vw, StoredWeight w) {
        return w instanceof DenseWeight d && (d.format() == WeightFormat.F32 || d.format() == WeightFormat.BF16
                || d.format() == WeightFormat.F16 && vw.bits() == 512) && d.cols() % (2 * vw.f().length()) == 0;
    }

    static float bf16(VectorWidth vw, DenseWeight d, int row, float[] x, int xOff) {
        VectorSpecies<Float> s = vw.f();
        int l = s.length(), k = d.cols(), j = 0;
        MemorySegment seg = d.data();
        long start = (long) row * k;
        FloatVector acc0 = FloatVector.zero(s), acc1 = FloatVector.zero(s);
        for (; j + 2 * l <= k; j += 2 * l) {
            long o = (start + j) * 2;
            FloatVector w0 = vw.bf16(seg, o), w1 = vw.bf16(seg, o + 2L * l);
            acc0 = w0.fma(FloatVector.fromArray(s, x, xOff + j), acc0);
            acc1 = w1.fma(FloatVector.fromArray(s, x, xOff + j + l), acc1);
        }
        float sum = vw.sum(acc0.add(acc1));
        for (; j < k; j++) sum += d.get(start + j) * x[xOff + j];
        return sum;
    }

    /**
     * The common case: whole blocks per row ({@code K % blocksize == 0}) and whole double vectors per block. Per
     * block: {@code blocksize / 2L} steps of (2 nibble words → 2 code vectors → 2 table lookups → 2 FMAs into the
     * block's accumulators), then one FMA by the block's absmax; the scales of the row are fetched up front.
     */
    static float fourBitAligned(VectorWidth vw, FourBitWeight q, int row, float[] x, int xOff, float[] scaleBuf) {
        VectorSpecies<Float> s = vw.f();
        int l = s.length(), k = q.cols(), bs = q.blocksize(), blocks = k / bs;
        float[] table = q.codeTable();
        FloatVector t0 = PanamaDequant.part(vw, table, 0).reinterpretAsFloats(),
                t1 = PanamaDequant.part(vw, table, 1).reinterpretAsFloats(),
                t2 = PanamaDequant.part(vw, table, 2).reinterpretAsFloats(),
                t3 = PanamaDequant.part(vw, table, 3).reinterpretAsFloats();
        MemorySegment packed = q.packed();
        long byteBase = (long) row * k >>> 1; // row start is even: K is a multiple of the (even) blocksize
        int rowBlock0 = (int) ((long) row * blocks);
        FloatVector acc0 = FloatVector.zero(s), acc1 = FloatVector.zero(s);
        for (int c0 = 0; c0 < blocks; c0 += BulkScales.CHUNK) {
            int count = Math.min(BulkScales.CHUNK, blocks - c0);
            BulkScales.absmax(q.scales(), rowBlock0 + c0, count, scaleBuf, 0, vw.bits() == 512);
            for (int bi = 0; bi < count; bi++) {
                // the block's table times its absmax: a lookup yields the dequantized value itself (same rounding)
                float absmax = scaleBuf[bi];
                IntVector s0 = t0.mul(absmax).reinterpretAsInts(), s1 = t1.mul(absmax).reinterpretAsInts(),
                        s2 = t2.mul(absmax).reinterpretAsInts(), s3 = t3.mul(absmax).reinterpretAsInts();
                int e0 = (c0 + bi) * bs, e1 = e0 + bs; // element range within the row
                long byteOff = byteBase + (e0 >>> 1);
                for (int e = e0; e < e1; e += 2 * l, byteOff += l) {
                    FloatVector w0 = vw.lookup16(vw.nibbles(packed, byteOff), s0, s1, s2, s3);
                    FloatVector w1 = vw.lookup16(vw.nibbles(packed, byteOff + (l >>> 1)), s0, s1, s2, s3);
                    acc0 = w0.fma(FloatVector.fromArray(s, x, xOff + e), acc0);
                    acc1 = w1.fma(FloatVector.fromArray(s, x, xOff + e + l), acc1);
                }
            }
        }
        return vw.sum(acc0.add(acc1));
    }

    /** Any layout: blocks straddling rows, rows starting on an odd nibble, partial vectors; scalar at the edges. */
    static float fourBit(VectorWidth vw, FourBitWeight q, int row, float[] x, int xOff) {
        VectorSpecies<Float> s = vw.f();
        int l = s.length(), k = q.cols(), bs = q.blocksize();
        float[] table = q.codeTable();
        IntVector t0 = PanamaDequant.part(vw, table, 0), t1 = PanamaDequant.part(vw, table, 1),
                t2 = PanamaDequant.part(vw, table, 2), t3 = PanamaDequant.part(vw, table, 3);
        MemorySegment packed = q.packed();
        BlockScales scales = q.scales();
        long start = (long) row * k, e = start, end = start + k;
        FloatVector acc = FloatVector.zero(s);
        float tail = 0f;
        while (e < end) {
            int b = (int) (e / bs);
            long pieceEnd = Math.min(end, (long) (b + 1) * bs);
            float absmax = scales.absmax(b);
            float ptail = 0f;
            if ((e & 1) != 0) {
                ptail += table[q.code(e)] * x[xOff + (int) (e - start)];
                e++;
            }
            FloatVector b0 = FloatVector.zero(s), b1 = FloatVector.zero(s);
            for (; e + 2 * l <= pieceEnd; e += 2 * l) {
                int xo = xOff + (int) (e - start);
                FloatVector w0 = vw.lookup16(vw.nibbles(packed, e >>> 1), t0, t1, t2, t3);
                FloatVector w1 = vw.lookup16(vw.nibbles(packed, (e + l) >>> 1), t0, t1, t2, t3);
                b0 = w0.fma(FloatVector.fromArray(s, x, xo), b0);
                b1 = w1.fma(FloatVector.fromArray(s, x, xo + l), b1);
            }
            for (; e + l <= pieceEnd; e += l) {
                FloatVector w0 = vw.lookup16(vw.nibbles(packed, e >>> 1), t0, t1, t2, t3);
                b0 = w0.fma(FloatVector.fromArray(s, x, xOff + (int) (e - start)), b0);
            }
            for (; e < pieceEnd; e++) ptail += table[q.code(e)] * x[xOff + (int) (e - start)];
            acc = b0.add(b1).fma(FloatVector.broadcast(s, absmax), acc);
            tail += ptail * absmax;
        }
        return vw.sum(acc) + tail;
    }

    static float rowwiseInt8(VectorWidth vw, RowwiseInt8Weight q, int row, float[] x, int xOff) {
        VectorSpecies<Float> s = vw.f();
        int l = s.length(), k = q.cols(), j = 0;
        MemorySegment cb = q.cb();
        long start = (long) row * k;
        FloatVector acc0 = FloatVector.zero(s), acc1 = FloatVector.zero(s);
        for (; j + 2 * l <= k; j += 2 * l) {
            acc0 = vw.s8(cb, start + j).fma(FloatVector.fromArray(s, x, xOff + j), acc0);
            acc1 = vw.s8(cb, start + j + l).fma(FloatVector.fromArray(s, x, xOff + j + l), acc1);
        }
        float sum = vw.sum(acc0.add(acc1));
        for (; j < k; j++) sum += cb.get(ValueLayout.JAVA_BYTE, start + j) * x[xOff + j];
        return sum * q.rowScale(row);
    }
}
