package dev.qlora4j.runtime.model;

import dev.qlora4j.quant.kernel.KernelProvider;
import dev.qlora4j.quant.kernel.ScalarKernels;
import dev.qlora4j.quant.weight.DenseWeight;
import dev.qlora4j.runtime.load.LoadOptions;
import dev.qlora4j.runtime.load.LoadedModel;
import dev.qlora4j.runtime.load.ModelLoader;
import dev.qlora4j.runtime.ops.DropoutMask;
import dev.qlora4j.runtime.ops.GradCheck;
import dev.qlora4j.runtime.ops.LmHeadLoss;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.SplittableRandom;

import static dev.qlora4j.runtime.model.BackwardTest.array;
import static dev.qlora4j.runtime.model.BackwardTest.check;
import static dev.qlora4j.runtime.model.BackwardTest.dense;
import static dev.qlora4j.runtime.model.BackwardTest.subset;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Base-model dropout ({@link Dropout}): the end-to-end backward with dropout on matches central differences of the
 * same masked forward (masks fixed by the step); each site drops about p of its elements; off (or p = 0) the forward
 * and backward are bit-identical to a model without dropout; gradient checkpointing's recompute reproduces the masks.
 */
class DropoutTest {
    static final int B = 2, T = 7;

    @ParameterizedTest(name = "{0} kernels={1}")
    @CsvSource({"gpt2-a, default", "bloom-a, scalar"})
    void gradientsMatchFiniteDifferencesWithDropout(String name, String kern) {
        try (LoadedModel lm = ModelLoader.load(ReferenceFile.referenceDir().resolve(name), LoadOptions.asStored(),
                kern.equals("scalar") ? new ScalarKernels() : KernelProvider.get())) {
            DecoderWeights w0 = lm.model().weights();
            DecoderSpec spec = w0.spec();
            DenseWeight wte = GradCheck.copy(w0.wte()), wpe = w0.wpe() == null ? null : GradCheck.copy(w0.wpe());
            LayerNormParams embLn = w0.embLn() == null ? null
                    : new LayerNormParams(w0.embLn().gamma().clone(), w0.embLn().beta().clone(), w0.embLn().eps());
            DecoderWeights w = new DecoderWeights(spec, wte, wpe, embLn, w0.blocks(), w0.lnF());
            DecoderModel model = new DecoderModel(w, lm.model().kernels());
            Dropout drop = new Dropout(embLn == null ? 0.1 : 0, 0.2, 0.3, 1234);
            drop.setTraining(true);
            drop.setStep(5);
            model.setDropout(drop);
            int c = spec.c(), v = spec.v(), bn = B * T;
            Random r = new Random(name.hashCode() * 17L);

            BlockWeights b0 = w.blocks()[0], b1 = w.blocks()[spec.l() - 1];
            Linear[] hooked = {b0.qkv(), b1.attnProj(), b0.fc(), b1.mlpProj()};
            BackwardTest.ProjHook[] proj = new BackwardTest.ProjHook[hooked.length];
            for (int i = 0; i < hooked.length; i++) {
                proj[i] = new BackwardTest.ProjHook(hooked[i].in(), hooked[i].out(), r);
                hooked[i].addHook(proj[i]);
            }
            BackwardTest.OffsetHook offset = new BackwardTest.OffsetHook(bn, c);
            b0.mlpProj().addHook(offset);
            try {
                int[] tokens = new int[bn], targets = new int[bn];
                for (int i = 0; i < bn; i++) tokens[i] = r.nextInt(v);
                for (int i = 0; i < bn; i++) targets[i] = i % T == T - 1 ? LmHeadLoss.IGNORE_INDEX : tokens[i + 1];

                KvCache cache = new KvCache(spec, B, T);
                Workspace ws = new Workspace(spec, B, T, T, true, 8);
                LmHeadLoss head = new LmHeadLoss(model.kernels(), wte, ws.logits, ws.chunkRows);
                DecoderBackward bwd = new DecoderBackward(model, B, T);
                bwd.collectLayerNormGrads();
                float[] dWte = new float[v * c], dWpe = wpe == null ? null : new float[spec.maxT() * c];
                float[] dEmbG = embLn == null ? null : new float[c], dEmbB = embLn == null ? null : new float[c];
                model.forward(tokens, 0, B, T, 0, cache, ws);
                double loss = head.forwardBackward(ws.lnf, 0, targets, 0, bn, bwd.dlnf, 0, dWte,
                        head.countTargets(targets, 0, bn));
                bwd.backward(ws, cache, B, T);
                bwd.embeddingBackward(tokens, 0, B, T, dWte, dWpe, dEmbG, dEmbB);

                // the masks matter: evaluation mode gives another loss
                drop.setTraining(false);
                model.forward(tokens, 0, B, T, 0, cache, ws);
                double evalLoss = head.forward(ws.lnf, 0, targets, 0, bn);
                drop.setTraining(true);
                System.out.printf("[dropout] %s loss %.6f (eval mode %.6f)%n", name, loss, evalLoss);
                assertTrue(Math.abs(loss - evalLoss) > 1e-4, "dropout changed nothing");

                java.util.function.DoubleSupplier f = () -> {
                    model.forward(tokens, 0, B, T, 0, cache, ws);
                    return head.forward(ws.lnf, 0, targets, 0, bn);
                };
                assertEquals(loss, f.getAsDouble(), 0, "same step, same masks, same loss");
                String tag = name + "/dropout ";
                if (wpe != null) {
                    int[] rows = new int[T * c];
                    for (int i = 0; i < T * c; i++) rows[i] = i;
                    check(tag + "d embeddings (via wpe)", subset(dense(wpe, dWpe), rows, dWpe), f, 1e-2, r);
                } else {
                    check(tag + "d embeddings (via emb LN beta)", array(embLn.beta(), dEmbB), f, 1e-2, r);
                }
                check(tag + "d block-1 input (offset hook)", array(offset.d, offset.dd), f, 1e-2, r);
                String[] names = {"qkv", "attn proj", "fc", "mlp proj"};
                for (int i = 0; i < proj.length; i++) {
                    check(tag + "hook P on " + names[i], array(proj[i].p, proj[i].dp), f, 1e-2, r);
                }
                check(tag + "ln1 gamma (last block)", array(b1.ln1().gamma(), bwd.dLn1Gamma()[spec.l() - 1]), f,
                        1e-2, r);
                check(tag + "ln2 beta (block 0)", array(b0.ln2().beta(), bwd.dLn2Beta()[0]), f, 1e-2, r);
            } finally {
                for (Linear l : hooked) l.removeHook(l.hooks()[0]);
                b0.mlpProj().removeHook(offset);
            }
        }
    }

