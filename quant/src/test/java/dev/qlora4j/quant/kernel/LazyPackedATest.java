package dev.qlora4j.quant.kernel;

import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CyclicBarrier;
import org.junit.jupiter.api.Test;

/**
 * {@link LazyPackedA} against the layout's definition, {@code block[k·MR + r] = A[i + r][pc + k]} (zeros past M):
 * from the shared array or from scratch, and with four threads racing for the same blocks (whoever packs, every
 * reader must see the complete block).
 */
class LazyPackedATest {

    static final int MR = MicroKernel.MR_12, KC = 16;

    @Test
    void blocksFollowTheLayoutSharedOrNot() {
        Random rnd = new Random(3);
        int m = 2 * MR + 5, depth = 2 * KC + 7, lda = depth + 3, aOff = 2; // partial row block, partial pass
        float[] a = TestWeights.randomArray(aOff + m * lda, rnd); // (M, lda) at aOff
        for (boolean shared : new boolean[] {false, true}) {
            LazyPackedA lazy = new LazyPackedA(MR, KC);
            lazy.set(a, aOff, lda, m, depth, shared);
            for (int round = 0; round < 2; round++) { // the second round reads what the first packed
                for (int i = 0; i < m; i += MR) {
                    for (int pc = 0; pc < depth; pc += KC) {
                        int kc = Math.min(KC, depth - pc);
                        float[] scratch = new float[KC * MR]; // (KC, MR)
                        float[] got = lazy.block(i, pc, kc, scratch);
                        int off = got == scratch ? 0 : lazy.offset(i, pc);
                        if (!shared) assertSame(scratch, got, "a single column tile packs into scratch");
                        else assertNotSame(scratch, got, "shared blocks come from the packed array");
                        assertBlock(a, aOff, lda, m, i, pc, kc, got, off, "shared " + shared + " round " + round);
                    }
                }
            }
        }
    }

    @Test
    void racingThreadsAllSeeCompleteBlocks() throws Exception {
        Random rnd = new Random(11);
        int m = 40 * MR + 7, depth = 3 * KC + 5, lda = depth;
        float[] a = TestWeights.randomArray(m * lda, rnd); // (M, K)
        LazyPackedA lazy = new LazyPackedA(MR, KC);
        int threads = 4;
        for (int trial = 0; trial < 20; trial++) {
            lazy.set(a, 0, lda, m, depth, true);
            CyclicBarrier start = new CyclicBarrier(threads);
            List<Thread> ts = new ArrayList<>();
            List<Throwable> errors = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                Thread th = new Thread(() -> {
                    try {
                        float[] scratch = new float[KC * MR]; // (KC, MR)
                        start.await();
                        for (int i = 0; i < m; i += MR) { // all threads walk the same blocks in the same order
                            for (int pc = 0; pc < depth; pc += KC) {
                                int kc = Math.min(KC, depth - pc);
                                float[] got = lazy.block(i, pc, kc, scratch);
                                int off = got == scratch ? 0 : lazy.offset(i, pc);
                                assertBlock(a, 0, lda, m, i, pc, kc, got, off, "racing");
                            }
                        }
                    } catch (Throwable e) {
                        synchronized (errors) {
                            errors.add(e);
                        }
                    }
                });
                ts.add(th);
                th.start();
            }
            for (Thread th : ts) th.join();
            if (!errors.isEmpty()) throw new AssertionError(errors.get(0));
        }
    }

    private static void assertBlock(float[] a, int aOff, int lda, int m, int i, int pc, int kc, float[] got, int off,
                                    String what) {
        for (int k = 0; k < kc; k++) {
            for (int r = 0; r < MR; r++) {
                float want = i + r < m ? a[aOff + (i + r) * lda + pc + k] : 0f;
                if (want != got[off + k * MR + r]) {
                    throw new AssertionError(what + ": block (" + i + ", " + pc + ") row " + r + " col " + k
                            + " want " + want + " got " + got[off + k * MR + r]);
                }
            }
        }
    }
}
