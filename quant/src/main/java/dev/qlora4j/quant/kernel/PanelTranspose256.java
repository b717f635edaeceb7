package dev.qlora4j.quant.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * The forward GEMM's panel packing at 256 bits (AVX2): 8 dequantized rows of W, {@code rows (8, kc)}, go into half
 * a sliver of the packed panel as {@code panel[base + c·nr + j] = rows[j·kc + c]} (the transpose), 8×8 at a time in
 * registers: three butterfly stages, each pair of vectors exchanging half their lanes with one single-source permute
 * per vector and two blends (24 permutes and 24 blends per 64 floats; AVX2 has no two-source permute), then eight
 * whole-vector stores instead of 64 scalar stores a cache line apart. Columns past the last whole 8 are copied one by
 * one. Scalar reference: {@link #packScalar}; the copy is exact, so both give the same panel bit for bit.
 *
 * <p>Measured on Zen 3 (bench/RESULTS.md "Session 25"): in-JVM A/B of the GEMM forward against the scatter, M = 512,
 * 2 threads, NF4+DQ 1.04–1.17×, F32 1.08×; a stand-alone loop packed 0.29 ns per float against 0.56–1.2.
 */
final class PanelTranspose256 {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
    static final int L = 8; // rows per call and lanes per vector
    // stage s (4, 2, 1): vectors i and i + s exchange lanes; SWAP_s moves lane l to lane l ^ s
    private static final VectorShuffle<Float> SWAP4 = VectorShuffle.fromValues(F, 4, 5, 6, 7, 0, 1, 2, 3);
    private static final VectorShuffle<Float> SWAP2 = VectorShuffle.fromValues(F, 2, 3, 0, 1, 6, 7, 4, 5);
    private static final VectorShuffle<Float> SWAP1 = VectorShuffle.fromValues(F, 1, 0, 3, 2, 5, 4, 7, 6);
    // the lanes l with (l & s) != 0: taken from the second vector of the pair in the low result
    private static final VectorMask<Float> HIGH4 = VectorMask.fromLong(F, 0xF0);
    private static final VectorMask<Float> HIGH2 = VectorMask.fromLong(F, 0xCC);
    private static final VectorMask<Float> HIGH1 = VectorMask.fromLong(F, 0xAA);

    private PanelTranspose256() {
    }

    /** {@code panel[base + c·nr + j] = rows[j·kc + c]} for {@code j < 8}, {@code c < kc}, float by float. */
    static void packScalar(float[] rows, int kc, float[] panel, int base, int nr) {
        PanelColumns.copy(rows, kc, panel, base, nr, L, 0);
    }

    /** As {@link #packScalar}, whole 8×8 tiles transposed in registers ({@code nr ≥ 8}). */
    static void pack(float[] rows, int kc, float[] panel, int base, int nr) {
        int whole = kc & ~(L - 1);
        for (int c0 = 0; c0 < whole; c0 += L) {
            // written out: eight live vectors, no arrays of vectors (they would not stay in registers)
            FloatVector v0 = FloatVector.fromArray(F, rows, c0), v1 = FloatVector.fromArray(F, rows, kc + c0);
            FloatVector v2 = FloatVector.fromArray(F, rows, 2 * kc + c0), v3 = FloatVector.fromArray(F, rows, 3 * kc + c0);
            FloatVector v4 = FloatVector.fromArray(F, rows, 4 * kc + c0), v5 = FloatVector.fromArray(F, rows, 5 * kc + c0);
            FloatVector v6 = FloatVector.fromArray(F, rows, 6 * kc + c0), v7 = FloatVector.fromArray(F, rows, 7 * kc + c0);
            FloatVector t0, t1, t2, t3, t4, t5, t6, t7;
            // stage 4: pairs (i, i + 4)
            t0 = v0.blend(v4.rearrange(SWAP4), HIGH4);
            t4 = v0.rearrange(SWAP4).blend(v4, HIGH4);
            t1 = v1.blend(v5.rearrange(SWAP4), HIGH4);
            t5 = v1.rearrange(SWAP4).blend(v5, HIGH4);
            t2 = v2.blend(v6.rearrange(SWAP4), HIGH4);
            t6 = v2.rearrange(SWAP4).blend(v6, HIGH4);
            t3 = v3.blend(v7.rearrange(SWAP4), HIGH4);
            t7 = v3.rearrange(SWAP4).blend(v7, HIGH4);
            // stage 2: pairs (i, i + 2)
            v0 = t0.blend(t2.rearrange(SWAP2), HIGH2);
            v2 = t0.rearrange(SWAP2).blend(t2, HIGH2);
            v1 = t1.blend(t3.rearrange(SWAP2), HIGH2);
            v3 = t1.rearrange(SWAP2).blend(t3, HIGH2);
            v4 = t4.blend(t6.rearrange(SWAP2), HIGH2);
            v6 = t4.rearrange(SWAP2).blend(t6, HIGH2);
            v5 = t5.blend(t7.rearrange(SWAP2), HIGH2);
            v7 = t5.rearrange(SWAP2).blend(t7, HIGH2);
            // stage 1: pairs (i, i + 1); now vector c holds column c0 + c, lane j = row j
            t0 = v0.blend(v1.rearrange(SWAP1), HIGH1);
            t1 = v0.rearrange(SWAP1).blend(v1, HIGH1);
            t2 = v2.blend(v3.rearrange(SWAP1), HIGH1);
            t3 = v2.rearrange(SWAP1).blend(v3, HIGH1);
            t4 = v4.blend(v5.rearrange(SWAP1), HIGH1);
            t5 = v4.rearrange(SWAP1).blend(v5, HIGH1);
            t6 = v6.blend(v7.rearrange(SWAP1), HIGH1);
            t7 = v6.rearrange(SWAP1).blend(v7, HIGH1);
            int d = base + c0 * nr;
            t0.intoArray(panel, d);
            t1.intoArray(panel, d + nr);
            t2.intoArray(panel, d + 2 * nr);
            t3.intoArray(panel, d + 3 * nr);
            t4.intoArray(panel, d + 4 * nr);
            t5.intoArray(panel, d + 5 * nr);
            t6.intoArray(panel, d + 6 * nr);
            t7.intoArray(panel, d + 7 * nr);
        }
        PanelColumns.copy(rows, kc, panel, base, nr, L, whole); // columns past the last whole tile
    }
}
