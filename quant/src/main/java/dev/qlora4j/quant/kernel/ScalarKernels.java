package dev.qlora4j.quant.kernel;

import dev.qlora4j.quant.weight.StoredWeight;

/**
 * The reference kernels: plain loops over rows of {@code W} dequantized with {@link StoredWeight#dequantize}, one
 * float accumulator per output. Every fast kernel is tested against these; they are also the fallback when the
 * Vector API is not available.
 */
public final class ScalarKernels implements Kernels {

    @Override
    public String name() {
        return "scalar";
    }

    @Override
    public void matmul(float[] x, int xOff, StoredWeight w, float[] bias, float[] y, int yOff, int m) {
        int n = w.rows(), k = w.cols();
        float[] wrow = new float[k]; // (K) row n of W
        for (int j = 0; j < n; j++) {
            w.dequantizeRow(j, wrow, 0);
            float b = bias == null ? 0f : bias[j];
            for (int i = 0; i < m; i++) {
                int xr = xOff + i * k; // x (M, K)
                float sum = 0f;
                for (int c = 0; c < k; c++) sum += x[xr + c] * wrow[c];
                y[yOff + i * n + j] = sum + b; // y (M, N)
            }
        }
    }

    @Override
    public void matmulBackwardInput(float[] dy, int dyOff, StoredWeight w, float[] dx, int dxOff, int m,
                                    boolean accumulate) {
        int n = w.rows(), k = w.cols();
        if (!accumulate) java.util.Arrays.fill(dx, dxOff, dxOff + m * k, 0f); // dx (M, K)
        float[] wrow = new float[k]; // (K) row j of W
        for (int j = 0; j < n; j++) {
            w.dequantizeRow(j, wrow, 0);
            for (int i = 0; i < m; i++) {
                float d = dy[dyOff + i * n + j]; // dy (M, N)
                int dr = dxOff + i * k;
                for (int c = 0; c < k; c++) dx[dr + c] += d * wrow[c];
            }
        }
    }

    @Override
    public void matmulWeightGrad(float[] dy, int dyOff, float[] x, int xOff, int m, int n, int k, float[] dw,
                                 int dwOff) {
        for (int j = 0; j < n; j++) {
            int dr = dwOff + j * k; // row j of dw (N, K)
            for (int i = 0; i < m; i++) {
                float d = dy[dyOff + i * n + j]; // dy (M, N)
                int xr = xOff + i * k;           // x (M, K)
                for (int c = 0; c < k; c++) dw[dr + c] += d * x[xr + c];
            }
        }
    }

    @Override
    public void dequantizeRows(StoredWeight w, int row0, int nrows, float[] dst, int dstOff) {
        int k = w.cols();
        for (int r = 0; r < nrows; r++) w.dequantizeRow(row0 + r, dst, dstOff + r * k); // dst (nrows, K)
    }
}
