package dev.qlora4j.runtime.model;

import dev.qlora4j.quant.kernel.ScalarKernels;
import dev.qlora4j.runtime.load.LoadOptions;
import dev.qlora4j.runtime.load.LoadedModel;
import dev.qlora4j.runtime.load.ModelLoader;
import dev.qlora4j.runtime.ops.LmHeadLoss;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Recomputing each block in the backward pass (gradient checkpointing) gives exactly the gradients of keeping every
 * block's activations: same kernels, same inputs, same order of operations; so does the training cache whose layers
 * share one K/V buffer. (The saved-activations backward itself is checked against finite differences in
 * {@code BackwardTest} and against PyTorch in the reference tests.)
 */
class GradientCheckpointingTest {

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-a", "bloom-a"})
    void recomputedBackwardEqualsSavedBackward(String name) {
        Path dir = ReferenceFile.referenceDir().resolve(name);
        try (LoadedModel lm = ModelLoader.load(dir, LoadOptions.asStored(), new ScalarKernels())) {
            DecoderModel m = lm.model();
            int b = 2, t = 9, v = m.spec().v();
            SplittableRandom rng = new SplittableRandom(3);
            int[] ids = rng.ints(b * t, 0, v).toArray();
            int[] targets = rng.ints(b * t, 0, v).toArray();
            targets[4] = -100;
            float[] saved = run(m, ids, targets, b, t, Workspace.Activations.SAVED, false);
            float[] recomputed = run(m, ids, targets, b, t, Workspace.Activations.CHECKPOINTED, false);
            assertEquals(saved.length, recomputed.length);
            assertArrayEquals(saved, recomputed, name + ": d(embeddings) with and without recompute");
            // the trainer's layer-shared K/V cache (re-stored by the backward) changes nothing either
            assertArrayEquals(saved, run(m, ids, targets, b, t, Workspace.Activations.SAVED, true),
                    name + ": saved activations, layer-shared K/V cache");
            assertArrayEquals(saved, run(m, ids, targets, b, t, Workspace.Activations.CHECKPOINTED, true),
                    name + ": recomputed blocks, layer-shared K/V cache");
        }
    }

    /** Returns [loss, d(embeddings)...] with a per-layer K/V cache. */
    static float[] run(DecoderModel m, int[] ids, int[] targets, int b, int t, Workspace.Activations mode) {
        return run(m, ids, targets, b, t, mode, false);
    }

    /** Returns [loss, d(embeddings)...]. */
    static float[] run(DecoderModel m, int[] ids, int[] targets, int b, int t, Workspace.Activations mode,
                       boolean sharedCache) {
        Workspace ws = new Workspace(m.spec(), b, t, t, mode, 4);
        KvCache cache = sharedCache ? KvCache.layerShared(m.spec(), b, t) : new KvCache(m.spec(), b, t);
        if (sharedCache) assertEquals(true, cache.k[0] == cache.k[m.spec().l() - 1] && m.spec().l() > 1);
        m.forward(ids, 0, b, t, 0, cache, ws);
        DecoderBackward bwd = new DecoderBackward(m, b, t);
        LmHeadLoss head = new LmHeadLoss(m.kernels(), m.weights().wte(), ws.logits, ws.chunkRows);
        double loss = bwd.lossAndBackward(head, ws, cache, targets, 0, b, t);
        float[] demb = bwd.backward(ws, cache, b, t); // second call: same result, exercises recompute twice
        float[] out = new float[1 + b * t * m.spec().c()];
        out[0] = (float) loss;
        System.arraycopy(demb, 0, out, 1, out.length - 1);
        return out;
    }
}
