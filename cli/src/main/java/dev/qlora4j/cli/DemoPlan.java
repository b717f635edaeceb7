package dev.qlora4j.cli;

import dev.qlora4j.lora.train.TrainConfig;

import java.util.List;

/**
 * The sizes and hyperparameters of one {@code qlora demo} run: the task's defaults, or the tiny {@code --quick} ones,
 * with {@code --steps} and {@code --lr} applied.
 *
 * <p>The full defaults are sized for the built-in model (GPT-2, 6 layers × 256 channels, vocabulary 50,257) on two
 * cores: a LoRA step of 8 × 10 tokens (numbers) costs about 0.33 s of CPU, 0.2 s of wall time on an idle machine and
 * 0.4 s while another job holds the cores (most of it the 50,257-row LM head); 4 × 128 tokens (prompts) about 2 s
 * under the same load. The whole numbers demo then takes about 2 minutes idle, 3 under load; prompts about 2 and 4.
 * The learning rates and step counts were chosen on intermediate checkpoints of the built-in model's pre-training
 * and want checking on the final one.
 *
 * @param trainCount   numbers task: training numbers; prompts task: unused (all rows not held out)
 * @param heldOutCount numbers: held-out numbers (held-out loss); prompts: held-out acts
 * @param scoreCount   numbers: held-out numbers scored by exact match before and after
 * @param samples      rows of the before/after table
 * @param sampleTokens new tokens per before/after sample (numbers: 12, room for the longest, 9 words + EOS, and a run-on)
 * @param maxDigits    numbers: 1..maxDigits digits
 * @param promptsSeq   prompts: tokens per training example (longer rows are truncated)
 * @param prompts      the prompts of the greedy-generation section
 * @param promptTokens new tokens per greedy-generation prompt
 */
record DemoPlan(int steps, double lr, int batch, int warmup, int loraR, int loraAlpha, int evalEvery, int trainCount,
                int heldOutCount, int scoreCount, int samples, int sampleTokens, int maxDigits, int promptsSeq, List<String> prompts,
                int promptTokens) {

    static final List<String> PROMPTS = List.of("The meaning of life is", "Once upon a time,",
            "The best way to learn a new language is");

    static DemoPlan of(DemoCommand.Task task, boolean quick, Integer steps, Double lr, Integer maxDigits) {
        if (steps != null && steps < 1) throw new CliError("--steps must be at least 1, got " + steps);
        if (maxDigits != null && task != DemoCommand.Task.numbers) throw new CliError("--max-digits applies to --task numbers");
        if (maxDigits != null && (maxDigits < 1 || maxDigits > 6)) {
            throw new CliError("--max-digits must be in [1, 6], got " + maxDigits);
        }
        if (lr != null && !(lr > 0 && Double.isFinite(lr))) throw new CliError("--lr must be > 0, got " + lr);
        DemoPlan p = switch (task) {
            case numbers -> quick
                    ? new DemoPlan(4, 1e-2, 4, 0, 4, 8, 2, 48, 8, 4, 3, 12, 4, 0, PROMPTS.subList(0, 2), 6)
                    : new DemoPlan(400, 3e-3, 8, 20, 16, 32, 100, 2000, 200, 100, 6, 12, 4, 0, PROMPTS, 24);
            case prompts -> quick
                    ? new DemoPlan(3, 1e-2, 2, 0, 4, 8, 3, 0, 4, 0, 2, 6, 0, 32, PROMPTS.subList(0, 2), 6)
                    : new DemoPlan(100, 1e-3, 4, 10, 16, 32, 50, 0, 16, 0, 3, 60, 0, 128, PROMPTS, 24);
        };
        int digits = maxDigits != null ? maxDigits : p.maxDigits;
        int train = p.trainCount, heldOut = p.heldOutCount;
        if (task == DemoCommand.Task.numbers && train + heldOut > pow10(digits) / 2) { // NumberWords.split's limit
            heldOut = Math.max(1, Math.min(heldOut, pow10(digits) / 10));
            train = pow10(digits) / 2 - heldOut;
        }
        return new DemoPlan(steps != null ? steps : p.steps, lr != null ? lr : p.lr, p.batch, p.warmup, p.loraR,
                p.loraAlpha, p.evalEvery, train, heldOut, Math.min(p.scoreCount, heldOut), p.samples, p.sampleTokens,
                digits, p.promptsSeq, p.prompts, p.promptTokens);
    }

    private static int pow10(int d) {
        int p = 1;
        for (int i = 0; i < d; i++) p *= 10;
        return p;
    }

    /**
     * Cosine schedule with the plan's warmup (at most a tenth of the steps); held-out loss every {@link #evalEvery}
     * steps on about 100 examples.
     */
    TrainConfig trainConfig(int seqLen, long seed) {
        return DemoCommand.config(batch, seqLen, steps, lr, Math.min(warmup, steps / 10), seed, evalEvery,
                Math.max(1, (100 + batch - 1) / batch));
    }
}