    @Test
    void dropFractionIsAboutP() {
        Dropout d = new Dropout(0.1, 0.2, 0.3, 7);
        d.setTraining(true);
        d.setStep(11);
        int rows = 256, cols = 256;
        int[] sites = {Dropout.EMBD, Dropout.RESID_ATTN, Dropout.RESID_MLP};
        double[] ps = {0.1, 0.3, 0.3};
        for (int k = 0; k < sites.length; k++) {
            float[] m = d.mask(sites[k], 2, rows, cols);
            int zeros = 0;
            for (float x : m) {
                if (x == 0f) zeros++;
                else assertEquals(1f / (1f - (float) ps[k]), x, 0f);
            }
            double frac = zeros / (double) m.length;
            System.out.printf("[dropout] site %d p=%.2f dropped %.4f%n", sites[k], ps[k], frac);
            assertEquals(ps[k], frac, 0.01);
        }
        // attention probabilities: the counters the attention kernels use
        long key = d.key(Dropout.ATTN, 1), th = DropoutMask.threshold(d.attn());
        int dropped = 0, total = 0;
        for (int bi = 0; bi < 2; bi++) {
            for (int h = 0; h < 4; h++) {
                for (int t = 0; t < 64; t++) {
                    for (int j = 0; j <= t; j++) {
                        total++;
                        if (!DropoutMask.kept(key, DropoutMask.attentionCounter(bi, h, 4, t, j), th)) dropped++;
                    }
                }
            }
        }
        System.out.printf("[dropout] attention p=0.2 dropped %.4f%n", dropped / (double) total);
        assertEquals(0.2, dropped / (double) total, 0.01);
        // masks differ between steps, layers and sites, and repeat for the same ones
        float[] a = d.mask(Dropout.RESID_ATTN, 0, 4, 64);
        assertArrayEquals(a, d.mask(Dropout.RESID_ATTN, 0, 4, 64));
        assertFalse(java.util.Arrays.equals(a, d.mask(Dropout.RESID_MLP, 0, 4, 64)));
        assertFalse(java.util.Arrays.equals(a, d.mask(Dropout.RESID_ATTN, 1, 4, 64)));
        d.setStep(12);
        assertFalse(java.util.Arrays.equals(a, d.mask(Dropout.RESID_ATTN, 0, 4, 64)));
        d.setTraining(false);
        for (float x : d.mask(Dropout.RESID_ATTN, 0, 4, 64)) assertEquals(1f, x, 0f);
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-a", "bloom-a"})
    void offOrZeroIsBitIdentical(String name) {
        Path dir = ReferenceFile.referenceDir().resolve(name);
        try (LoadedModel lm = ModelLoader.load(dir, LoadOptions.asStored(), new ScalarKernels())) {
            DecoderModel m = lm.model();
            int b = 2, t = 9, v = m.spec().v();
            SplittableRandom rng = new SplittableRandom(5);
            int[] ids = rng.ints(b * t, 0, v).toArray();
            int[] targets = rng.ints(b * t, 0, v).toArray();
            m.setDropout(null);
            float[] plain = GradientCheckpointingTest.run(m, ids, targets, b, t, Workspace.Activations.SAVED);
            Dropout evalMode = new Dropout(0.1, 0.2, 0.3, 9);
            m.setDropout(evalMode);
            assertArrayEquals(plain, GradientCheckpointingTest.run(m, ids, targets, b, t, Workspace.Activations.SAVED),
                    name + ": dropout in evaluation mode");
            Dropout zero = new Dropout(0, 0, 0, 9);
            zero.setTraining(true);
            m.setDropout(zero);
            assertArrayEquals(plain, GradientCheckpointingTest.run(m, ids, targets, b, t, Workspace.Activations.SAVED),
                    name + ": dropout with p = 0");
            evalMode.setTraining(true);
            m.setDropout(evalMode);
            float[] on = GradientCheckpointingTest.run(m, ids, targets, b, t, Workspace.Activations.SAVED);
            assertFalse(java.util.Arrays.equals(plain, on), name + ": dropout in training mode changes the result");
            m.setDropout(null);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-a", "bloom-a"})
    void checkpointingReproducesTheMasks(String name) {
        Path dir = ReferenceFile.referenceDir().resolve(name);
        try (LoadedModel lm = ModelLoader.load(dir, LoadOptions.asStored(), new ScalarKernels())) {
            DecoderModel m = lm.model();
            int b = 2, t = 9, v = m.spec().v();
            SplittableRandom rng = new SplittableRandom(3);
            int[] ids = rng.ints(b * t, 0, v).toArray();
            int[] targets = rng.ints(b * t, 0, v).toArray();
            targets[4] = -100;
            Dropout d = new Dropout(0.1, 0.25, 0.2, 77);
            d.setTraining(true);
            d.setStep(3);
            m.setDropout(d);
            float[] saved = GradientCheckpointingTest.run(m, ids, targets, b, t, Workspace.Activations.SAVED);
            float[] recomputed = GradientCheckpointingTest.run(m, ids, targets, b, t,
                    Workspace.Activations.CHECKPOINTED);
            assertArrayEquals(saved, recomputed, name + ": d(embeddings) with dropout, with and without recompute");
            m.setDropout(null);
        }
    }
}
