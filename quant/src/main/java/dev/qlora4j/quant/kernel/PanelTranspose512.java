package dev.qlora4j.quant.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The forward GEMM's panel packing at 512 bits: 16 dequantized rows of W, {@code rows (16, kc)}, go into a sliver of
 * the packed panel as {@code panel[base + c·nr + j] = rows[j·kc + c]} (the transpose), 16×16 at a time in registers:
 * four butterfly stages of two-source permutes ({@code vpermi2d}, 64 per 256 floats) instead of one scalar store per
 * float. Columns past the last whole 16 are copied one by one. Scalar reference: {@link #packScalar}; the copy is
 * exact, so both give the same panel bit for bit.
 */
final class PanelTranspose512 {

    private static final VectorSpecies<Integer> I = IntVector.SPECIES_512;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_512;
    static final int L = 16; // rows per call and lanes per vector
    // stage 8: vectors i and j = i + 8 with (i & 8) == 0; lanes l with (l & 8) == 0 come from i, the rest from j
    private static final IntVector LO8 =
            IntVector.fromArray(I, new int[]{0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23}, 0);
    private static final IntVector HI8 =
            IntVector.fromArray(I, new int[]{8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31}, 0);
    // stage 4: vectors i and j = i + 4 with (i & 4) == 0; lanes l with (l & 4) == 0 come from i, the rest from j
    private static final IntVector LO4 =
            IntVector.fromArray(I, new int[]{0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27}, 0);
    private static final IntVector HI4 =
            IntVector.fromArray(I, new int[]{4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31}, 0);
    // stage 2: vectors i and j = i + 2 with (i & 2) == 0; lanes l with (l & 2) == 0 come from i, the rest from j
    private static final IntVector LO2 =
            IntVector.fromArray(I, new int[]{0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29}, 0);
    private static final IntVector HI2 =
            IntVector.fromArray(I, new int[]{2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31}, 0);
    // stage 1: vectors i and j = i + 1 with (i & 1) == 0; lanes l with (l & 1) == 0 come from i, the rest from j
    private static final IntVector LO1 =
            IntVector.fromArray(I, new int[]{0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30}, 0);
    private static final IntVector HI1 =
            IntVector.fromArray(I, new int[]{1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31}, 0);

    private PanelTranspose512() {
    }

    /** {@code panel[base + c·nr + j] = rows[j·kc + c]} for {@code j < 16}, {@code c < kc}, float by float. */
    static void packScalar(float[] rows, int kc, float[] panel, int base, int nr) {
        PanelColumns.copy(rows, kc, panel, base, nr, L, 0);
    }

    /** As {@link #packScalar}, whole 16×16 tiles transposed in registers ({@code nr ≥ 16}). */
    static void pack(float[] rows, int kc, float[] panel, int base, int nr) {
        int whole = kc & ~(L - 1);
        for (int c0 = 0; c0 < whole; c0 += L) {
            // written out: sixteen live vectors, no arrays of vectors (they would not stay in registers)
            IntVector v0 = FloatVector.fromArray(F, rows, c0).reinterpretAsInts();
            IntVector v1 = FloatVector.fromArray(F, rows, 1 * kc + c0).reinterpretAsInts();
            IntVector v2 = FloatVector.fromArray(F, rows, 2 * kc + c0).reinterpretAsInts();
            IntVector v3 = FloatVector.fromArray(F, rows, 3 * kc + c0).reinterpretAsInts();
            IntVector v4 = FloatVector.fromArray(F, rows, 4 * kc + c0).reinterpretAsInts();
            IntVector v5 = FloatVector.fromArray(F, rows, 5 * kc + c0).reinterpretAsInts();
            IntVector v6 = FloatVector.fromArray(F, rows, 6 * kc + c0).reinterpretAsInts();
            IntVector v7 = FloatVector.fromArray(F, rows, 7 * kc + c0).reinterpretAsInts();
            IntVector v8 = FloatVector.fromArray(F, rows, 8 * kc + c0).reinterpretAsInts();
            IntVector v9 = FloatVector.fromArray(F, rows, 9 * kc + c0).reinterpretAsInts();
            IntVector v10 = FloatVector.fromArray(F, rows, 10 * kc + c0).reinterpretAsInts();
            IntVector v11 = FloatVector.fromArray(F, rows, 11 * kc + c0).reinterpretAsInts();
            IntVector v12 = FloatVector.fromArray(F, rows, 12 * kc + c0).reinterpretAsInts();
            IntVector v13 = FloatVector.fromArray(F, rows, 13 * kc + c0).reinterpretAsInts();
            IntVector v14 = FloatVector.fromArray(F, rows, 14 * kc + c0).reinterpretAsInts();
            IntVector v15 = FloatVector.fromArray(F, rows, 15 * kc + c0).reinterpretAsInts();
            IntVector t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15;
            t0 = LO8.selectFrom(v0, v8);
            t8 = HI8.selectFrom(v0, v8);
            t1 = LO8.selectFrom(v1, v9);
            t9 = HI8.selectFrom(v1, v9);
            t2 = LO8.selectFrom(v2, v10);
            t10 = HI8.selectFrom(v2, v10);
            t3 = LO8.selectFrom(v3, v11);
            t11 = HI8.selectFrom(v3, v11);
            t4 = LO8.selectFrom(v4, v12);
            t12 = HI8.selectFrom(v4, v12);
            t5 = LO8.selectFrom(v5, v13);
            t13 = HI8.selectFrom(v5, v13);
            t6 = LO8.selectFrom(v6, v14);
            t14 = HI8.selectFrom(v6, v14);
            t7 = LO8.selectFrom(v7, v15);
            t15 = HI8.selectFrom(v7, v15);
            v0 = t0; v1 = t1; v2 = t2; v3 = t3; v4 = t4; v5 = t5; v6 = t6; v7 = t7;
            v8 = t8; v9 = t9; v10 = t10; v11 = t11; v12 = t12; v13 = t13; v14 = t14; v15 = t15;
            t0 = LO4.selectFrom(v0, v4);
            t4 = HI4.selectFrom(v0, v4);
            t1 = LO4.selectFrom(v1, v5);
            t5 = HI4.selectFrom(v1, v5);
            t2 = LO4.selectFrom(v2, v6);
            t6 = HI4.selectFrom(v2, v6);
            t3 = LO4.selectFrom(v3, v7);
            t7 = HI4.selectFrom(v3, v7);
            t8 = LO4.selectFrom(v8, v12);
            t12 = HI4.selectFrom(v8, v12);
            t9 = LO4.selectFrom(v9, v13);
            t13 = HI4.selectFrom(v9, v13);
            t10 = LO4.selectFrom(v10, v14);
            t14 = HI4.selectFrom(v10, v14);
            t11 = LO4.selectFrom(v11, v15);
            t15 = HI4.selectFrom(v11, v15);
            v0 = t0; v1 = t1; v2 = t2; v3 = t3; v4 = t4; v5 = t5; v6 = t6; v7 = t7;
            v8 = t8; v9 = t9; v10 = t10; v11 = t11; v12 = t12; v13 = t13; v14 = t14; v15 = t15;
            t0 = LO2.selectFrom(v0, v2);
            t2 = HI2.selectFrom(v0, v2);
            t1 = LO2.selectFrom(v1, v3);
            t3 = HI2.selectFrom(v1, v3);
            t4 = LO2.selectFrom(v4, v6);
            t6 = HI2.selectFrom(v4, v6);
            t5 = LO2.selectFrom(v5, v7);
            t7 = HI2.selectFrom(v5, v7);
            t8 = LO2.selectFrom(v8, v10);
            t10 = HI2.selectFrom(v8, v10);
            t9 = LO2.selectFrom(v9, v11);
            t11 = HI2.selectFrom(v9, v11);
            t12 = LO2.selectFrom(v12, v14);
            t14 = HI2.selectFrom(v12, v14);
            t13 = LO2.selectFrom(v13, v15);
            t15 = HI2.selectFrom(v13, v15);
            v0 = t0; v1 = t1; v2 = t2; v3 = t3; v4 = t4; v5 = t5; v6 = t6; v7 = t7;
            v8 = t8; v9 = t9; v10 = t10; v11 = t11; v12 = t12; v13 = t13; v14 = t14; v15 = t15;
            t0 = LO1.selectFrom(v0, v1);
            t1 = HI1.selectFrom(v0, v1);
            t2 = LO1.selectFrom(v2, v3);
            t3 = HI1.selectFrom(v2, v3);
            t4 = LO1.selectFrom(v4, v5);
            t5 = HI1.selectFrom(v4, v5);
            t6 = LO1.selectFrom(v6, v7);
            t7 = HI1.selectFrom(v6, v7);
            t8 = LO1.selectFrom(v8, v9);
            t9 = HI1.selectFrom(v8, v9);
            t10 = LO1.selectFrom(v10, v11);
            t11 = HI1.selectFrom(v10, v11);
            t12 = LO1.selectFrom(v12, v13);
            t13 = HI1.selectFrom(v12, v13);
            t14 = LO1.selectFrom(v14, v15);
            t15 = HI1.selectFrom(v14, v15);
            v0 = t0; v1 = t1; v2 = t2; v3 = t3; v4 = t4; v5 = t5; v6 = t6; v7 = t7;
            v8 = t8; v9 = t9; v10 = t10; v11 = t11; v12 = t12; v13 = t13; v14 = t14; v15 = t15;
            v0.reinterpretAsFloats().intoArray(panel, base + (c0 + 0) * nr);
            v1.reinterpretAsFloats().intoArray(panel, base + (c0 + 1) * nr);
            v2.reinterpretAsFloats().intoArray(panel, base + (c0 + 2) * nr);
            v3.reinterpretAsFloats().intoArray(panel, base + (c0 + 3) * nr);
            v4.reinterpretAsFloats().intoArray(panel, base + (c0 + 4) * nr);
            v5.reinterpretAsFloats().intoArray(panel, base + (c0 + 5) * nr);
            v6.reinterpretAsFloats().intoArray(panel, base + (c0 + 6) * nr);
            v7.reinterpretAsFloats().intoArray(panel, base + (c0 + 7) * nr);
            v8.reinterpretAsFloats().intoArray(panel, base + (c0 + 8) * nr);
            v9.reinterpretAsFloats().intoArray(panel, base + (c0 + 9) * nr);
            v10.reinterpretAsFloats().intoArray(panel, base + (c0 + 10) * nr);
            v11.reinterpretAsFloats().intoArray(panel, base + (c0 + 11) * nr);
            v12.reinterpretAsFloats().intoArray(panel, base + (c0 + 12) * nr);
            v13.reinterpretAsFloats().intoArray(panel, base + (c0 + 13) * nr);
            v14.reinterpretAsFloats().intoArray(panel, base + (c0 + 14) * nr);
            v15.reinterpretAsFloats().intoArray(panel, base + (c0 + 15) * nr);
        }
        PanelColumns.copy(rows, kc, panel, base, nr, L, whole); // columns past the last whole tile
    }
}
