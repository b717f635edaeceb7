package dev.qlora4j.bench.ops;

import dev.qlora4j.runtime.ops.Gelu;

import java.util.Locale;
import java.util.Random;

/**
 * A plain timing loop for {@link Gelu#forward} / {@link Gelu#backward} on 65,536 floats (N(0, 2²) inputs), 300 calls
 * per round, 6 rounds; prints ns per element for each round (the last rounds are the warm ones).
 *
 * <pre>java --add-modules jdk.incubator.vector -cp bench/target/benchmarks.jar dev.qlora4j.bench.ops.GeluLoop</pre>
 */
public final class GeluLoop {
    private GeluLoop() {
    }

    public static void main(String[] args) {
        int n = 1 << 16, calls = 300;
        float[] x = new float[n], y = new float[n], dy = new float[n];
        Random r = new Random(1);
        for (int i = 0; i < n; i++) {
            x[i] = (float) r.nextGaussian() * 2;
            dy[i] = 1;
        }
        for (int round = 0; round < 6; round++) {
            long t0 = System.nanoTime();
            for (int q = 0; q < calls; q++) Gelu.forward(x, 0, y, 0, n);
            long t1 = System.nanoTime();
            for (int q = 0; q < calls; q++) Gelu.backward(x, 0, dy, 0, y, 0, n);
            long t2 = System.nanoTime();
            System.out.printf(Locale.ROOT, "forward %.2f ns/element  backward %.2f ns/element%n",
                    (t1 - t0) / (double) calls / n, (t2 - t1) / (double) calls / n);
        }
    }
}
