package dev.qlora4j.lora.train;

import dev.qlora4j.lora.adapter.LoraModel;
import dev.qlora4j.lora.data.Dataset;
import dev.qlora4j.lora.data.EvalSplit;
import dev.qlora4j.lora.optim.LrSchedule;
import dev.qlora4j.runtime.load.LoadedModel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Learning works: QLoRA (NF4 base, LoRA r=8 on c_attn/c_proj/c_fc) on the generated "number → English words" task
 * ({@code "4711 ="} → {@code " four thousand seven hundred eleven"}, loss on the completion only) lowers the
 * held-out loss clearly. The base is gpt2-a, a random 2-layer GPT-2 (C=64) with GPT-2's 50257-token vocabulary.
 */
class LearningTest {

    @TempDir
    Path tmp;

    @Test
    void loraLowersHeldOutLossOnNumbersToWords() throws Exception {
        int steps = Integer.getInteger("qlora.learningSteps", 150);
        Dataset d = TrainFixtures.numbers(tmp, 800, 2024, 16);
        TrainConfig cfg = TrainConfig.defaults(8, 16, steps, 3e-3).withSchedule(LrSchedule.Kind.COSINE, 10)
                .withOptimizer(3e-3, 0.0, 1.0).withSeed(1).withIntervals(25, 0, 0, 1, 1);
        EvalSplit.Parts parts = EvalSplit.count(64).apply(d.examples(), cfg.seed());
        List<String> curve = new ArrayList<>();
        TrainingRun.Result r;
        try (LoadedModel m = TrainFixtures.gpt2a("nf4"); LoraModel lora = TrainFixtures.attach(m, TrainFixtures.lora(0.05), cfg.seed())) {
            Trainer t = new Trainer(lora, parts.train(), parts.eval(), cfg);
            r = TrainingRun.run(t, tmp.resolve("out"), Map.of(), false, new TrainingRun.Listener() {
                @Override
                public void onEval(int step, double loss) {
                    curve.add(String.format(Locale.ROOT, "%d:%.3f", step, loss));
                }
            });
        }
        System.out.printf(Locale.ROOT, "numbers→words on gpt2-a (nf4), %d steps of 8×16: eval loss %s; %.1f tok/s, %.2f steps/s, peak RSS %.0f MiB%n",
                steps, curve, r.tokensPerSecond(), r.steps() * 1e9 / r.trainNanos(), r.peakRssMib());
        assertTrue(r.completed());
        assertTrue(r.evalLoss() < 0.5 * r.firstEvalLoss(), "held-out loss went from " + r.firstEvalLoss() + " to " + r.evalLoss()
                + " (" + curve + ")");
    }
}
