package dev.qlora4j.cli;

import dev.qlora4j.lora.train.TrainConfig;

import java.util.List;

/**
 * The sizes and hyperparameters of one {@code qlora demo} run: the task's defaults, or the tiny {@code --quick} ones,
 * with {@code --steps} and {@code --lr} applied.
 *
 * <p>The full defaults are sized for the built-in model (GPT-2, 6 layers × 256 channels, vocabulary 50,257) on two
 * cores: a LoRA step of 8 × 11 tokens (numbers) takes about 0.11 s of wall time on a quiet machine and 0.2–0.3 s
 * while other jobs hold the cores (most of it the 50,257-row LM head); 4 × 128 tokens (prompts) about 2 s under load.
 *
 * <p>Numbers task, chosen by measurement on the built-in model (bench/RESULTS.md, "The demo (issue 5)"): with LoRA
 * alone (r 16 on every linear layer) the completion loss stalls near 3.7 in 400 steps, the frozen final LayerNorm
 * bounding the logits of the tied LM head; a trained copy of {@code ln_f} (PEFT's {@code modules_to_save}) brings
 * it to 2.3, spaced digits (one token per digit) to 1.6, and the digit-to-word alignment is then learned after a
 * few hundred more steps: 1200 steps at lr 3e-3 (cosine) with the gradient clipped at 0.3 (QLoRA's max_grad_norm)
 * reached a held-out loss of 0.20 and 83% exact match; 1200 steps clipped at 1.0 56%; 1000 steps 2–23%. All
 * LayerNorms instead of ln_f, r 64, or a higher lr did not help.
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
record DemoPlan(int steps, double lr, int batch, int warmup, double clip, int loraR, int loraAlpha,
                List<String> modulesToSave, int evalEvery, int trainCount, int heldOutCount, int scoreCount, int samples,
                int sampleTokens, int maxDigits, int promptsSeq, List<String> prompts, int promptTokens) {

    /** The numbers task trains the final LayerNorm next to the adapter (PEFT's modules_to_save, see the class comment). */
    static final List<String> LN_F = List.of("ln_f");

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
                    ? new DemoPlan(4, 1e-2, 4, 0, 0.3, 4, 8, LN_F, 2, 48, 8, 4, 3, 12, 4, 0, PROMPTS.subList(0, 2), 6)
                    : new DemoPlan(1200, 3e-3, 8, 20, 0.3, 16, 32, LN_F, 200, 2000, 200, 100, 6, 12, 4, 0, PROMPTS, 24);
            case prompts -> quick
                    ? new DemoPlan(3, 1e-2, 2, 0, 1.0, 4, 8, List.of(), 3, 0, 4, 0, 2, 6, 0, 32, PROMPTS.subList(0, 2), 6)
                    : new DemoPlan(100, 1e-3, 4, 10, 1.0, 16, 32, List.of(), 50, 0, 16, 0, 3, 60, 0, 128, PROMPTS, 24);
        };
        int digits = maxDigits != null ? maxDigits : p.maxDigits;
        int train = p.trainCount, heldOut = p.heldOutCount;
        if (task == DemoCommand.Task.numbers && train + heldOut > pow10(digits) / 2) { // NumberWords.split's limit
            heldOut = Math.max(1, Math.min(heldOut, pow10(digits) / 10));
            train = pow10(digits) / 2 - heldOut;
        }
        return new DemoPlan(steps != null ? steps : p.steps, lr != null ? lr : p.lr, p.batch, p.warmup, p.clip, p.loraR,
                p.loraAlpha, p.modulesToSave, p.evalEvery, train, heldOut, Math.min(p.scoreCount, heldOut), p.samples,
                p.sampleTokens, digits, p.promptsSeq, p.prompts, p.promptTokens);
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
        return DemoCommand.config(batch, seqLen, steps, lr, Math.min(warmup, steps / 10), clip, seed, evalEvery,
                Math.max(1, (100 + batch - 1) / batch));
    }
}
