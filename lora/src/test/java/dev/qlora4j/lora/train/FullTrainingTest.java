package dev.qlora4j.lora.train;

import dev.qlora4j.lora.data.Dataset;
import dev.qlora4j.lora.data.EvalSplit;
import dev.qlora4j.lora.data.PaddedExamples;
import dev.qlora4j.lora.full.FullModel;
import dev.qlora4j.lora.optim.LrSchedule;
import dev.qlora4j.lora.params.ParamBuffer;
import dev.qlora4j.quant.kernel.KernelProvider;
import dev.qlora4j.runtime.load.LoadOptions;
import dev.qlora4j.runtime.load.LoadedModel;
import dev.qlora4j.runtime.load.ModelLoader;
import dev.qlora4j.runtime.model.KvCache;
import dev.qlora4j.runtime.model.Workspace;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Full-parameter training ({@link FullModel}) on the small reference GPT-2 and BLOOM: every gradient against central
 * finite differences of the model's own loss, the saved model loading back through the runtime's Hugging Face loader
 * with the same logits, and an interrupted-then-resumed run equal to an uninterrupted one. (The gradients and an
 * AdamW trajectory against PyTorch: {@link FullReferenceTest}.)
 */
class FullTrainingTest {

    @TempDir
    Path tmp;

    static LoadedModel load(String model) {
        return ModelLoader.load(TrainFixtures.referenceDir().resolve(model), LoadOptions.parse("none"), KernelProvider.get());
    }

    /** A fixed random batch (B=2, T=8) with every target counted. */
    static PaddedExamples batch(int v, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[][] in = new int[2][8], tg = new int[2][8];
        for (int i = 0; i < 2; i++) {
            for (int j = 0; j < 8; j++) in[i][j] = r.nextInt(v);
            for (int j = 0; j < 8; j++) tg[i][j] = j < 7 ? in[i][j + 1] : r.nextInt(v);
        }
        return PaddedExamples.of(in, tg);
    }

    @Test
    void everyGradientMatchesFiniteDifferences() throws Exception {
        for (String model : new String[] {"gpt2-a", "bloom-a"}) {
            try (LoadedModel m = load(model)) {
                FullModel fm = FullModel.of(m);
                PaddedExamples ex = batch(m.model().spec().v(), 5);
                Trainer t = new Trainer(fm, ex, ex, TrainConfig.defaults(2, 8, 1, 0.0)
                        .withOptimizer(0.0, 0.0, 0.0), false); // no clipping: the raw gradient
                ParamBuffer pb = fm.params();
                t.step(); // lr 0: computes the gradients, leaves the parameters as they were (weight decay 0)
                float[] grads = pb.grads().clone();
                float[] p = pb.params();
                int checked = 0;
                for (ParamBuffer.Slice s : pb.slices()) { // the largest entry and one seeded entry of every tensor
                    checkSliceByFiniteDifferences(t, p, grads, s, fm::paramsUpdated, model);
                    checked += 2;
                }
                assertEquals(2 * pb.slices().size(), checked);
            }
        }
    }

    /**
     * Central differences of the trainer's loss at two entries of slice {@code s} — the one with the largest gradient
     * and a seeded one — against {@code grads}; {@code changed} tells the trainable its parameters moved.
     *
     * @return max |gradient| over the slice
     */
    static double checkSliceByFiniteDifferences(Trainer t, float[] p, float[] grads, ParamBuffer.Slice s,
                                                Runnable changed, String what) {
        int arg = s.offset();
        double max = 0;
        for (int i = s.offset(); i < s.end(); i++) {
            if (Math.abs(grads[i]) > max) {
                max = Math.abs(grads[i]);
                arg = i;
            }
        }
        int other = s.offset() + new SplittableRandom(s.name().hashCode()).nextInt(s.length());
        for (int i : new int[] {arg, other}) {
            float keep = p[i];
            double h = 1e-2 * Math.max(1.0, Math.abs(keep));
            p[i] = (float) (keep + h);
            changed.run();
            double up = t.evaluate();
            p[i] = (float) (keep - h);
            changed.run();
            double down = t.evaluate();
            p[i] = keep;
            changed.run();
            double fd = (up - down) / (2 * h);
            // fp32 loss over a step of 1e-2: truncation O(h²·g''') and roundoff ~1e-6·loss/h
            assertEquals(fd, grads[i], 2e-2 * max + 2e-4, what + " " + s.name() + " entry " + (i - s.offset()));
        }
        return max;
    }

