package dev.qlora4j.lora.train;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

/**
 * Drives a {@link Trainer} to its last step with the files of a run in {@code out}: {@code metrics.jsonl} (every
 * step), an evaluation every {@link TrainConfig#evalEvery()} steps and after the last (plus one before the first
 * step of a fresh run), {@code checkpoint-<step>/} every {@link TrainConfig#saveEvery()} steps and after the last
 * (the oldest pruned beyond {@link TrainConfig#saveTotalLimit()}), and finally the trained weights in {@code out}:
 * the adapter ({@code adapter_config.json}, {@code adapter_model.safetensors}) or, for a full fine-tune, the model's
 * files ({@code config.json}, {@code model.safetensors}, tokenizer files).
 */
public final class TrainingRun {

    /** Progress callbacks, all on the training thread. */
    public interface Listener {
        /** After every step (after its evaluation and checkpoint, if any); return false to stop the run there. */
        default boolean onStep(Trainer.StepStats s, double evalLoss, double rssMib) {
            return true;
        }

        /** After each evaluation, including the one at step 0 of a fresh run. */
        default void onEval(int step, double loss) {
        }

        default void onCheckpoint(Path dir) {
        }
    }

    /**
     * @param completed    whether the run reached its last step (else a listener stopped it)
     * @param evalLoss     the last evaluation's loss, NaN without eval data
     * @param trainNanos   time spent in training steps (evaluations and saving excluded)
     * @param tokens       input tokens trained on in this session
     */
    public record Result(int steps, boolean completed, double lastLoss, double firstEvalLoss, double evalLoss,
                         Path lastCheckpoint, long trainNanos, long tokens, double peakRssMib) {
        public double tokensPerSecond() {
            return trainNanos == 0 ? 0 : tokens * 1e9 / trainNanos;
        }
    }

    private TrainingRun() {
    }

    /**
     * @param resumed whether {@code t} was restored from a checkpoint (metrics.jsonl then keeps its earlier steps)
     * @param run     recorded in every checkpoint's trainer_state.json under "run"
     */
    public static Result run(Trainer t, Path out, Map<String, String> run, boolean resumed, Listener listener)
            throws IOException {
        TrainConfig cfg = t.config();
        Listener l = listener != null ? listener : new Listener() {
        };
        double firstEval = Double.NaN, lastEval = Double.NaN, lastLoss = Double.NaN;
        Path lastCheckpoint = null;
        long nanos = 0, tokens = 0;
        boolean completed = t.finished();
        try (MetricsLog metrics = new MetricsLog(out, resumed ? t.stepsDone() : -1)) {
            if (!resumed && t.stepsDone() == 0 && t.hasEvalData()) {
                firstEval = lastEval = t.evaluate();
                l.onEval(0, firstEval);
            }
            while (!t.finished()) {
                Trainer.StepStats s = t.step();
                nanos += s.nanos;
                tokens += s.tokens;
                lastLoss = s.loss;
                boolean last = t.finished();
                double ev = Double.NaN;
                if (t.hasEvalData() && (last || cfg.evalEvery() > 0 && s.step % cfg.evalEvery() == 0)) {
                    ev = lastEval = t.evaluate();
                    if (Double.isNaN(firstEval)) firstEval = ev;
                    l.onEval(s.step, ev);
                }
                double rss = ProcessMemory.rssMib();
                metrics.write(s, t.epoch(), rss, ev);
                if (last || cfg.saveEvery() > 0 && s.step % cfg.saveEvery() == 0) {
                    lastCheckpoint = Checkpoint.write(t, out, run);
                    Checkpoint.prune(out, cfg.saveTotalLimit());
                    l.onCheckpoint(lastCheckpoint);
                }
                if (last) completed = true;
                if (!l.onStep(s, ev, rss)) break;
            }
        }
        if (completed) t.trainable().writeWeights(out);
        return new Result(t.stepsDone(), completed, lastLoss, firstEval, lastEval, lastCheckpoint, nanos, tokens,
                ProcessMemory.peakRssMib());
    }
}
