package dev.qlora4j.lora.train;

import dev.qlora4j.lora.adapter.LoraModel;
import dev.qlora4j.lora.data.Batch;
import dev.qlora4j.lora.data.Batches;
import dev.qlora4j.lora.data.DataException;
import dev.qlora4j.lora.data.DataPosition;
import dev.qlora4j.lora.data.Examples;
import dev.qlora4j.lora.optim.AdamW;
import dev.qlora4j.lora.optim.GradClip;
import dev.qlora4j.lora.optim.LrSchedule;
import dev.qlora4j.lora.optim.ParamSlice;
import dev.qlora4j.lora.params.ParamBuffer;
import dev.qlora4j.runtime.model.DecoderBackward;
import dev.qlora4j.runtime.model.DecoderModel;
import dev.qlora4j.runtime.model.Dropout;
import dev.qlora4j.runtime.model.KvCache;
import dev.qlora4j.runtime.model.Workspace;
import dev.qlora4j.runtime.ops.LmHeadLoss;

import java.util.ArrayList;
import java.util.List;

/**
 * The LoRA training step, llm.c style: everything (workspace with saved activations, KV cache, backward buffers,
 * the LM head's logits chunk, the micro-batches, AdamW's moments) is allocated in the constructor and
 * {@link #step()} allocates nothing.
 *
 * <p>One optimizer step: zero the LoRA grads; fill {@code gradAccum} micro-batches; for each, forward with
 * {@link LoraModel#setStep} = the global micro-step (it keys the LoRA dropout masks), then the fused chunked LM head +
 * cross-entropy and the backward; global-norm clipping; AdamW at the schedule's lr for this step.
 *
 * <p><b>Loss normalization</b>: per token over the whole optimizer step, as transformers' Trainer does since 4.46
 * ({@code num_items_in_batch}): every micro-batch's summed token loss is divided by the number of non-ignored targets
 * of <em>all</em> micro-batches of the step, so B micro-batches of 1 give the same gradient as one batch of B even
 * when their target counts differ (prompt/completion data). The reported loss is that token-weighted mean.
 *
 * <p><b>Randomness</b>: LoRA init, LoRA dropout (a counter-based hash of seed, module, micro-step, row, column), the
 * data order (a pure function of seed and epoch) and the eval split all derive from {@link TrainConfig#seed()}, so
 * the whole RNG state is {@code (seed, micro-step, data position)} and a restored run continues bit for bit (for a
 * fixed kernel thread count).
 *
 * <p><b>Base-model dropout</b> (GPT-2's embd/attn/resid_pdrop, BLOOM's hidden/attention_dropout) applies when the
 * model has a {@link Dropout} ({@link DecoderModel#setDropout}): the trainer switches it to training mode only inside
 * {@link #step()}, keyed by the micro-step like the LoRA dropout, so {@link #evaluate()} and generation run without
 * it. Without one, the base runs as in {@code model.eval()} while the LoRA layers run in train mode — equivalent to
 * training with those probabilities set to 0 in config.json.
 */
public final class Trainer {

    /** What one optimizer step did; one instance per trainer, overwritten by every {@link #step()}. */
    public static final class StepStats {
        /** 1-based number of the optimizer step just taken. */
        public int step;
        /** Token-weighted mean loss over the step's micro-batches. */
        public double loss;
        /** Learning rate this step used. */
        public double lr;
        /** Global L2 norm of the gradient before clipping. */
        public double gradNorm;
        /** Input tokens processed (B·T·gradAccum) and non-ignored targets among them. */
        public long tokens, targets;
        /** Wall time of the step. */
        public long nanos;

        public double tokensPerSecond() {
            return nanos == 0 ? 0 : tokens * 1e9 / nanos;
        }
    }

    private final Trainable trainable;
    private final DecoderModel model;
    private final TrainConfig cfg;
    private final Examples eval;
    private final Batches batches;
    private final Batch[] micro;     // gradAccum × (B, T)
    private final Batch evalBatch;   // (B, T)
    private final Workspace ws;      // (B, T) activations saved for backward
    private final KvCache cache;     // (B, T) keys and values of the forward = saved K/V
    private final DecoderBackward bwd;
    private final LmHeadLoss head;   // chunked LM head + cross-entropy over ws.logits
    private final AdamW adamw;
    private final List<ParamSlice> slices;
    private final LrSchedule schedule;
    private final StepStats stats = new StepStats();
    private int step; // optimizer steps done

    /**
     * @param train training examples of {@code cfg.seqLen()} tokens
     * @param eval  held-out examples (same length), or null / empty for no evaluation
     */
    public Trainer(LoraModel lora, Examples train, Examples eval, TrainConfig cfg) throws DataException {
        this(lora, train, eval, cfg, false);
    }

