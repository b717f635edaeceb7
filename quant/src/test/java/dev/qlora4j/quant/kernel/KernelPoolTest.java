package dev.qlora4j.quant.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;

class KernelPoolTest {

    @Test
    void everyTileRunsExactlyOnceOnValidSlots() {
        KernelPool pool = new KernelPool(4);
        for (int tiles : new int[] {0, 1, 2, 3, 7, 100}) {
            for (int rep = 0; rep < 50; rep++) {
                AtomicIntegerArray seen = new AtomicIntegerArray(Math.max(1, tiles));
                pool.run(tiles, (t, slot) -> {
                    assertTrue(slot >= 0 && slot < 4);
                    seen.incrementAndGet(t);
                });
                for (int t = 0; t < tiles; t++) assertEquals(1, seen.get(t), "tile " + t);
            }
        }
    }

    @Test
    void workerFailureReachesTheCaller() {
        KernelPool pool = new KernelPool(2);
        assertThrows(IllegalStateException.class, () -> pool.run(64, (t, slot) -> {
            if (t == 40) throw new IllegalStateException("boom");
        }));
        int[] count = new int[1];
        pool.run(5, (t, slot) -> {
            synchronized (count) {
                count[0]++;
            }
        });
        assertEquals(5, count[0]); // still usable
    }
}
