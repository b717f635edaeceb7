package dev.qlora4j.quant.kernel;

/**
 * The definition both in-register panel transposes ({@link PanelTranspose512}, {@link PanelTranspose256}) are held
 * to, float by float: their scalar reference, and their tail of columns past the last whole tile.
 */
final class PanelColumns {

    private PanelColumns() {
    }

    /**
     * {@code panel[base + c·nr + j] = rows[j·kc + c]} for {@code j < rowCount}, {@code from ≤ c < kc}.
     *
     * @param rows  {@code (rowCount, kc)} dequantized rows of W
     * @param panel the packed panel; row {@code c} of the sliver at {@code base + c·nr}
     */
    static void copy(float[] rows, int kc, float[] panel, int base, int nr, int rowCount, int from) {
        for (int j = 0; j < rowCount; j++) {
            for (int c = from; c < kc; c++) panel[base + c * nr + j] = rows[j * kc + c];
        }
    }
}
