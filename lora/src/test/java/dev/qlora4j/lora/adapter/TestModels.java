package dev.qlora4j.lora.adapter;

import dev.qlora4j.quant.kernel.KernelProvider;
import dev.qlora4j.runtime.load.LoadOptions;
import dev.qlora4j.runtime.load.LoadedModel;
import dev.qlora4j.runtime.load.ModelLoader;
import dev.qlora4j.runtime.model.DecoderModel;
import dev.qlora4j.runtime.model.KvCache;
import dev.qlora4j.runtime.model.Workspace;

import java.nio.file.Path;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.fail;

/** The reference models the adapter tests run on, and a logits helper. */
final class TestModels {
    private TestModels() {
    }

    static Path referenceDir() {
        return Path.of("../runtime/src/test/resources/reference").toAbsolutePath().normalize();
    }

    static Path sharedDir() {
        return Path.of(System.getProperty("qlora.shared", "../../shared")).toAbsolutePath().normalize();
    }

    static Path dir(String name) {
        return name.equals("tiny-gpt2") ? sharedDir().resolve("data/tiny-gpt2") : referenceDir().resolve(name);
    }

    static LoadedModel load(String name, String quant) {
        return ModelLoader.load(dir(name), LoadOptions.parse(quant), KernelProvider.get());
    }

    static int[] tokens(DecoderModel m, int t, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] ids = new int[t];
        for (int i = 0; i < t; i++) ids[i] = r.nextInt(m.spec().v());
        return ids;
    }

    /** (B·T, V) logits of one forward pass over {@code ids} (B sequences of T). */
    static float[] logits(DecoderModel m, int[] ids, int b) {
        int t = ids.length / b, v = m.spec().v();
        KvCache cache = new KvCache(m.spec(), b, t);
        Workspace ws = new Workspace(m.spec(), b, t, t, false, b * t);
        m.forward(ids, 0, b, t, 0, cache, ws);
        float[] out = new float[b * t * v];
        m.logits(ws, 0, b * t, out, 0);
        return out;
    }

    static void assertExactlyEqual(float[] want, float[] got, String what) {
        if (want.length != got.length) fail(what + ": lengths " + want.length + " vs " + got.length);
        for (int i = 0; i < want.length; i++) {
            if (!(want[i] == got[i])) fail(what + ": element " + i + " is " + got[i] + ", expected exactly " + want[i]);
        }
    }

    static void assertClose(float[] want, float[] got, double tol, String what) {
        if (want.length != got.length) fail(what + ": lengths " + want.length + " vs " + got.length);
        for (int i = 0; i < want.length; i++) {
            double bound = tol * Math.max(1, Math.abs(want[i]));
            if (!(Math.abs(want[i] - got[i]) <= bound)) {
                fail(what + ": element " + i + " is " + got[i] + ", expected " + want[i] + " ± " + bound);
            }
        }
    }

    static double maxAbsDiff(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
        return m;
    }
}
