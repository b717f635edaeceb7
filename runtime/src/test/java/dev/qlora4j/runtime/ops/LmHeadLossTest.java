package dev.qlora4j.runtime.ops;

import dev.qlora4j.quant.kernel.KernelProvider;
import dev.qlora4j.quant.kernel.Kernels;
import dev.qlora4j.quant.kernel.ScalarKernels;
import dev.qlora4j.quant.weight.DenseWeight;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Fused chunked LM head + cross-entropy against a float64 reference and its central differences. */
class LmHeadLossTest {
    static final double H = 1e-6;

    /** float64 mean cross-entropy of {@code x·Wᵀ} over targets != -100. */
    static double loss(double[] x, double[] w, int[] y, int rows, int v, int c) {
        double total = 0;
        int count = 0;
        double[] l = new double[v];
        for (int r = 0; r < rows; r++) {
            if (y[r] == LmHeadLoss.IGNORE_INDEX) continue;
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < v; j++) {
                double s = 0;
                for (int i = 0; i < c; i++) s += x[r * c + i] * w[j * c + i];
                l[j] = s;
                max = Math.max(max, s);
            }
            double sum = 0;
            for (int j = 0; j < v; j++) sum += Math.exp(l[j] - max);
            total += max + Math.log(sum) - l[y[r]];
            count++;
        }
        return total / count;
    }

    static Kernels kernels(String which) {
        return which.equals("scalar") ? new ScalarKernels() : KernelProvider.get();
    }

    @ParameterizedTest
    @ValueSource(strings = {"scalar", "default"})
    void lossAndGradientsMatchFiniteDifferences(String kern) {
        int v = 37, c = 11, rows = 13, chunk = 4; // 13 rows: chunks of 4, 4, 4, 1
        Random r = new Random(3);
        float[] x = GradCheck.randn(r, rows * c, 1), w = GradCheck.randn(r, v * c, 0.5);
        int[] y = new int[rows];
        for (int i = 0; i < rows; i++) y[i] = r.nextInt(v);
        y[2] = y[7] = y[12] = LmHeadLoss.IGNORE_INDEX;
        DenseWeight wte = GradCheck.dense(w, v, c);
        LmHeadLoss head = new LmHeadLoss(kernels(kern), wte, chunk);
        float[] dx = new float[rows * c], dw = new float[v * c];
        double got = head.forwardBackward(x, 0, y, 0, rows, dx, 0, dw, head.countTargets(y, 0, rows));
        double[] xd = GradCheck.toDouble(x), wd = GradCheck.toDouble(w);
        double want = loss(xd, wd, y, rows, v, c);
        assertEquals(want, got, 1e-5 * want, "loss");
        assertEquals(got, head.forward(x, 0, y, 0, rows), 1e-12, "forward-only loss equals the fused one");

        var ex = new GradCheck.Errors("lm head dx (" + kern + ")", 1e-3);
        for (int i = 0; i < rows * c; i++) {
            double keep = xd[i];
            xd[i] = keep + H;
            double up = loss(xd, wd, y, rows, v, c);
            xd[i] = keep - H;
            double down = loss(xd, wd, y, rows, v, c);
            xd[i] = keep;
            ex.add("x[" + i + "]", (up - down) / (2 * H), dx[i]);
        }
        ex.check(1e-3);
        for (int i = 2 * c; i < 3 * c; i++) assertEquals(0f, dx[i], "ignored row has no gradient");
        var ew = new GradCheck.Errors("lm head dWte (" + kern + ")", 1e-3);
        for (int i = 0; i < v * c; i++) {
            double keep = wd[i];
            wd[i] = keep + H;
            double up = loss(xd, wd, y, rows, v, c);
            wd[i] = keep - H;
            double down = loss(xd, wd, y, rows, v, c);
            wd[i] = keep;
            ew.add("w[" + i + "]", (up - down) / (2 * H), dw[i]);
        }
        ew.check(1e-3);

        // divisor: gradient of Σ loss / 20 (gradient accumulation over micro-batches) is the mean's scaled by count/20
        float[] dx2 = new float[rows * c];
        head.forwardBackward(x, 0, y, 0, rows, dx2, 0, null, 20);
        for (int i = 0; i < rows * c; i++) assertEquals(dx[i] * 10 / 20, dx2[i], 1e-6);
    }

    /** Large enough that the row softmax and dWte run on the kernel pool; checked against the float64 gradient. */
    @Test
    void pooledChunksMatchReference() {
        int v = 4099, c = 16, rows = 21, chunk = 8;
        Random r = new Random(9);
        float[] x = GradCheck.randn(r, rows * c, 1), w = GradCheck.randn(r, v * c, 0.5);
        int[] y = new int[rows];
        for (int i = 0; i < rows; i++) y[i] = i % 5 == 3 ? LmHeadLoss.IGNORE_INDEX : r.nextInt(v);
        LmHeadLoss head = new LmHeadLoss(KernelProvider.get(), GradCheck.dense(w, v, c), chunk);
        float[] dx = new float[rows * c], dw = new float[v * c];
        double got = head.forwardBackward(x, 0, y, 0, rows, dx, 0, dw, head.countTargets(y, 0, rows));
        double[] xd = GradCheck.toDouble(x), wd = GradCheck.toDouble(w);
        assertEquals(loss(xd, wd, y, rows, v, c), got, 1e-5 * got);
        // float64 analytic gradient: dlogits = (softmax - onehot) / count
        int count = head.countTargets(y, 0, rows);
        double[] dxr = new double[rows * c], dwr = new double[v * c], l = new double[v];
        for (int i = 0; i < rows; i++) {
            if (y[i] == LmHeadLoss.IGNORE_INDEX) continue;
            double max = Double.NEGATIVE_INFINITY, sum = 0;
            for (int j = 0; j < v; j++) {
                double s = 0;
                for (int k = 0; k < c; k++) s += xd[i * c + k] * wd[j * c + k];
                l[j] = s;
                max = Math.max(max, s);
            }
            for (int j = 0; j < v; j++) sum += l[j] = Math.exp(l[j] - max);
            for (int j = 0; j < v; j++) {
                double d = (l[j] / sum - (j == y[i] ? 1 : 0)) / count;
                for (int k = 0; k < c; k++) {
                    dxr[i * c + k] += d * wd[j * c + k];
                    dwr[j * c + k] += d * xd[i * c + k];
                }
            }
        }
        var ex = new GradCheck.Errors("lm head dx, pooled, V=4099", 1e-3);
        for (int i = 0; i < rows * c; i++) ex.add("x[" + i + "]", dxr[i], dx[i]);
        ex.check(1e-3);
        var ew = new GradCheck.Errors("lm head dWte, pooled, V=4099", 1e-3);
        for (int i = 0; i < v * c; i++) ew.add("w[" + i + "]", dwr[i], dw[i]);
        ew.check(1e-3);
    }

    @Test
    void allIgnoredGivesNaNLossAndZeroGradient() {
        int v = 5, c = 3, rows = 4;
        Random r = new Random(1);
        LmHeadLoss head = new LmHeadLoss(new ScalarKernels(), GradCheck.dense(GradCheck.randn(r, v * c, 1), v, c), 3);
        int[] y = {-100, -100, -100, -100};
        float[] dx = GradCheck.randn(r, rows * c, 1);
        assertTrue(Double.isNaN(head.forwardBackward(GradCheck.randn(r, rows * c, 1), 0, y, 0, rows, dx, 0)));
        for (float d : dx) assertEquals(0f, d);
        assertThrows(IllegalArgumentException.class,
                () -> head.forward(new float[rows * c], 0, new int[]{0, 5, 1, 1}, 0, rows), "target == V");
        assertThrows(IllegalArgumentException.class,
                () -> head.forward(new float[rows * c], 0, new int[]{0, -1, 1, 1}, 0, rows), "target -1");
    }
}
