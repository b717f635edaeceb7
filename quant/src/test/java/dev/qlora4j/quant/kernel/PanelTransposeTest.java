package dev.qlora4j.quant.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The in-register panel transposes, 16×16 ({@link PanelTranspose512}) and 8×8 ({@link PanelTranspose256}), and their
 * scalar references, against the definition {@code panel[base + c·nr + j] = rows[j·kc + c]}: whole tiles, a tail of
 * columns, a reduction shorter than one tile, both halves of a sliver twice the rows wide, and nothing written
 * outside the sliver's columns. On a CPU without the width, its species run emulated: slower, the same results.
 */
class PanelTransposeTest {

    interface Pack {
        void pack(float[] rows, int kc, float[] panel, int base, int nr);
    }

    @Test
    void pack512IsTheTransposeIntoTheSliver() {
        check(PanelTranspose512.L, new int[] {16, 48, 768, 37, 5, 1}, PanelTranspose512::pack,
                PanelTranspose512::packScalar);
    }

    @Test
    void pack256IsTheTransposeIntoTheSliver() {
        check(PanelTranspose256.L, new int[] {8, 48, 256, 768, 37, 5, 1}, PanelTranspose256::pack,
                PanelTranspose256::packScalar);
    }

    private static void check(int l, int[] kcs, Pack fastPack, Pack scalarPack) {
        Random rnd = new Random(5);
        int nr = 2 * l;
        for (int kc : kcs) {
            for (int half : new int[] {0, l}) {
                float[] rows = new float[l * kc]; // (L, kc)
                for (int i = 0; i < rows.length; i++) rows[i] = rnd.nextFloat() * 2 - 1;
                float[] fast = new float[2 * kc * nr + 7], slow = new float[fast.length]; // (2, kc, NR) + 7
                Arrays.fill(fast, Float.NaN);
                Arrays.fill(slow, Float.NaN);
                int base = kc * nr + half; // the second sliver, left or right L columns
                fastPack.pack(rows, kc, fast, base, nr);
                scalarPack.pack(rows, kc, slow, base, nr);
                for (int p = 0; p < fast.length; p++) {
                    int q = p - base, c = Math.floorDiv(q, nr), j = Math.floorMod(q, nr);
                    boolean inside = q >= 0 && c < kc && j < l;
                    float want = inside ? rows[j * kc + c] : Float.NaN;
                    String at = l + " rows, kc " + kc + " half " + half + " at " + p;
                    assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(fast[p]), at);
                    assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(slow[p]), "scalar " + at);
                }
            }
        }
    }
}
