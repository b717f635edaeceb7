package dev.qlora4j.quant.kernel;

import dev.qlora4j.quant.weight.BlockwiseInt8Weight;
import dev.qlora4j.quant.weight.DenseWeight;
import dev.qlora4j.quant.weight.FourBitWeight;
import dev.qlora4j.quant.weight.RowwiseInt8Weight;
import dev.qlora4j.quant.weight.StoredWeight;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector dequantization of a range of the row-major flattened weight into fp32, per format; bit-identical to
 * {@link StoredWeight#dequantize} (the scalar reference): every element is {@code code value · scale} rounded once,
 * with the scale computed by the same scalar expression.
 */
final class PanamaDequant {

    private PanamaDequant() {
    }

    /**
     * {@code dst[off .. off + n) = W.flat[start .. start + n)} as float32.
     *
     * @param scaleBuf {@code (BulkScales.CHUNK)} scratch for the block scales
     */
    static void dequantize(VectorWidth vw, StoredWeight w, long start, int n, float[] dst, int off, float[] scaleBuf) {
        switch (w) {
            case DenseWeight d -> dense(vw, d, start, n, dst, off);
            case FourBitWeight q -> fourBit(vw, q, start, n, dst, off, scaleBuf);
            case BlockwiseInt8Weight q -> blockwiseInt8(vw, q, start, n, dst, off, scaleBuf);
            case RowwiseInt8Weight q -> rowwiseInt8(vw, q, start, n, dst, off);
        }
    }

    static void dense(VectorWidth vw, DenseWeight d, long start, int n, float[] dst, int off) {
        MemorySegment seg = d.data();
        switch (d.format()) {
            case F32 -> MemorySegment.copy(seg, VectorWidth.F32_LE, start * 4, dst, off, n);
            case BF16 -> {
                int l = vw.f().length(), j = 0;
                for (; j + l <= n; j += l) vw.bf16(seg, (start + j) * 2).intoArray(dst, off + j);
                for (; j < n; j++) dst[off + j] = d.get(start + j);
            }
            case F16 -> {
                // a plain loop: C2 auto-vectorizes Float.float16ToFloat to vcvtph2ps (F16C), ~3x the Vector API
                // Vector API bit-twiddling it replaced on AVX2 (measured by DequantBench)
                long b = start * 2;
                for (int j = 0; j < n; j++) dst[off + j] = Float.float16ToFloat(seg.get(VectorWidth.I16_LE, b + 2L * j));
            }
            default -> throw new AssertionError(d.format());
        }
    }

    static void fourBit(VectorWidth vw, FourBitWeight q, long start, int n, float[] dst, int off, float[] scaleBuf) {
        VectorSpecies<Float> fs = vw.f();
        int l = fs.length();
        float[] table = q.codeTable();
        IntVector t0 = part(vw, table, 0), t1 = part(vw, table, 1), t2 = part(vw, table, 2), t3 = part(vw, table, 3);
        MemorySegment packed = q.packed();
        int bs = q.blocksize();
        long e = start, end = start + n;
        int b = (int) (start / bs), bufStart = b, bufEnd = b; // scaleBuf (CHUNK) = absmax of blocks [bufStart, bufEnd)
        long blockEnd = (long) b * bs;
        while (e < end) {
            if (b == bufEnd) {
                int count = (int) Math.min(BulkScales.CHUNK, (end - 1) / bs + 1 - b);
                BulkScales.absmax(q.scales(), b, count, scaleBuf, 0, vw.bits() == 512);
                bufStart = b;
                bufEnd = b + count;
            }
            float absmax = scaleBuf[b - bufStart];
            blockEnd += bs;
            long pieceEnd = Math.min(end, blockEnd);
            if ((e & 1) != 0) { // odd element: low nibble of a byte whose high nibble is not ours
                dst[off + (int) (e - start)] = table[q.code(e)] * absmax;
                e++;
            }
            FloatVector scale = FloatVector.broadcast(fs, absmax);
            for (; e + l <= pieceEnd; e += l) {
                vw.lookup16(vw.nibbles(packed, e >>> 1), t0, t1, t2, t3).mul(scale).intoArray(dst, off + (int) (e - start));
            }
            for (; e < pieceEnd; e++) dst[off + (int) (e - start)] = table[q.code(e)] * absmax;
            b++;
        }
    }

    /** Part {@code p} of a 16-float table as int bits ({@code 16 / L} parts; unused parts are zero). */
    static IntVector part(VectorWidth vw, float[] table16, int p) {
        int l = vw.f().length();
        return p * l < 16 ? FloatVector.fromArray(vw.f(), table16, p * l).reinterpretAsInts() : IntVector.zero(vw.i());
    }

    static void blockwiseInt8(VectorWidth vw, BlockwiseInt8Weight q, long start, int n, float[] dst, int off,
                              float[] scaleBuf) {
        float[] map = q.map();
        MemorySegment codes = q.codes();
        int bs = q.blocksize();
        long e = start, end = start + n;
        int b = (int) (start / bs), bufStart = b, bufEnd = b; // scaleBuf (CHUNK) = absmax of blocks [bufStart, bufEnd)
        long blockEnd = (long) b * bs;
        boolean vector = vw.bits() == 512 && bs % Int8Blockwise512.L == 0; // 16-element steps inside blocks
        while (e < end) {
            if (b == bufEnd) {
                int count = (int) Math.min(BulkScales.CHUNK, (end - 1) / bs + 1 - b);
                BulkScales.absmax(q.scales(), b, count, scaleBuf, 0, vw.bits() == 512);
                bufStart = b;
                bufEnd = b + count;
            }
            float absmax = scaleBuf[b - bufStart];
            blockEnd += bs;
            long pieceEnd = Math.min(end, blockEnd);
            int o = off + (int) (e - start);
            if (vector && (e & 15) == 0) { // whole 16-element steps up to the last buffered block, then the scalar tail
                long vecEnd = e + (Math.min(end, (long) bufEnd * bs) - e) / Int8Blockwise512.L * Int8Blockwise512.L;
                if (vecEnd > e) {
                    Int8Blockwise512.steps(codes, e, (int) (vecEnd - e), bs, map, scaleBuf, bufStart, dst, o);
                    o += (int) (vecEnd - e);
                    e = vecEnd;
                    b = (int) ((e - 1) / bs); // the scalar tail finishes the block the steps ended in
                    blockEnd = (long) (b + 1) * bs;
                    absmax = scaleBuf[b - bufStart];
                    pieceEnd = Math.min(end, blockEnd);
                }
            }
            for (; e < pieceEnd; e++, o++) dst[o] = map[codes.get(ValueLayout.JAVA_BYTE, e) & 0xff] * absmax;
            b++;
        }
    }

    static void rowwiseInt8(VectorWidth vw, RowwiseInt8Weight q, long start, int n, float[] dst, int off) {
        int l = vw.f().length(), cols = q.cols();
        MemorySegment cb = q.cb();
        long e = start, end = start + n;
        while (e < end) {
            int r = (int) (e / cols);
            long pieceEnd = Math.min(end, (long) (r + 1) * cols);
            float scale = q.rowScale(r);
            FloatVector sv = FloatVector.broadcast(vw.f(), scale);
            for (; e + l <= pieceEnd; e += l) vw.s8(cb, e).mul(sv).intoArray(dst, off + (int) (e - start));
            for (; e < pieceEnd; e++) dst[off + (int) (e - start)] = cb.get(ValueLayout.JAVA_BYTE, e) * scale;
        }
    }
}
