package dev.qlora4j.lora.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.qlora4j.lora.optim.AdamW;
import dev.qlora4j.lora.optim.LrSchedule;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Everything that decides the numbers of a training run (HF {@code TrainingArguments}' names in brackets), plus how
 * often to evaluate, save and log. One optimizer step consumes {@code gradAccum} micro-batches of
 * {@code batchSize × seqLen} tokens.
 *
 * @param batchSize      B, sequences per micro-batch [per_device_train_batch_size]
 * @param seqLen         T, tokens per sequence
 * @param gradAccum      micro-batches per optimizer step [gradient_accumulation_steps]
 * @param steps          optimizer steps in all [max_steps]
 * @param lr             peak learning rate [learning_rate]
 * @param schedule       lr schedule [lr_scheduler_type]
 * @param warmupSteps    linear warmup from 0 [warmup_steps]
 * @param weightDecay    decoupled weight decay on LoRA matrices [weight_decay]
 * @param beta1          AdamW β1 [adam_beta1]
 * @param beta2          AdamW β2 [adam_beta2]
 * @param eps            AdamW ε [adam_epsilon]
 * @param maxGradNorm    global-norm clipping threshold, 0 = off [max_grad_norm]
 * @param seed           seeds LoRA init, LoRA dropout masks, the data order and the eval split [seed]
 * @param evalEvery      evaluate every N steps (and after the last), 0 = only after the last [eval_steps]
 * @param evalBatches    at most this many eval batches per evaluation, 0 = the whole eval set
 * @param saveEvery      checkpoint every N steps (the last step is always saved), 0 = only the last [save_steps]
 * @param saveTotalLimit keep only the newest N checkpoints, 0 = keep all [save_total_limit]
 * @param logEvery       report progress every N steps (metrics.jsonl gets every step) [logging_steps]
 */
public record TrainConfig(int batchSize, int seqLen, int gradAccum, int steps, double lr, LrSchedule.Kind schedule,
                          int warmupSteps, double weightDecay, double beta1, double beta2, double eps,
                          double maxGradNorm, long seed, int evalEvery, int evalBatches, int saveEvery,
                          int saveTotalLimit, int logEvery) {

    public TrainConfig {
        positive("batch size", batchSize);
        positive("sequence length", seqLen);
        positive("gradient accumulation steps", gradAccum);
        positive("steps", steps);
        if (schedule == null) throw new IllegalArgumentException("lr schedule is null");
        if (schedule == LrSchedule.Kind.CONSTANT && warmupSteps > 0) schedule = LrSchedule.Kind.CONSTANT_WITH_WARMUP;
        nonNegative("warmup steps", warmupSteps);
        nonNegative("eval interval", evalEvery);
        nonNegative("eval batches", evalBatches);
        nonNegative("save interval", saveEvery);
        nonNegative("save total limit", saveTotalLimit);
        nonNegative("log interval", logEvery);
        if (!(maxGradNorm >= 0) || Double.isInfinite(maxGradNorm)) {
            throw new IllegalArgumentException("max grad norm must be finite and >= 0 (0 = no clipping), got " + maxGradNorm);
        }
        if ((long) batchSize * seqLen > Integer.MAX_VALUE / 8) {
            throw new IllegalArgumentException("batch " + batchSize + " × " + seqLen + " tokens is too large");
        }
        new LrSchedule(schedule, lr, warmupSteps, steps); // validates lr
        hyper(beta1, beta2, eps, weightDecay);            // validates the AdamW values
    }

    /** HF TrainingArguments' optimizer defaults (β 0.9/0.999, ε 1e-8, no decay, clip 1.0), linear schedule. */
    public static TrainConfig defaults(int batchSize, int seqLen, int steps, double lr) {
        return new TrainConfig(batchSize, seqLen, 1, steps, lr, LrSchedule.Kind.LINEAR, 0, 0.0, 0.9, 0.999, 1e-8, 1.0,
                42, 0, 0, 0, 0, 10);
    }

    public LrSchedule lrSchedule() {
        return new LrSchedule(schedule, lr, warmupSteps, steps);
    }

    public AdamW.Hyper adamHyper() {
        return hyper(beta1, beta2, eps, weightDecay);
    }

    private static AdamW.Hyper hyper(double beta1, double beta2, double eps, double wd) {
        return new AdamW.Hyper(beta1, beta2, eps, wd);
    }

    /** Input tokens per optimizer step: B · T · gradAccum. */
    public long tokensPerStep() {
        return (long) batchSize * seqLen * gradAccum;
    }

    // ------------------------------------------------------------------------------------------ withers

    public TrainConfig withSteps(int n) {
        return new TrainConfig(batchSize, seqLen, gradAccum, n, lr, schedule, warmupSteps, weightDecay, beta1, beta2,
                eps, maxGradNorm, seed, evalEvery, evalBatches, saveEvery, saveTotalLimit, logEvery);
    }

    public TrainConfig withSchedule(LrSchedule.Kind kind, int warmup) {
        return new TrainConfig(batchSize, seqLen, gradAccum, steps, lr, kind, warmup, weightDecay, beta1, beta2, eps,
                maxGradNorm, seed, evalEvery, evalBatches, saveEvery, saveTotalLimit, logEvery);
    }

    public TrainConfig withOptimizer(double lr, double weightDecay, double maxGradNorm) {
        return new TrainConfig(batchSize, seqLen, gradAccum, steps, lr, schedule, warmupSteps, weightDecay, beta1,
                beta2, eps, maxGradNorm, seed, evalEvery, evalBatches, saveEvery, saveTotalLimit, logEvery);
    }

    public TrainConfig withBatch(int batchSize, int gradAccum) {
        return new TrainConfig(batchSize, seqLen, gradAccum, steps, lr, schedule, warmupSteps, weightDecay, beta1,
                beta2, eps, maxGradNorm, seed, evalEvery, evalBatches, saveEvery, saveTotalLimit, logEvery);
    }

    public TrainConfig withSeed(long s) {
        return new TrainConfig(batchSize, seqLen, gradAccum, steps, lr, schedule, warmupSteps, weightDecay, beta1,
                beta2, eps, maxGradNorm, s, evalEvery, evalBatches, saveEvery, saveTotalLimit, logEvery);
    }

    public TrainConfig withIntervals(int evalEvery, int evalBatches, int saveEvery, int saveTotalLimit, int logEvery) {
        return new TrainConfig(batchSize, seqLen, gradAccum, steps, lr, schedule, warmupSteps, weightDecay, beta1,
                beta2, eps, maxGradNorm, seed, evalEvery, evalBatches, saveEvery, saveTotalLimit, logEvery);
    }

    // ------------------------------------------------------------------------------------------ resume checks

    /**
     * The fields that change the numbers and differ between a saved run's config and this one, as
     * {@code name saved → now}; empty when this run continues the saved one exactly. The step count may grow for a
     * constant schedule (its lr does not depend on it); evaluation, saving and logging intervals may change freely.
     */
    public List<String> differencesFrom(TrainConfig saved) {
        List<String> d = new ArrayList<>();
        diff(d, "batch", saved.batchSize, batchSize);
        diff(d, "seq", saved.seqLen, seqLen);
        diff(d, "grad-accum", saved.gradAccum, gradAccum);
        boolean constant = schedule == LrSchedule.Kind.CONSTANT || schedule == LrSchedule.Kind.CONSTANT_WITH_WARMUP;
        if (!constant) diff(d, "steps", saved.steps, steps);
        diff(d, "lr", saved.lr, lr);
        diff(d, "schedule", saved.schedule.hfName(), schedule.hfName());
        diff(d, "warmup", saved.warmupSteps, warmupSteps);
        diff(d, "weight-decay", saved.weightDecay, weightDecay);
        diff(d, "adam-beta1", saved.beta1, beta1);
        diff(d, "adam-beta2", saved.beta2, beta2);
        diff(d, "adam-eps", saved.eps, eps);
        diff(d, "clip", saved.maxGradNorm, maxGradNorm);
        diff(d, "seed", saved.seed, seed);
        return d;
    }

    private static void diff(List<String> out, String name, Object saved, Object now) {
        if (!saved.equals(now)) out.add("--" + name + " " + saved + " → " + now);
    }

    // ------------------------------------------------------------------------------------------ JSON

    public ObjectNode toJson() {
        ObjectNode o = JsonNodeFactory.instance.objectNode();
        o.put("per_device_train_batch_size", batchSize);
        o.put("seq_len", seqLen);
        o.put("gradient_accumulation_steps", gradAccum);
        o.put("max_steps", steps);
        o.put("learning_rate", lr);
        o.put("lr_scheduler_type", schedule.hfName());
        o.put("warmup_steps", warmupSteps);
        o.put("weight_decay", weightDecay);
        o.put("adam_beta1", beta1);
        o.put("adam_beta2", beta2);
        o.put("adam_epsilon", eps);
        o.put("max_grad_norm", maxGradNorm);
        o.put("seed", seed);
        o.put("eval_steps", evalEvery);
        o.put("eval_batches", evalBatches);
        o.put("save_steps", saveEvery);
        o.put("save_total_limit", saveTotalLimit);
        o.put("logging_steps", logEvery);
        return o;
    }

    /** Reads {@link #toJson()}'s output; {@code where} names the file in errors. */
    public static TrainConfig fromJson(JsonNode o, String where) {
        try {
            return new TrainConfig(req(o, "per_device_train_batch_size", where).asInt(), req(o, "seq_len", where).asInt(),
                    req(o, "gradient_accumulation_steps", where).asInt(), req(o, "max_steps", where).asInt(),
                    req(o, "learning_rate", where).asDouble(),
                    LrSchedule.Kind.parse(req(o, "lr_scheduler_type", where).asText()),
                    req(o, "warmup_steps", where).asInt(), req(o, "weight_decay", where).asDouble(),
                    req(o, "adam_beta1", where).asDouble(), req(o, "adam_beta2", where).asDouble(),
                    req(o, "adam_epsilon", where).asDouble(), req(o, "max_grad_norm", where).asDouble(),
                    req(o, "seed", where).asLong(), o.path("eval_steps").asInt(0), o.path("eval_batches").asInt(0),
                    o.path("save_steps").asInt(0), o.path("save_total_limit").asInt(0), o.path("logging_steps").asInt(10));
        } catch (IllegalArgumentException e) {
            throw new TrainException(where + ": bad trainer config: " + e.getMessage(), e);
        }
    }

    private static JsonNode req(JsonNode o, String key, String where) {
        JsonNode v = o.get(key);
        if (v == null || v.isNull()) throw new TrainException(where + ": trainer config lacks \"" + key + "\"");
        return v;
    }

    /** One line for logs: {@code 200 steps × 4×256 tokens × accum 2, lr 2e-4 linear (warmup 10), ...}. */
    public String summary() {
        return String.format(Locale.ROOT, "%d steps × %d×%d tokens%s, lr %s %s%s, weight decay %s, clip %s, seed %d",
                steps, batchSize, seqLen, gradAccum > 1 ? " × accum " + gradAccum : "", num(lr), schedule.hfName(),
                warmupSteps > 0 ? " (warmup " + warmupSteps + ")" : "", num(weightDecay),
                maxGradNorm > 0 ? num(maxGradNorm) : "off", seed);
    }

    /** 8, 0.003, 2e-04: short and exact enough for a log line. */
    static String num(double v) {
        if (v == Math.rint(v) && Math.abs(v) < 1e6) return Long.toString((long) v);
        if (Math.abs(v) >= 1e-3) return String.format(Locale.ROOT, "%.4g", v).replaceAll("\\.?0+$", "");
        return String.format(Locale.ROOT, "%.3e", v).replaceAll("\\.?0+e", "e");
    }

    private static void positive(String what, int v) {
        if (v < 1) throw new IllegalArgumentException(what + " must be >= 1, got " + v);
    }

    private static void nonNegative(String what, int v) {
        if (v < 0) throw new IllegalArgumentException(what + " must be >= 0, got " + v);
    }
}
