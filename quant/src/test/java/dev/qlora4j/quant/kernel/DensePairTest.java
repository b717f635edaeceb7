package dev.qlora4j.quant.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qlora4j.quant.kernel.TestWeights.Kind;
import dev.qlora4j.quant.weight.DenseWeight;
import java.util.Random;
import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The paired dense GEMV rows ({@link PanamaDot#denseRuns}, what {@code PanamaKernels.matmul} runs for {@code M = 1}
 * on F32/BF16 weights, and F16 at 512 bits) bit for bit against the one-row kernels {@link PanamaDot#f32} / {@link PanamaDot#bf16}, the
 * two-vector lane sum {@link VectorWidth#sum2} bit for bit against {@link VectorWidth#sum}, the four-run rows
 * ({@link PanamaDot#denseQuads}) bit for bit against the one-row kernels, and the whole GEMV
 * against {@link ScalarKernels} within fp32 reassociation — at every vector width. (F16 decode GEMVs at 512 bits
 * run {@link F16Gemv512}; there the GEMV is checked against that path's one-row kernel.)
 */
class DensePairTest {

    @ParameterizedTest(name = "{0} bits")
    @ValueSource(ints = {128, 256, 512})
    void sum2IsTwoSums(int bits) {
        VectorWidth vw = VectorWidth.of(bits);
        Random rnd = new Random(bits);
        float[] out = new float[3];
        for (int t = 0; t < 200; t++) {
            float[] a = new float[vw.f().length()], b = new float[a.length];
            for (int i = 0; i < a.length; i++) {
                a[i] = (float) rnd.nextGaussian() * (1 << rnd.nextInt(20));
                b[i] = (float) rnd.nextGaussian() * (1 << rnd.nextInt(20));
            }
            FloatVector va = FloatVector.fromArray(vw.f(), a, 0), vb = FloatVector.fromArray(vw.f(), b, 0);
            vw.sum2(va, vb, out, 1);
            assertEquals(Float.floatToRawIntBits(vw.sum(va)), Float.floatToRawIntBits(out[1]), "a, trial " + t);
            assertEquals(Float.floatToRawIntBits(vw.sum(vb)), Float.floatToRawIntBits(out[2]), "b, trial " + t);
        }
    }

    @ParameterizedTest(name = "{0} bits")
    @ValueSource(ints = {128, 256, 512})
    void pairedRowsEqualOneRowKernelsAndScalar(int bits) {
        VectorWidth vw = VectorWidth.of(bits);
        PanamaKernels fast = new PanamaKernels(bits, new KernelPool(2));
        ScalarKernels scalar = new ScalarKernels();
        Random rnd = new Random(17 + bits);
        int[][] shapes = {{64, 7}, {768, 130}, {32, 3}, {3072, 65}}; // {K, N}: odd N, tiles with a last lone row
        for (Kind kind : kinds(bits)) {
            for (int[] s : shapes) {
                int k = s[0], n = s[1];
                DenseWeight w = (DenseWeight) TestWeights.random(kind, n, k, 64, rnd);
                assertTrue(PanamaDot.densePairs(vw, w));
                float[] x = TestWeights.randomArray(2 + k, rnd), bias = TestWeights.randomArray(n, rnd);
                float[] got = new float[n], want = new float[n], out = new float[2]; // (N), (N), (2)
                fast.matmul(x, 2, w, bias, got, 0, 1);
                scalar.matmul(x, 2, w, bias, want, 0, 1);
                for (int j = 0; j + 1 < n; j += 2) { // one row per run, the runs anywhere
                    PanamaDot.denseRuns(vw, w, j, n - 1 - j, 1, x, 2, new float[2 * 16], out, 0);
                    assertEquals(Float.floatToRawIntBits(oneRow(vw, w, j, x)), Float.floatToRawIntBits(out[0]), kind + " row " + j);
                    assertEquals(Float.floatToRawIntBits(oneRow(vw, w, n - 1 - j, x)), Float.floatToRawIntBits(out[1]),
                            kind + " row " + (n - 1 - j));
                }
                for (int rows = 2; rows <= n / 2; rows += 3) { // longer runs: the flat loop's row switches
                    int rowB = n - rows;
                    float[] runs = new float[1 + 2 * rows];
                    PanamaDot.denseRuns(vw, w, 0, rowB, rows, x, 2, new float[2 * rows * 16], runs, 1);
                    for (int r = 0; r < rows; r++) {
                        assertEquals(Float.floatToRawIntBits(oneRow(vw, w, r, x)), Float.floatToRawIntBits(runs[1 + 2 * r]),
                                kind + " run of " + rows + ", row " + r);
                        assertEquals(Float.floatToRawIntBits(oneRow(vw, w, rowB + r, x)),
                                Float.floatToRawIntBits(runs[2 + 2 * r]), kind + " run of " + rows + ", row " + (rowB + r));
                    }
                }
                for (int j = 0; j < n; j++) {
                    double abs = TestWeights.absTerms(w, j, x, 2, bias);
                    float oneRow = gemvRow(vw, w, j, x) + bias[j];
                    int jj = j;
                    PanamaKernelsTest.check(want[j], got[j], abs, () -> kind + " " + k + "x" + n + " row " + jj);
                    assertEquals(Float.floatToRawIntBits(oneRow), Float.floatToRawIntBits(got[j]),
                            kind + " " + k + "x" + n + " row " + j + ": the GEMV equals the one-row kernel");
                }
            }
        }
    }

    @ParameterizedTest(name = "{0} bits")
    @ValueSource(ints = {128, 256, 512})
    void quadRunsEqualOneRowKernels(int bits) {
        VectorWidth vw = VectorWidth.of(bits);
        Random rnd = new Random(29 + bits);
        int[][] shapes = {{64, 9}, {768, 67}, {32, 4}, {3072, 21}}; // {K, N}
        for (Kind kind : kinds(bits)) {
            for (int[] s : shapes) {
                int k = s[0], n = s[1];
                DenseWeight w = (DenseWeight) TestWeights.random(kind, n, k, 64, rnd);
                float[] x = TestWeights.randomArray(2 + k, rnd);
                for (int rows = 1; 4 * rows <= n; rows += 2) {
                    for (int gap = rows; 3 * gap + rows <= n; gap += Math.max(1, n / 5)) {
                        int rowA = n - 3 * gap - rows; // the last rows of W: a stream that ends at W's end
                        float[] out = new float[1 + 4 * rows];
                        PanamaDot.denseQuads(vw, w, rowA, gap, rows, x, 2, new float[4 * rows * 16], out, 1);
                        for (int r = 0; r < rows; r++) {
                            for (int u = 0; u < 4; u++) {
                                int row = rowA + u * gap + r;
                                assertEquals(Float.floatToRawIntBits(oneRow(vw, w, row, x)),
                                        Float.floatToRawIntBits(out[1 + 4 * r + u]),
                                        kind + " " + k + "x" + n + " rows " + rows + " gap " + gap + ", row " + row);
                            }
                        }
                    }
                }
            }
        }
    }

    private static float oneRow(VectorWidth vw, DenseWeight w, int row, float[] x) {
        return switch (w.format()) {
            case BF16 -> PanamaDot.bf16(vw, w, row, x, 2);
            case F16 -> DenseRuns512.f16Row(vw, w, row, x, 2);
            default -> PanamaDot.f32(vw, w, row, x, 2);
        };
    }

    /**
     * The one-row kernel of the path {@code PanamaKernels.matmul} takes for M = 1: {@link F16Gemv512#row} for F16 at
     * 512 bits (with its prepared x), else {@link #oneRow}.
     */
    private static float gemvRow(VectorWidth vw, DenseWeight w, int row, float[] x) {
        if (vw.bits() == 512 && F16Gemv512.supports(w)) {
            float[] xs = new float[w.cols()]; // (K)
            assertTrue(F16Gemv512.prepare(x, 2, w.cols(), xs));
            return F16Gemv512.row(vw, w, row, xs);
        }
        return oneRow(vw, w, row, x);
    }

    /** The formats the paired and four-run loops take at this width (F16 only at 512 bits). */
    private static Kind[] kinds(int bits) {
        return bits == 512 ? new Kind[] {Kind.F32_OFF_HEAP, Kind.BF16, Kind.F16} : new Kind[] {Kind.F32_OFF_HEAP, Kind.BF16};
    }
}
