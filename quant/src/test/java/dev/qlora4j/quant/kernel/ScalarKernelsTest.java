package dev.qlora4j.quant.kernel;

import static org.junit.jupiter.api.Assertions.fail;

import dev.qlora4j.quant.kernel.TestWeights.Kind;
import dev.qlora4j.quant.weight.StoredWeight;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** The reference kernel against a naive double-precision triple loop over the dequantized weight. */
class ScalarKernelsTest {

    @ParameterizedTest
    @EnumSource(Kind.class)
    void matchesDoublePrecisionTripleLoop(Kind kind) {
        Random rnd = new Random(kind.ordinal());
        ScalarKernels scalar = new ScalarKernels();
        for (int[] s : new int[][] {{1, 13, 13}, {3, 67, 131}, {7, 131, 67}, {33, 64, 31}}) {
            int m = s[0], k = s[1], n = s[2];
            StoredWeight w = TestWeights.random(kind, n, k, 32, rnd);
            float[] wd = new float[n * k]; // (N, K)
            for (int r = 0; r < n; r++) w.dequantizeRow(r, wd, r * k);
            float[] x = TestWeights.randomArray(m * k, rnd); // (M, K)
            float[] bias = TestWeights.randomArray(n, rnd); // (N)
            float[] dy = TestWeights.randomArray(m * n, rnd); // (M, N)
            float[] y = new float[m * n]; // (M, N)
            float[] dx = TestWeights.randomArray(m * k, rnd); // (M, K)
            float[] dx0 = dx.clone();
            scalar.matmul(x, 0, w, bias, y, 0, m);
            scalar.matmulBackwardInput(dy, 0, w, dx, 0, m, true);
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    double sum = bias[j], abs = Math.abs(bias[j]);
                    for (int c = 0; c < k; c++) {
                        sum += (double) x[i * k + c] * wd[j * k + c];
                        abs += Math.abs((double) x[i * k + c] * wd[j * k + c]);
                    }
                    near(sum, y[i * n + j], abs, kind + " y");
                }
                for (int c = 0; c < k; c++) {
                    double sum = dx0[i * k + c], abs = Math.abs(dx0[i * k + c]);
                    for (int j = 0; j < n; j++) {
                        sum += (double) dy[i * n + j] * wd[j * k + c];
                        abs += Math.abs((double) dy[i * n + j] * wd[j * k + c]);
                    }
                    near(sum, dx[i * k + c], abs, kind + " dx");
                }
            }
            float[] rows = new float[2 * k]; // (2, K)
            scalar.dequantizeRows(w, 1, 2, rows, 0);
            for (int c = 0; c < 2 * k; c++) {
                if (rows[c] != wd[k + c]) fail(kind + " dequantizeRows elem " + c);
            }
        }
    }

    @org.junit.jupiter.api.Test
    void weightGradMatchesDoublePrecisionTripleLoop() {
        Random rnd = new Random(77);
        ScalarKernels scalar = new ScalarKernels();
        for (int[] s : new int[][] {{1, 13, 13}, {3, 67, 131}, {7, 131, 67}, {33, 64, 31}}) {
            int m = s[0], k = s[1], n = s[2];
            float[] dy = TestWeights.randomArray(m * n, rnd); // (M, N)
            float[] x = TestWeights.randomArray(m * k, rnd);  // (M, K)
            float[] dw = TestWeights.randomArray(n * k, rnd); // (N, K), accumulated into
            float[] dw0 = dw.clone();
            scalar.matmulWeightGrad(dy, 0, x, 0, m, n, k, dw, 0);
            for (int j = 0; j < n; j++) {
                for (int c = 0; c < k; c++) {
                    double sum = dw0[j * k + c], abs = Math.abs(sum);
                    for (int i = 0; i < m; i++) {
                        sum += (double) dy[i * n + j] * x[i * k + c];
                        abs += Math.abs((double) dy[i * n + j] * x[i * k + c]);
                    }
                    near(sum, dw[j * k + c], abs, "dw " + m + "x" + k + "x" + n);
                }
            }
        }
    }

    private static void near(double want, float got, double abs, String what) {
        if (!(Math.abs(want - got) <= 2e-6 * abs + 1e-30)) fail(what + ": want " + want + " got " + got);
    }
}