    @Test
    void savedModelLoadsBackWithTheSameLogits() throws Exception {
        for (String model : new String[] {"gpt2-a", "bloom-a"}) {
            Path out = tmp.resolve(model);
            Files.createDirectories(out);
            float[] want;
            try (LoadedModel m = load(model)) {
                FullModel fm = FullModel.of(m);
                PaddedExamples ex = batch(m.model().spec().v(), 9);
                Trainer t = new Trainer(fm, ex, ex, TrainConfig.defaults(2, 8, 3, 1e-2), false);
                while (!t.finished()) t.step(); // move every weight away from the reference file's values
                fm.writeWeights(out);
                want = logits(fm.model(), ex);
                float[] before = logits(m.model(), ex);
                assertFalse(Arrays.equals(want, before), "training changed the model");
            }
            try (LoadedModel back = ModelLoader.load(out, LoadOptions.parse("none"), KernelProvider.get())) {
                assertArrayEquals(want, logits(back.model(), batch(back.model().spec().v(), 9)), model);
            }
        }
    }

    private static float[] logits(dev.qlora4j.runtime.model.DecoderModel model, PaddedExamples ex) {
        var spec = model.spec();
        Workspace ws = new Workspace(spec, 1, 8, 8, false, 8);
        KvCache cache = new KvCache(spec, 1, 8);
        int[] in = new int[8], tg = new int[8];
        ex.copyTo(0, in, tg, 0);
        model.forward(in, 0, 1, 8, 0, cache, ws);
        float[] out = new float[8 * spec.v()];
        model.logits(ws, 0, 8, out, 0);
        return out;
    }

    @Test
    void resumedFullRunEqualsUninterruptedRun() throws Exception {
        TrainFixtures.warmUpKernels(tmp);
        Dataset d = TrainFixtures.numbers(tmp, 40, 3, 16);
        TrainConfig cfg = TrainConfig.defaults(2, 16, 5, 3e-3).withBatch(2, 2).withSchedule(LrSchedule.Kind.COSINE, 1)
                .withOptimizer(3e-3, 0.1, 1.0).withSeed(11).withIntervals(0, 2, 2, 0, 1);
        EvalSplit.Parts parts = TrainFixtures.split(d, 0.2, cfg.seed());
        float[] a;
        double[] lossA = new double[6];
        try (LoadedModel m = load("gpt2-a")) {
            FullModel fm = FullModel.of(m);
            Trainer t = new Trainer(fm, parts.train(), parts.eval(), cfg, false);
            TrainingRun.run(t, tmp.resolve("a"), Map.of(), false, new TrainingRun.Listener() {
                @Override
                public boolean onStep(Trainer.StepStats s, double e, double rss) {
                    lossA[s.step] = s.loss;
                    return true;
                }
            });
            a = fm.params().params().clone();
        }
        Path outB = tmp.resolve("b");
        try (LoadedModel m = load("gpt2-a")) {
            Trainer t = new Trainer(FullModel.of(m), parts.train(), parts.eval(), cfg, false);
            TrainingRun.Result r = TrainingRun.run(t, outB, Map.of(), false, new TrainingRun.Listener() {
                @Override
                public boolean onStep(Trainer.StepStats s, double e, double rss) {
                    return s.step < 3; // stops after step 3; its last checkpoint is checkpoint-2
                }
            });
            assertFalse(r.completed());
        }
        assertTrue(Files.isRegularFile(outB.resolve("checkpoint-2").resolve("model.safetensors")),
                "a full checkpoint is a Hugging Face model directory");
        assertTrue(Files.isRegularFile(outB.resolve("checkpoint-2").resolve("config.json")));
        double[] lossB = new double[6];
        try (LoadedModel m = load("gpt2-a")) {
            FullModel fm = FullModel.of(m);
            Trainer t = new Trainer(fm, parts.train(), parts.eval(), cfg, false);
            Checkpoint.State s = Checkpoint.restore(t, Checkpoint.resolve(outB));
            assertEquals(2, s.step());
            assertEquals("full", s.kind());
            TrainingRun.run(t, outB, Map.of(), true, new TrainingRun.Listener() {
                @Override
                public boolean onStep(Trainer.StepStats st, double e, double rss) {
                    lossB[st.step] = st.loss;
                    return true;
                }
            });
            assertArrayEquals(a, fm.params().params(), "final parameters");
        }
        for (int step = 3; step <= 5; step++) assertEquals(lossA[step], lossB[step], 0.0, "loss of step " + step);

        // a LoRA trainer refuses the full checkpoint
        try (LoadedModel m = TrainFixtures.gpt2a("nf4");
             var lora = TrainFixtures.attach(m, TrainFixtures.lora(0.0), 1)) {
            Trainer t = new Trainer(lora, parts.train(), parts.eval(), cfg);
            TrainException e = assertThrows(TrainException.class, () -> Checkpoint.restore(t, Checkpoint.resolve(outB)));
            assertTrue(e.getMessage().contains("full"), e.getMessage());
        }
    }
}
