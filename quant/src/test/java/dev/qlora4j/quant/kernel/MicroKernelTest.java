package dev.qlora4j.quant.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The register-blocked kernels ({@link MicroKernel#kernel5x2}, {@link MicroKernel#kernel8x2},
 * {@link MicroKernel#kernel12x2} and the unpacked {@link MicroKernel#kernel8x2u}) at every vector width against the
 * scalar {@link MicroKernel#reference} and {@link MicroKernel#referenceUnpacked}, accumulating into C and starting
 * from an init row, with a C row stride wider than the sliver (the values outside the block must stay untouched), and the packers against their
 * index definitions.
 */
class MicroKernelTest {

    @ParameterizedTest(name = "{0} bits")
    @ValueSource(ints = {128, 256, 512})
    void kernelsMatchScalarReference(int bits) {
        VectorWidth vw = VectorWidth.of(bits);
        int nr = MicroKernel.nr(vw);
        Random rnd = new Random(7L + bits);
        for (int mr : new int[] {MicroKernel.MR_5, MicroKernel.MR_8, MicroKernel.MR_12}) {
            for (int kc : new int[] {1, 7, 256}) {
                for (boolean withInit : new boolean[] {false, true}) {
                    int aOff = 3, pOff = 5, cOff = 2, ldc = nr + 9, initOff = 1;
                    float[] ap = TestWeights.randomArray(aOff + kc * mr, rnd); // (kc, mr) packed A
                    float[] p = TestWeights.randomArray(pOff + kc * nr, rnd); // (kc, NR) panel
                    float[] c = TestWeights.randomArray(cOff + mr * ldc, rnd); // (mr, ldc) C
                    float[] init = withInit ? TestWeights.randomArray(initOff + nr, rnd) : null; // (NR)
                    float[] want = c.clone();
                    MicroKernel.reference(mr, nr, ap, aOff, p, pOff, kc, want, cOff, ldc, init, initOff);
                    float[] got = c.clone();
                    MicroKernel.kernel(vw, mr, ap, aOff, p, pOff, kc, got, cOff, ldc, init, initOff);
                    int m = mr;
                    assertBlock("mr " + mr + " kc " + kc + " init " + withInit, c, want, got, cOff, ldc, mr, nr,
                            init, initOff, (row, col, k) -> ap[aOff + k * m + row] * p[pOff + k * nr + col], kc);
                }
            }
        }
    }

    @ParameterizedTest(name = "{0} bits")
    @ValueSource(ints = {128, 256, 512})
    void unpackedKernelMatchesScalarReference(int bits) {
        VectorWidth vw = VectorWidth.of(bits);
        int nr = MicroKernel.nr(vw), mr = MicroKernel.MR_8;
        Random rnd = new Random(11L + bits);
        for (int kc : new int[] {1, 7, 300}) {
            for (boolean withInit : new boolean[] {false, true}) {
                int aOff = 3, lda = kc + 5, pOff = 5, cOff = 2, ldc = nr + 9, initOff = 1;
                float[] a = TestWeights.randomArray(aOff + mr * lda, rnd); // (8, lda) A in place
                float[] p = TestWeights.randomArray(pOff + kc * nr, rnd); // (kc, NR) panel
                float[] c = TestWeights.randomArray(cOff + mr * ldc, rnd); // (8, ldc) C
                float[] init = withInit ? TestWeights.randomArray(initOff + nr, rnd) : null; // (NR)
                float[] want = c.clone();
                MicroKernel.referenceUnpacked(nr, a, aOff, lda, p, pOff, kc, want, cOff, ldc, init, initOff);
                float[] got = c.clone();
                MicroKernel.kernel8x2u(vw, a, aOff, lda, p, pOff, kc, got, cOff, ldc, init, initOff);
                assertBlock("unpacked kc " + kc + " init " + withInit, c, want, got, cOff, ldc, mr, nr, init, initOff,
                        (row, col, k) -> a[aOff + row * lda + k] * p[pOff + k * nr + col], kc);
            }
        }
    }

    /** One product {@code A[row][k] · P[k][col]} of the block, as the test's layout stores it. */
    private interface Product {
        double at(int row, int col, int k);
    }

    /**
     * {@code got} against the scalar {@code want} inside the (mr, nr) block of C at {@code cOff} (tolerance scaled by
     * the sum of |terms|: the start value and the kc products), and bit-equal to {@code before} outside it.
     */
    private static void assertBlock(String label, float[] before, float[] want, float[] got, int cOff, int ldc, int mr,
                                    int nr, float[] init, int initOff, Product product, int kc) {
        for (int i = 0; i < before.length; i++) {
            int row = (i - cOff) / ldc, col = (i - cOff) % ldc;
            String what = label + " at C[" + row + "][" + col + "]";
            if (!(i >= cOff && row < mr && col < nr)) {
                assertEquals(before[i], got[i], 0f, what + " outside the block changed");
                continue;
            }
            double terms = init != null ? Math.abs(init[initOff + col]) : Math.abs(before[i]);
            for (int k = 0; k < kc; k++) terms += Math.abs(product.at(row, col, k));
            PanamaKernelsTest.check(want[i], got[i], terms, () -> what);
        }
    }

    @ParameterizedTest(name = "mr {0}")
    @ValueSource(ints = {MicroKernel.MR_5, MicroKernel.MR_8, MicroKernel.MR_12})
    void packersFollowTheirLayout(int mr) {
        Random rnd = new Random(mr);
        int m = 2 * mr + 3, k = 11, lda = k + 2, aOff = 4;
        float[] a = TestWeights.randomArray(aOff + m * lda, rnd); // (M, lda) A
        int blocks = (m + mr - 1) / mr;
        float[] ap = new float[blocks * k * mr]; // (blocks, K, mr)
        for (int b = 0; b < blocks; b++) MicroKernel.packA(mr, a, aOff, lda, b * mr, m, k, ap, b * k * mr);
        for (int b = 0; b < blocks; b++) {
            for (int kk = 0; kk < k; kk++) {
                for (int r = 0; r < mr; r++) {
                    int row = b * mr + r;
                    float want = row < m ? a[aOff + row * lda + kk] : 0f;
                    assertEquals(want, ap[(b * k + kk) * mr + r], 0f, "packA block " + b + " k " + kk + " r " + r);
                }
            }
        }
        // Aᵀ of a (rows = m, cols = lda): blocks over the columns
        int cols = lda, rows = m;
        int tBlocks = (cols + mr - 1) / mr;
        float[] apt = new float[tBlocks * rows * mr]; // (tBlocks, rows, mr)
        for (int b = 0; b < tBlocks; b++) MicroKernel.packAT(mr, a, aOff, lda, b * mr, cols, rows, apt, b * rows * mr);
        for (int b = 0; b < tBlocks; b++) {
            for (int i = 0; i < rows; i++) {
                for (int r = 0; r < mr; r++) {
                    int col = b * mr + r;
                    float want = col < cols ? a[aOff + i * lda + col] : 0f;
                    assertEquals(want, apt[(b * rows + i) * mr + r], 0f, "packAT block " + b + " row " + i + " r " + r);
                }
            }
        }
    }

    /** {@code -Dqlora.mr512} picks the 512-bit kernel's rows: 8 or 12, anything else is refused by name. */
    @Test
    void mr512FlagIsReadAndChecked() {
        String before = System.getProperty("qlora.mr512");
        try {
            System.setProperty("qlora.mr512", "8");
            assertEquals(MicroKernel.MR_8, MicroKernel.mr512());
            System.setProperty("qlora.mr512", " 12 ");
            assertEquals(MicroKernel.MR_12, MicroKernel.mr512());
            for (String bad : new String[] {"10", "twelve", ""}) {
                System.setProperty("qlora.mr512", bad);
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, MicroKernel::mr512);
                assertEquals(true, e.getMessage().contains("-Dqlora.mr512"), e.getMessage());
            }
            System.clearProperty("qlora.mr512");
            assertEquals(CpuVendor.intel() ? MicroKernel.MR_12 : MicroKernel.MR_8, MicroKernel.mr512());
        } finally {
            if (before == null) System.clearProperty("qlora.mr512");
            else System.setProperty("qlora.mr512", before);
        }
    }
}
