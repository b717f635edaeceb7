package dev.qlora4j.quant.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The 16×16 in-register panel transpose ({@link PanelTranspose512}) against its definition
 * {@code panel[base + c·nr + j] = rows[j·kc + c]}: whole tiles, a tail of columns, a reduction shorter than one tile,
 * both halves of a 32-wide sliver, and nothing written outside the sliver's 16 columns. On a CPU without AVX-512
 * the 512-bit species run emulated: slower, the same results.
 */
class PanelTranspose512Test {

    @Test
    void packIsTheTransposeIntoTheSliver() {
        Random rnd = new Random(5);
        int nr = 32;
        for (int kc : new int[] {16, 48, 768, 37, 5, 1}) {
            for (int half : new int[] {0, 16}) {
                float[] rows = new float[PanelTranspose512.L * kc]; // (16, kc)
                for (int i = 0; i < rows.length; i++) rows[i] = rnd.nextFloat() * 2 - 1;
                float[] fast = new float[2 * kc * nr + 7], slow = new float[fast.length]; // (2, kc, NR) + 7
                Arrays.fill(fast, Float.NaN);
                Arrays.fill(slow, Float.NaN);
                int base = kc * nr + half; // the second sliver, left or right 16 columns
                PanelTranspose512.pack(rows, kc, fast, base, nr);
                PanelTranspose512.packScalar(rows, kc, slow, base, nr);
                for (int p = 0; p < fast.length; p++) {
                    int q = p - base, c = Math.floorDiv(q, nr), j = Math.floorMod(q, nr);
                    boolean inside = q >= 0 && c < kc && j < PanelTranspose512.L;
                    float want = inside ? rows[j * kc + c] : Float.NaN;
                    String at = "kc " + kc + " half " + half + " at " + p;
                    assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(fast[p]), at);
                    assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(slow[p]), "scalar " + at);
                }
            }
        }
    }
}
