package dev.qlora4j.lora.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.qlora4j.lora.adapter.AdapterWriter;
import dev.qlora4j.lora.adapter.LoraConfig;
import dev.qlora4j.lora.adapter.LoraModel;
import dev.qlora4j.lora.data.Dataset;
import dev.qlora4j.lora.data.EvalSplit;
import dev.qlora4j.lora.optim.LrSchedule;
import dev.qlora4j.runtime.load.LoadedModel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class TrainerTest {

    @TempDir
    Path tmp;

    /** 6 steps, grad-accum 2, LoRA dropout, warmup + linear decay, clipping, eval every 2, checkpoint every 3. */
    private TrainConfig resumeConfig() {
        return TrainConfig.defaults(2, 16, 6, 5e-3).withBatch(2, 2).withSchedule(LrSchedule.Kind.LINEAR, 2)
                .withOptimizer(5e-3, 0.01, 0.5).withSeed(7).withIntervals(2, 2, 3, 0, 1);
    }

    /** Records every step's loss and eval loss; stops after {@code stopAfter} steps. */
    private static final class Recorder implements TrainingRun.Listener {
        final double[] loss = new double[64], eval = new double[64];
        final int stopAfter;

        Recorder(int stopAfter) {
            this.stopAfter = stopAfter;
            Arrays.fill(loss, Double.NaN);
            Arrays.fill(eval, Double.NaN);
        }

        @Override
        public boolean onStep(Trainer.StepStats s, double evalLoss, double rssMib) {
            loss[s.step] = s.loss;
            eval[s.step] = evalLoss;
            return s.step < stopAfter;
        }
    }

    /** Plain LoRA, and LoRA with modules_to_save LayerNorms (their copies in the adapter, checkpoint and optimizer). */
    @ParameterizedTest(name = "modules_to_save={0}")
    @ValueSource(strings = {"", "ln_1,ln_f"})
    void resumedRunEqualsUninterruptedRun(String modulesToSave) throws Exception {
        LoraConfig loraCfg = modulesToSave.isEmpty() ? TrainFixtures.lora(0.1)
                : TrainFixtures.lora(0.1).toBuilder().modulesToSave(List.of(modulesToSave.split(","))).build();
        TrainFixtures.warmUpKernels(tmp);
        Dataset d = TrainFixtures.numbers(tmp, 48, 1, 16);
        TrainConfig cfg = resumeConfig();
        EvalSplit.Parts parts = TrainFixtures.split(d, 0.2, cfg.seed());
        Path outA = tmp.resolve("a"), outB = tmp.resolve("b");

        Recorder a = new Recorder(Integer.MAX_VALUE);
        float[] paramsA;
        try (LoadedModel m = TrainFixtures.gpt2a("nf4"); LoraModel lora = TrainFixtures.attach(m, loraCfg, cfg.seed())) {
            Trainer t = new Trainer(lora, parts.train(), parts.eval(), cfg);
            TrainingRun.Result r = TrainingRun.run(t, outA, Map.of("what", "uninterrupted"), false, a);
            assertTrue(r.completed());
            assertEquals(6, r.steps());
            paramsA = lora.params().params().clone();
        }

        // the same run, stopped after step 4 (its last checkpoint is checkpoint-3) ...
        Recorder b1 = new Recorder(4);
        try (LoadedModel m = TrainFixtures.gpt2a("nf4"); LoraModel lora = TrainFixtures.attach(m, loraCfg, cfg.seed())) {
            Trainer t = new Trainer(lora, parts.train(), parts.eval(), cfg);
            TrainingRun.Result r = TrainingRun.run(t, outB, Map.of(), false, b1);
            assertFalse(r.completed());
            assertEquals(4, r.steps());
        }
        assertEquals(List.of(outB.resolve("checkpoint-3").toAbsolutePath()), Checkpoint.list(outB).stream().map(Path::toAbsolutePath).toList());
        assertFalse(Files.exists(outB.resolve(AdapterWriter.WEIGHTS)), "an interrupted run writes no final adapter");

        // ... and resumed in a fresh model from the output directory's newest checkpoint, with other init
        Recorder b2 = new Recorder(Integer.MAX_VALUE);
        float[] paramsB;
        try (LoadedModel m = TrainFixtures.gpt2a("nf4");
             LoraModel lora = LoraModel.load(m.model(), Checkpoint.resolve(outB), cfg.seed())) {
            Trainer t = new Trainer(lora, parts.train(), parts.eval(), cfg);
            Checkpoint.State s = Checkpoint.restore(t, Checkpoint.resolve(outB));
            assertEquals(3, s.step());
            assertEquals(6, s.microStep());
            TrainingRun.Result r = TrainingRun.run(t, outB, Map.of(), true, b2);
            assertTrue(r.completed());
            paramsB = lora.params().params().clone();
            if (!modulesToSave.isEmpty()) {
                assertEquals(List.of("transformer.h.0.ln_1", "transformer.h.1.ln_1", "transformer.ln_f"),
                        lora.modulesToSave().paths());
                float[] lnF = lora.params().copyOf(lora.params().slice("base_model.model.transformer.ln_f.weight"));
                assertArrayEquals(lnF, m.model().weights().lnF().gamma(), "the model computes with the trained ln_f");
                try (LoadedModel fresh = TrainFixtures.gpt2a("nf4")) {
                    assertFalse(Arrays.equals(fresh.model().weights().lnF().gamma(), lnF), "ln_f's copy trained");
                }
            }
        }
        for (int step = 1; step <= 6; step++) {
            double want = a.loss[step];
            double got = step <= 3 ? b1.loss[step] : b2.loss[step];
            assertEquals(want, got, 0.0, "loss of step " + step);
            if (step == 4) assertEquals(want, b1.loss[4], 0.0, "step 4 before the interruption");
        }
        assertEquals(a.eval[4], b2.eval[4], 0.0);
        assertEquals(a.eval[6], b2.eval[6], 0.0);
        assertArrayEquals(paramsA, paramsB, "final adapter parameters");
        assertArrayEquals(Files.readAllBytes(outA.resolve(AdapterWriter.WEIGHTS)), Files.readAllBytes(outB.resolve(AdapterWriter.WEIGHTS)));

        // metrics.jsonl of the resumed run: steps 1..6 once each, with the uninterrupted run's losses
        List<JsonNode> la = metrics(outA), lb = metrics(outB);
        assertEquals(6, lb.size());
        for (int i = 0; i < 6; i++) {
            assertEquals(i + 1, lb.get(i).get("step").asInt());
            assertEquals(la.get(i).get("loss").asDouble(), lb.get(i).get("loss").asDouble(), 0.0);
            assertEquals(la.get(i).get("lr").asDouble(), lb.get(i).get("lr").asDouble(), 0.0);
            for (String k : List.of("loss", "lr", "grad_norm", "tokens_per_s", "rss_mib")) {
                assertTrue(lb.get(i).has(k), k);
            }
            assertEquals((i + 1) % 2 == 0, lb.get(i).has("eval_loss"), "eval_loss on eval steps only");
        }
        assertEquals(0.0, la.get(0).get("lr").asDouble(), "first warmup step runs at lr 0, as HF");
    }

    private static List<JsonNode> metrics(Path out) throws Exception {
        ObjectMapper om = new ObjectMapper();
        List<JsonNode> l = new ArrayList<>();
        for (String line : Files.readAllLines(out.resolve(MetricsLog.FILE))) l.add(om.readTree(line));
        return l;
    }

    @Test
    void checkpointHoldsAdapterOptimizerAndStateAndRefusesOtherSettings() throws Exception {
        Dataset d = TrainFixtures.numbers(tmp, 24, 2, 16);
        TrainConfig cfg = resumeConfig().withSteps(2).withIntervals(0, 0, 1, 1, 1);
        Path out = tmp.resolve("out");
        try (LoadedModel m = TrainFixtures.gpt2a("none"); LoraModel lora = TrainFixtures.attach(m, TrainFixtures.lora(0), cfg.seed())) {
            Trainer t = new Trainer(lora, d.examples(), null, cfg);
            TrainingRun.run(t, out, Map.of("base_model", "gpt2-a"), false, null);
        }
        List<Path> cks = Checkpoint.list(out);
        assertEquals(1, cks.size(), "save_total_limit 1 keeps the newest only: " + cks);
        Path ck = cks.getFirst();
        assertEquals("checkpoint-2", ck.getFileName().toString());
        for (String f : List.of("adapter_config.json", "adapter_model.safetensors", Checkpoint.OPTIMIZER, Checkpoint.STATE)) {
            assertTrue(Files.isRegularFile(ck.resolve(f)), f);
        }
        try (var s = Files.list(out)) {
            assertTrue(s.noneMatch(p -> p.getFileName().toString().startsWith(".")), "no temporary leftovers");
        }
        Checkpoint.State st = Checkpoint.readState(ck);
        assertEquals(2, st.step());
        assertEquals(cfg, st.config());
        assertEquals("gpt2-a", st.run().get("base_model").asText());

        try (LoadedModel m = TrainFixtures.gpt2a("none"); LoraModel lora = LoraModel.load(m.model(), ck, cfg.seed())) {
            Trainer other = new Trainer(lora, d.examples(), null, cfg.withOptimizer(1e-3, 0.01, 0.5));
            TrainException e = assertThrows(TrainException.class, () -> Checkpoint.restore(other, ck));
            assertTrue(e.getMessage().contains("--lr 0.005 → 0.001"), e.getMessage());
            Dataset otherData = TrainFixtures.numbers(tmp, 24, 3, 16);
            Trainer wrongData = new Trainer(lora, otherData.examples(), null, cfg);
            e = assertThrows(TrainException.class, () -> Checkpoint.restore(wrongData, ck));
            assertTrue(e.getMessage().contains("another training set"), e.getMessage());
        }
        Files.writeString(ck.resolve(Checkpoint.STATE), "{\"format\": \"something else\"}");
        TrainException e = assertThrows(TrainException.class, () -> Checkpoint.readState(ck));
        assertTrue(e.getMessage().contains("not a qlora4j trainer state"), e.getMessage());
        e = assertThrows(TrainException.class, () -> Checkpoint.resolve(tmp.resolve("nothing")));
        assertTrue(e.getMessage().contains("no such checkpoint"), e.getMessage());
    }

    /**
     * Two micro-batches of one sequence give the gradient of one batch of two, with per-token normalization over the
     * whole step (the two sequences have different numbers of completion tokens).
     */
    @Test
    void gradientAccumulationEqualsOneLargerBatch() throws Exception {
        Dataset d = TrainFixtures.numbers(tmp, 16, 4, 16);
        LoraConfig lc = TrainFixtures.lora(0).toBuilder().initLoraWeights(false).build(); // B ≠ 0: dA ≠ 0 at step 1
        TrainConfig base = TrainConfig.defaults(1, 16, 3, 1e-3).withOptimizer(1e-3, 0, 0);
        double[][] loss = new double[2][3];
        float[][][] grads = new float[2][3][];
        long[] targets = new long[2];
        for (int run = 0; run < 2; run++) {
            TrainConfig cfg = run == 0 ? base.withBatch(1, 2) : base.withBatch(2, 1);
            try (LoadedModel m = TrainFixtures.gpt2a("none"); LoraModel lora = TrainFixtures.attach(m, lc, 11)) {
                Trainer t = new Trainer(lora, d.examples(), null, cfg);
                for (int s = 0; s < 3; s++) {
                    Trainer.StepStats st = t.step();
                    loss[run][s] = st.loss;
                    grads[run][s] = lora.params().grads().clone();
                    if (s == 0) targets[run] = st.targets;
                }
            }
        }
        assertEquals(targets[0], targets[1]);
        for (int s = 0; s < 3; s++) {
            assertEquals(loss[1][s], loss[0][s], 1e-5 * Math.abs(loss[1][s]), "loss of step " + (s + 1));
            float[] want = grads[1][s], got = grads[0][s];
            double scale = 0;
            for (float g : want) scale = Math.max(scale, Math.abs(g));
            assertTrue(scale > 0);
            for (int i = 0; i < want.length; i++) {
                int idx = i, step = s;
                assertEquals(want[i], got[i], 1e-5 * scale, () -> "grad " + idx + " of step " + (step + 1));
            }
        }
    }

    /** The step allocates nothing once warm: no per-step arrays, boxing or iterators on any thread. */
    @Test
    void trainingStepIsAllocationFree() throws Exception {
        Dataset d = TrainFixtures.numbers(tmp, 32, 5, 16);
        TrainConfig cfg = TrainConfig.defaults(2, 16, 200, 1e-3).withBatch(2, 2);
        var mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        try (LoadedModel m = TrainFixtures.gpt2a("nf4"); LoraModel lora = TrainFixtures.attach(m, TrainFixtures.lora(0.1), 3)) {
            Trainer t = new Trainer(lora, d.examples(), null, cfg);
            for (int i = 0; i < 60; i++) t.step(); // warm up (JIT, pool threads, lazy scratch; the LM head sees chunks of
            // every size, the small ones through the GEMV path, so C2 needs a while to compile them all)
            // Rounds of 10 steps until one allocates nothing: on a loaded machine C2 may still be compiling (code that
            // is not yet compiled allocates its vectors); a step that really allocates does so in every round.
            int steps = 10, rounds = 8;
            long total = Long.MAX_VALUE;
            for (int round = 0; round < rounds && total >= 256L * steps; round++) {
                long[] ids = Thread.getAllStackTraces().keySet().stream().mapToLong(Thread::threadId).toArray();
                long[] before = mx.getThreadAllocatedBytes(ids);
                for (int i = 0; i < steps; i++) t.step();
                long[] after = mx.getThreadAllocatedBytes(ids);
                total = 0;
                for (int i = 0; i < ids.length; i++) if (before[i] >= 0 && after[i] >= 0) total += after[i] - before[i];
            }
            assertTrue(total < 256L * steps, "the training step allocated " + total + " bytes over " + steps
                    + " steps in each of " + rounds + " rounds");
            // the measurement itself sees allocations
            long me = Thread.currentThread().threadId(), b0 = mx.getThreadAllocatedBytes(me);
            byte[] probe = new byte[1 << 20];
            assertTrue(mx.getThreadAllocatedBytes(me) - b0 >= probe.length, "allocation accounting is on");
        }
    }
}