    /**
     * @param gradientCheckpointing keep only each block's input and recompute the block in the backward pass: about
     *                              one more forward of compute for roughly L times less activation memory; the
     *                              numbers are the same
     */
    public Trainer(LoraModel lora, Examples train, Examples eval, TrainConfig cfg, boolean gradientCheckpointing)
            throws DataException {
        this(new LoraTrainable(lora), train, eval, cfg, gradientCheckpointing);
    }

    /**
     * Trains any {@link Trainable}: a LoRA adapter or every weight of the model ({@code FullModel}).
     *
     * @param gradientCheckpointing see {@link #Trainer(LoraModel, Examples, Examples, TrainConfig, boolean)}
     */
    public Trainer(Trainable trainable, Examples train, Examples eval, TrainConfig cfg, boolean gradientCheckpointing)
            throws DataException {
        this.trainable = trainable;
        this.model = trainable.model();
        this.cfg = cfg;
        int b = cfg.batchSize(), t = cfg.seqLen();
        if (t > model.spec().maxT()) {
            throw new IllegalArgumentException("sequence length " + t + " exceeds the model's " + model.spec().maxT()
                    + " positions");
        }
        checkLength(train, t, "training");
        if (eval != null) checkLength(eval, t, "eval");
        this.eval = eval == null || eval.size() == 0 ? null : eval;
        this.batches = new Batches(train, b, cfg.seed());
        this.micro = new Batch[cfg.gradAccum()];
        for (int i = 0; i < micro.length; i++) micro[i] = batches.newBatch();
        this.evalBatch = new Batch(b, t);
        // LM head chunk: (chunkRows, V) logits. Every chunk re-packs the whole (V, C) embedding into the GEMM panels
        // (forward and dx), so bigger chunks amortize that: 256 rows measured +15% tokens/s over 64 on GPT-2 124M
        // LoRA 4 × 256 (bench/RESULTS.md), 512 no further gain. A full fine-tune also runs dWte += dlogitsᵀ·x per
        // chunk and takes 512. Gradient checkpointing means "save memory": 64 rows (12.9 MB of logits at V = 50257).
        int chunkRows = Math.min(b * t, trainable.lmHeadGrad() != null ? 512 : gradientCheckpointing ? 64 : 256);
        this.ws = new Workspace(model.spec(), b, t, t,
                gradientCheckpointing ? Workspace.Activations.CHECKPOINTED : Workspace.Activations.SAVED, chunkRows);
        this.cache = KvCache.layerShared(model.spec(), b, t); // K/V re-stored by the backward: L − 1 fewer buffers
        this.bwd = new DecoderBackward(model, b, t);
        this.head = new LmHeadLoss(model.kernels(), model.weights().wte(), ws.logits, ws.chunkRows);
        ParamBuffer pb = trainable.params();
        List<ParamSlice> s = new ArrayList<>();
        for (ParamBuffer.Slice x : pb.slices()) s.add(new ParamSlice(x.name(), x.offset(), x.length(), x.decay()));
        this.slices = List.copyOf(s);
        this.adamw = new AdamW(pb.size(), cfg.adamHyper(), slices);
        this.schedule = cfg.lrSchedule();
        trainable.prepare(bwd);
    }

    private static void checkLength(Examples ex, int t, String what) {
        if (ex.size() > 0 && ex.seqLen() != t) {
            throw new IllegalArgumentException(what + " examples are " + ex.seqLen() + " tokens long, the trainer's "
                    + "sequence length is " + t);
        }
    }

