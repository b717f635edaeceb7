package dev.qlora4j.quant.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The 8×8 in-register panel transpose ({@link PanelTranspose256}) against its definition
 * {@code panel[base + c·nr + j] = rows[j·kc + c]}: whole tiles, a tail of columns, a reduction shorter than one tile,
 * both halves of a 16-wide sliver, and nothing written outside the sliver's 8 columns. On a CPU without AVX2
 * the 256-bit species run emulated: slower, the same results.
 */
class PanelTranspose256Test {

    @Test
    void packIsTheTransposeIntoTheSliver() {
        Random rnd = new Random(5);
        int nr = 16;
        for (int kc : new int[] {8, 48, 256, 768, 37, 5, 1}) {
            for (int half : new int[] {0, 8}) {
                float[] rows = new float[PanelTranspose256.L * kc]; // (8, kc)
                for (int i = 0; i < rows.length; i++) rows[i] = rnd.nextFloat() * 2 - 1;
                float[] fast = new float[2 * kc * nr + 7], slow = new float[fast.length]; // (2, kc, NR) + 7
                Arrays.fill(fast, Float.NaN);
                Arrays.fill(slow, Float.NaN);
                int base = kc * nr + half; // the second sliver, left or right 8 columns
                PanelTranspose256.pack(rows, kc, fast, base, nr);
                PanelTranspose256.packScalar(rows, kc, slow, base, nr);
                for (int p = 0; p < fast.length; p++) {
                    int q = p - base, c = Math.floorDiv(q, nr), j = Math.floorMod(q, nr);
                    boolean inside = q >= 0 && c < kc && j < PanelTranspose256.L;
                    float want = inside ? rows[j * kc + c] : Float.NaN;
                    String at = "kc " + kc + " half " + half + " at " + p;
                    assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(fast[p]), at);
                    assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(slow[p]), "scalar " + at);
                }
            }
        }
    }
}
