package dev.qlora4j.lora.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AdamWStateTest {

    static final List<ParamSlice> SLICES = List.of(new ParamSlice("w", 0, 12, true), new ParamSlice("b", 12, 4, false));
    static final AdamW.Hyper HYPER = new AdamW.Hyper(0.9, 0.999, 1e-8, 0.1);

    @Test
    void savedAndResumedRunEqualsUninterruptedRunBitForBit(@TempDir Path dir) throws IOException {
        LrSchedule sched = new LrSchedule(LrSchedule.Kind.COSINE, 1e-2, 2, 10);
        float[] straight = new float[16];
        AdamW a = new AdamW(16, HYPER, SLICES);
        for (int k = 0; k < 10; k++) a.step(straight, grads(k), sched.lr(a.stepCount()));

        float[] resumed = new float[16];
        AdamW b = new AdamW(16, HYPER, SLICES);
        for (int k = 0; k < 4; k++) b.step(resumed, grads(k), sched.lr(b.stepCount()));
        Path file = dir.resolve("optimizer.safetensors");
        b.save(file);
        AdamW c = new AdamW(16, HYPER, SLICES);
        c.load(file);
        assertEquals(4, c.stepCount());
        for (int k = 4; k < 10; k++) c.step(resumed, grads(k), sched.lr(c.stepCount()));
        assertArrayEquals(straight, resumed);
        assertArrayEquals(a.expAvg(), c.expAvg());
        assertArrayEquals(a.expAvgSq(), c.expAvgSq());
    }

    @Test
    void loadRefusesAnotherLayoutOrAFileThatIsNotOptimizerState(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("opt.safetensors");
        new AdamW(16, HYPER, SLICES).save(file);
        AdamW other = new AdamW(16, HYPER, List.of(new ParamSlice("w", 0, 16, true)));
        IOException e = assertThrows(IOException.class, () -> other.load(file));
        assertTrue(e.getMessage().contains("saved for params"), e.getMessage());

        Path junk = dir.resolve("junk.safetensors");
        Files.write(junk, new byte[] {1, 2, 3});
        assertThrows(IOException.class, () -> new AdamW(16, HYPER, SLICES).load(junk));
    }

    @Test
    void decayOnlyTouchesDecayedSlicesAndGapsStayFrozen() {
        AdamW opt = new AdamW(6, new AdamW.Hyper(0.9, 0.999, 1e-8, 0.5), List.of(
                new ParamSlice("w", 0, 2, true), new ParamSlice("b", 2, 2, false)));
        float[] p = {1, 1, 1, 1, 1, 1};
        opt.step(p, new float[6], 0.1); // zero grads: only decay moves params
        assertEquals((float) (1 - 0.1 * 0.5), p[0]);
        assertEquals(1f, p[2]);
        assertEquals(1f, p[5]);
        assertThrows(IllegalArgumentException.class, () -> new AdamW(4, HYPER, List.of(new ParamSlice("a", 0, 3, true), new ParamSlice("b", 2, 2, true))));
        assertThrows(IllegalArgumentException.class, () -> new AdamW(4, HYPER, List.of(new ParamSlice("a", 2, 3, true))));
    }

    static float[] grads(int k) {
        SplittableRandom r = new SplittableRandom(k);
        float[] g = new float[16];
        for (int i = 0; i < g.length; i++) g[i] = (float) r.nextGaussian();
        return g;
    }
}