    /** One optimizer step (see the class comment); allocation-free. The returned object is reused. */
    public StepStats step() {
        long t0 = System.nanoTime();
        int b = cfg.batchSize(), t = cfg.seqLen(), accum = micro.length;
        ParamBuffer pb = trainable.params();
        pb.zeroGrads();
        trainable.beginStep(bwd);
        long total = 0;
        for (Batch m : micro) {
            batches.next(m);
            total += m.targetCount();
        }
        trainable.setTraining(true);
        Dropout baseDropout = model.dropout();
        double lossSum = 0;
        if (baseDropout != null) baseDropout.setTraining(true);
        try {
            for (int i = 0; i < accum; i++) {
                Batch m = micro[i];
                long microStep = (long) step * accum + i;
                trainable.setStep(microStep);
                if (baseDropout != null) baseDropout.setStep(microStep);
                model.forward(m.inputs, 0, b, t, 0, cache, ws);
                double mean = head.forwardBackward(ws.lnf, 0, m.targets, 0, b * t, bwd.dlnf, 0,
                        trainable.lmHeadGrad(), trainable.lmHeadGradOffset(), Math.max(1, total));
                if (m.targetCount() > 0) lossSum += mean * m.targetCount();
                bwd.backward(ws, cache, b, t);
                trainable.afterBackward(bwd, m.inputs, b, t);
            }
        } finally {
            if (baseDropout != null) baseDropout.setTraining(false); // evaluation and generation run without it
        }
        trainable.endStep(bwd);
        double loss = total == 0 ? Double.NaN : lossSum / total;
        float norm = cfg.maxGradNorm() > 0 ? GradClip.clipGlobalNorm(pb.grads(), slices, cfg.maxGradNorm())
                : GradClip.totalNorm(pb.grads(), slices);
        if (!Double.isFinite(loss) || !Float.isFinite(norm)) {
            throw new TrainException("step " + (step + 1) + ": the " + (Double.isFinite(loss) ? "gradient norm" : "loss")
                    + " is " + (Double.isFinite(loss) ? norm : loss) + "; stopping before the optimizer step (lower --lr, "
                    + "or check the data)");
        }
        double lr = schedule.lr(step);
        adamw.step(pb.params(), pb.grads(), lr);
        trainable.paramsUpdated();
        step++;
        stats.step = step;
        stats.loss = loss;
        stats.lr = lr;
        stats.gradNorm = norm;
        stats.tokens = (long) b * t * accum;
        stats.targets = total;
        stats.nanos = System.nanoTime() - t0;
        return stats;
    }

    /**
     * Mean token loss over the held-out examples (at most {@link TrainConfig#evalBatches()} batches of B), with LoRA
     * dropout off; NaN without eval data.
     */
    public double evaluate() {
        if (eval == null) return Double.NaN;
        int b = cfg.batchSize(), t = cfg.seqLen();
        int batchesAll = (eval.size() + b - 1) / b;
        int n = cfg.evalBatches() > 0 ? Math.min(cfg.evalBatches(), batchesAll) : batchesAll;
        trainable.setTraining(false);
        double sum = 0;
        long count = 0;
        try {
            for (int k = 0; k < n; k++) {
                int rows = evalBatch.fillSequential(eval, k * b);
                int c = evalBatch.targetCount();
                if (rows == 0 || c == 0) continue;
                model.forward(evalBatch.inputs, 0, rows, t, 0, cache, ws);
                sum += head.forward(ws.lnf, 0, evalBatch.targets, 0, rows * t) * c;
                count += c;
            }
        } finally {
            trainable.setTraining(true);
        }
        return count == 0 ? Double.NaN : sum / count;
    }

    // ------------------------------------------------------------------------------------------ accessors

    /** The adapter being trained; fails for a full fine-tune ({@link #trainable()}). */
    public LoraModel lora() {
        if (trainable instanceof LoraTrainable l) return l.lora();
        throw new IllegalStateException("this trainer trains " + trainable.kind() + ", not a LoRA adapter");
    }

    public Trainable trainable() {
        return trainable;
    }

    public TrainConfig config() {
        return cfg;
    }

    /** Optimizer steps done so far. */
    public int stepsDone() {
        return step;
    }

    /** Micro-batches done so far (the dropout counter). */
    public long microStepsDone() {
        return (long) step * micro.length;
    }

    public boolean finished() {
        return step >= cfg.steps();
    }

    public boolean hasEvalData() {
        return eval != null;
    }

    public int evalExamples() {
        return eval == null ? 0 : eval.size();
    }

    /** Epochs done, fractionally. */
    public double epoch() {
        return batches.epochsDone();
    }

    public int batchesPerEpoch() {
        return batches.batchesPerEpoch();
    }

    public DataPosition dataPosition() {
        return batches.position();
    }

    public AdamW optimizer() {
        return adamw;
    }

    public List<ParamSlice> paramSlices() {
        return slices;
    }

    // ------------------------------------------------------------------------------------------ state

    /**
     * Continues from saved state: optimizer moments and step count, data position, step counter. The adapter's
     * parameters are restored separately ({@link Checkpoint#restore}).
     */
    void restore(int savedStep, DataPosition position, java.nio.file.Path optimizerFile) throws java.io.IOException {
        if (savedStep < 0 || savedStep > cfg.steps()) {
            throw new TrainException("checkpoint is at step " + savedStep + ", outside this run's 0.." + cfg.steps());
        }
        adamw.load(optimizerFile);
        if (adamw.stepCount() != savedStep) {
            throw new TrainException(optimizerFile + ": optimizer state is at step " + adamw.stepCount()
                    + ", the trainer state at " + savedStep);
        }
        batches.seek(position);
        step = savedStep;
    }
}
