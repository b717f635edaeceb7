package dev.qlora4j.cli;

import dev.qlora4j.lora.adapter.AdapterConfigFile;
import dev.qlora4j.lora.adapter.AdapterException;
import dev.qlora4j.lora.adapter.LoraConfig;
import dev.qlora4j.lora.adapter.LoraModel;
import dev.qlora4j.lora.adapter.MergedCheckpointWriter;
import dev.qlora4j.lora.full.FullModel;
import dev.qlora4j.lora.train.LoraTrainable;
import dev.qlora4j.lora.train.Trainable;
import dev.qlora4j.quant.weight.WeightFormat;
import dev.qlora4j.lora.adapter.TargetModules;
import dev.qlora4j.lora.data.DataFormat;
import dev.qlora4j.lora.data.DataSpec;
import dev.qlora4j.lora.data.Dataset;
import dev.qlora4j.lora.data.EvalSplit;
import dev.qlora4j.lora.data.Examples;
import dev.qlora4j.lora.optim.LrSchedule;
import dev.qlora4j.lora.train.Checkpoint;
import dev.qlora4j.lora.train.MetricsLog;
import dev.qlora4j.lora.train.TrainConfig;
import dev.qlora4j.lora.train.TrainException;
import dev.qlora4j.lora.train.Trainer;
import dev.qlora4j.lora.train.TrainingRun;
import dev.qlora4j.runtime.config.BloomConfig;
import dev.qlora4j.runtime.config.Gpt2Config;
import dev.qlora4j.runtime.config.ModelConfig;
import dev.qlora4j.runtime.model.Dropout;
import dev.qlora4j.runtime.load.LoadedModel;
import dev.qlora4j.runtime.model.DecoderSpec;
import dev.qlora4j.runtime.tokenizer.Tokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** {@code qlora train}: QLoRA fine-tuning of a GPT-2 or BLOOM model on text, JSONL or CSV data. */
@Command(name = "train", mixinStandardHelpOptions = true, usageHelpAutoWidth = true, sortOptions = false,
        description = {"Fine-tune a LoRA adapter on a frozen (by default NF4-quantized) GPT-2 or BLOOM model. Writes "
                + "the PEFT adapter (adapter_config.json, adapter_model.safetensors), metrics.jsonl (one JSON "
                + "object per step), loss_chart.svg and resumable checkpoint-<step>/ directories into --out. "
                + "Ctrl-C saves a checkpoint of the last step and prints the command that resumes.",
                "The base model's dropouts (embd/attn/resid_pdrop from config.json) apply in training as in "
                        + "transformers' train mode; --no-base-dropout runs the base as in eval mode."})
final class TrainCommand extends Subcommand {
    @Mixin
    ModelOptions modelOptions;

    // ---------------------------------------------------------------- data
    @Option(names = "--data", required = true, paramLabel = "PATH", split = ",",
            description = "Training data: text, JSONL or CSV files, or directories (their .txt/.raw/.jsonl/.csv files, "
                    + "sorted by name); several separated by commas.")
    List<Path> dataPaths;

    List<Path> data; // the files dataPaths names

    @Option(names = "--format", paramLabel = "FMT", description = "text, jsonl or csv (default: from the file name).")
    String format;

    @Option(names = "--text-column", paramLabel = "C", description = "JSONL key / CSV column of documents (default: text).")
    String textColumn;

    @Option(names = "--prompt-column", paramLabel = "P", description = "Key / column of prompts (loss on completions only).")
    String promptColumn;

    @Option(names = "--completion-column", paramLabel = "Q", description = "Key / column of completions.")
    String completionColumn;

    @Option(names = "--eval-data", paramLabel = "FILE", description = "Held-out data (same format); default: a split of --data.")
    Path evalData;

    @Option(names = "--eval-split", paramLabel = "F|N",
            description = "Hold out a fraction (< 1) or a count of the training examples for evaluation (default: "
                    + "0.05 when there are at least 20 examples and no --eval-data; 0 = none).")
    String evalSplit;

    @Option(names = "--eval-every", paramLabel = "N", defaultValue = "50",
            description = "Evaluate every N steps and after the last (default 50; 0 = only after the last).")
    int evalEvery;

    @Option(names = "--eval-batches", paramLabel = "N", defaultValue = "0",
            description = "At most N batches per evaluation (default 0 = all held-out examples).")
    int evalBatches;

    // ---------------------------------------------------------------- full fine-tuning
    @Option(names = "--full", description = "Train every weight of the model in fp32 (full fine-tuning or "
            + "pre-training from `qlora init`) instead of a LoRA adapter; writes the model itself (config.json, "
            + "model.safetensors, tokenizer files) into --out. Needs an unquantized model (--quant none, the default "
            + "with --full).")
    boolean full;

    @Option(names = "--save-dtype", paramLabel = "TYPE", defaultValue = "f32",
            description = "With --full: dtype of the final model.safetensors, f32, f16 or bf16 (default f32; "
                    + "checkpoints are always f32).")
    String saveDtype;

    // ---------------------------------------------------------------- LoRA
    @Option(names = "--lora-r", paramLabel = "R", defaultValue = "8", description = "LoRA rank (default 8).")
    int loraR;

    @Option(names = "--lora-alpha", paramLabel = "A", defaultValue = "8", description = "LoRA alpha; scaling alpha/r (default 8, as PEFT).")
    double loraAlpha;

    @Option(names = "--lora-dropout", paramLabel = "P", defaultValue = "0", description = "Dropout on the LoRA input (default 0).")
    double loraDropout;

    @Option(names = "--target-modules", paramLabel = "LIST",
            description = "Comma-separated module names (suffix match, as PEFT), a regex (full match), or all-linear. "
                    + "Default: PEFT's for the architecture (GPT-2: c_attn; BLOOM: query_key_value).")
    String targetModules;

    @Option(names = "--modules-to-save", paramLabel = "LIST",
            description = "Comma-separated LayerNorm modules to train in full next to the adapter and save with it "
                    + "(PEFT's modules_to_save; a module is selected when its name ends with an entry): e.g. ln_f, or "
                    + "ln_1,ln_2,ln_f for every GPT-2 LayerNorm (BLOOM: input_layernorm, post_attention_layernorm, "
                    + "ln_f, word_embeddings_layernorm). Only LayerNorm modules are supported.")
    String modulesToSave;

    @Option(names = "--use-rslora", description = "Scale by alpha/sqrt(r) (rsLoRA) instead of alpha/r.")
    boolean useRslora;

    // ---------------------------------------------------------------- optimization
    @Option(names = "--batch", paramLabel = "B", defaultValue = "4", description = "Sequences per micro-batch (default 4).")
    int batch;

    @Option(names = "--seq", paramLabel = "T", description = "Tokens per sequence (default: min(256, the model's context)).")
    Integer seq;

    @Option(names = "--steps", paramLabel = "N", description = "Optimizer steps (default: one epoch).")
    Integer steps;

    @Option(names = "--epochs", paramLabel = "E", description = "Train for E epochs (may be fractional) instead of --steps.")
    Double epochs;

    @Option(names = "--lr", paramLabel = "LR", defaultValue = "2e-4", description = "Peak learning rate (default 2e-4).")
    double lr;

    @Option(names = "--schedule", paramLabel = "S", defaultValue = "linear",
            description = "constant, linear or cosine, after the warmup (default linear).")
    String schedule;

    @Option(names = "--warmup", paramLabel = "N|F", defaultValue = "0",
            description = "Warmup steps, or a fraction of the steps when written with a point and < 1 (e.g. 0.03).")
    String warmup;

    @Option(names = "--weight-decay", paramLabel = "WD", defaultValue = "0", description = "AdamW decoupled weight decay (default 0).")
    double weightDecay;

    @Option(names = "--grad-accum", paramLabel = "K", defaultValue = "1", description = "Micro-batches per optimizer step (default 1).")
    int gradAccum;

    @Option(names = "--clip", paramLabel = "NORM", defaultValue = "1.0", description = "Clip the global gradient norm (default 1.0; 0 = off).")
    double clip;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "42",
            description = "Seeds LoRA init, LoRA dropout, data order and the eval split (default 42).")
    long seed;

    @Option(names = "--gradient-checkpointing", negatable = true, defaultValue = "false", fallbackValue = "true",
            description = "Keep only each block's input and recompute the block during backward: much less "
                    + "activation memory for about one extra forward pass; same numbers. Default off.")
    boolean gradientCheckpointing;

    @Option(names = "--base-dropout", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "Apply the base model's dropouts (config.json: GPT-2 embd/attn/resid_pdrop, BLOOM "
                    + "attention/hidden_dropout) in training, as transformers' train mode does, with masks keyed by "
                    + "--seed and the micro-step; never in evaluation. Default on; --no-base-dropout runs the base as "
                    + "in eval mode.")
    boolean baseDropout;

    // ---------------------------------------------------------------- adapters, checkpoints, output
    @Option(names = "--init-adapter", paramLabel = "DIR", description = "Start from this PEFT adapter (fresh optimizer).")
    Path initAdapter;

    @Option(names = "--resume", paramLabel = "DIR",
            description = "Continue a run from a checkpoint-<step> directory, or from the newest checkpoint in an "
                    + "output directory (same flags as the original run).")
    Path resume;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output directory.")
    Path out;

    @Option(names = "--save-every", paramLabel = "N", defaultValue = "100",
            description = "Write a checkpoint every N steps and after the last (default 100; 0 = only the last).")
    int saveEvery;

    @Option(names = "--save-total-limit", paramLabel = "N", defaultValue = "2",
            description = "Keep the newest N checkpoints (default 2; 0 = all).")
    int saveTotalLimit;

    @Option(names = "--log-every", paramLabel = "N", defaultValue = "10", description = "Print progress every N steps (default 10).")
    int logEvery;

    @Option(names = "--overwrite", description = "Replace a previous run in --out.")
    boolean overwrite;

    @Override
    int run() throws IOException {
        try {
            return train();
        } catch (TrainException | AdapterException e) {
            throw new CliError(e.getMessage(), e);
        }
    }

    private int train() throws IOException {
        data = dataFiles(dataPaths);
        checkFlags();
        Path ckpt = resume == null ? null : Checkpoint.resolve(resume);
        Checkpoint.State saved = ckpt == null ? null : Checkpoint.readState(ckpt);
        checkOut(ckpt);
        String quant = modelOptions.quantOr(full ? "none" : "nf4");
        if (full && !quant.equals("none")) {
            throw new CliError("--full trains every weight in fp32; drop --quant " + quant + " (or pass --quant none)");
        }
        WeightFormat finalDtype = parseSaveDtype();
        if (saved != null && !saved.kind().equals(full ? "full" : "lora")) {
            throw new CliError("--resume " + ckpt + ": the checkpoint is of a " + saved.kind() + " run"
                    + (full ? "; drop --full to resume it" : "; add --full to resume it"));
        }
        if (saved != null && saved.run().has("base_dropout")
                && Boolean.parseBoolean(saved.run().get("base_dropout").asText()) != baseDropout) {
            throw new CliError("--resume " + ckpt + ": the run was trained with --" + (baseDropout ? "no-" : "")
                    + "base-dropout; resume with the same setting");
        }
        if (saved != null && saved.run().has("quant") && !saved.run().get("quant").asText().equals(quant)) {
            throw new CliError("--resume " + ckpt + ": the run was trained with --quant " + saved.run().get("quant").asText()
                    + ", not " + quant);
        }
        PrintWriter o = out();
        try (LoadedModel lm = modelOptions.load(full ? "none" : "nf4", o)) {
            DecoderSpec spec = lm.model().spec();
            int t = seq != null ? seq : Math.min(256, spec.maxT());
            if (t < 1 || t > spec.maxT()) throw new CliError("--seq must be in [1, " + spec.maxT() + "], got " + t);
            Tokenizer tok = lm.tokenizer();
            DataSpec dataSpec = dataSpec();
            Dataset all = Dataset.load(data, dataSpec, tok, t);
            Examples train = all.examples(), eval;
            String evalNote;
            if (evalData != null) {
                eval = Dataset.load(evalData, dataSpec, tok, t).examples();
                evalNote = eval.size() + " eval examples from " + evalData;
            } else {
                EvalSplit split = evalSplit(all.examples().size());
                EvalSplit.Parts parts = split.apply(all.examples(), seed);
                train = parts.train();
                eval = parts.eval();
                evalNote = eval.size() == 0 ? "no eval split" : eval.size() + " held out for eval";
            }
            int totalSteps = totalSteps(train.size());
            TrainConfig cfg = new TrainConfig(batch, t, gradAccum, totalSteps, lr, LrSchedule.Kind.parse(schedule),
                    warmupSteps(totalSteps), weightDecay, 0.9, 0.999, 1e-8, clip, seed, evalEvery, evalBatches,
                    saveEvery, saveTotalLimit, logEvery);

            FullModel fullModel = full ? FullModel.of(lm) : null;
            LoraModel lora = full ? null : adapter(lm, ckpt);
            Trainable trainable = full ? fullModel : new LoraTrainable(lora);
            ModelConfig mc = lm.dir().config();
            o.printf(Locale.ROOT, "model: %s (%s, L=%d C=%d V=%d), linear weights %s%n", modelOptions.model,
                    mc.modelType(), spec.l(), spec.c(), spec.v(), quantNote(lm, quant));
            o.printf(Locale.ROOT, "data: %d examples × %d tokens (%s) from %s; %s%n", all.examples().size(), t,
                    all.mode() == DataSpec.Mode.TEXT ? "text, packed" : "prompt/completion, loss on completions",
                    dataNote(), evalNote);
            if (full) {
                o.printf(Locale.ROOT, "full: every weight trainable in fp32, %s parameters (%s with AdamW's moments "
                        + "and the gradients)%n", Units.count(fullModel.parameterCount()),
                        Units.mib(16L * fullModel.parameterCount()));
            } else {
            LoraConfig lc = lora.config();
            o.printf(Locale.ROOT, "lora: r=%d alpha=%s dropout=%s%s%s; %s%s; %,d trainable parameters (%.3f%% of %s)%n",
                    lc.r(), lc.loraAlpha(), lc.loraDropout(), lc.useRslora() ? " rslora" : "",
                    initAdapter != null ? " from " + initAdapter : ckpt != null ? " from " + ckpt : "",
                    matches(lc.targetModules(), lora.matchCounts()), savedNote(lora), lora.trainableParameterCount(),
                    100.0 * lora.trainableParameterCount() / lora.baseParameterCount(), Units.count(lora.baseParameterCount()));
            }
            if (baseDropout) {
                Dropout d;
                try {
                    d = baseDropout(mc, seed);
                } catch (IllegalArgumentException e) {
                    throw new CliError("--base-dropout: " + e.getMessage() + " (config.json)");
                }
                trainable.model().setDropout(d);
                o.println("base dropouts: on in training (" + dropouts(mc) + ")");
            } else {
                trainable.model().setDropout(null);
                o.println("base dropouts: off (" + dropouts(mc) + " in config.json not applied; --base-dropout "
                        + "applies them)");
            }
            o.println("training: " + cfg.summary());
            o.flush();

            Trainer trainer = new Trainer(trainable, train, eval, cfg, gradientCheckpointing);
            if (ckpt != null) {
                Checkpoint.State s = Checkpoint.restore(trainer, ckpt);
                o.printf(Locale.ROOT, "resumed from %s at step %d/%d%n", ckpt, s.step(), cfg.steps());
            }
            if (overwrite && ckpt == null) clearPreviousRun();
            Map<String, String> run = new LinkedHashMap<>();
            run.put("base_model", modelOptions.model.toAbsolutePath().normalize().toString());
            run.put("quant", quant);
            run.put("base_dropout", Boolean.toString(baseDropout));
            run.put("data", String.join(",", data.stream().map(p -> p.toAbsolutePath().normalize().toString()).toList()));
            if (evalData != null) run.put("eval_data", evalData.toAbsolutePath().normalize().toString());
            TrainProgress progress = new TrainProgress(Progress.of(o, "step", ""), cfg, out, run, saved,
                    TrainProgress.chartTitle(modelOptions.model, quant, lora, data), cfg.summary(), verbose());
            GracefulStop stop = progress.stopOnSignal(this.spec.qualifiedName());
            TrainingRun.Result r;
            try {
                r = TrainingRun.run(trainer, out, run, ckpt != null, progress);
                if (!r.completed()) return progress.interrupted(trainer, r, err(), this.spec);
            } finally {
                progress.close();
                stop.close();
            }
            Path chart = progress.writeChart();
            o.printf(Locale.ROOT, "done: %d steps, %.1f tok/s, %.2f steps/s, peak RSS %.0f MiB%s%n", r.steps(),
                    r.tokensPerSecond(), r.trainNanos() == 0 ? 0 : progress.stepsThisSession * 1e9 / r.trainNanos(),
                    r.peakRssMib(), Double.isNaN(r.evalLoss()) ? "" : String.format(Locale.ROOT, "; eval loss %s%.4f",
                            Double.isNaN(r.firstEvalLoss()) || r.firstEvalLoss() == r.evalLoss() ? ""
                                    : String.format(Locale.ROOT, "%.4f → ", r.firstEvalLoss()), r.evalLoss()));
            String chartNote = chart == null ? "" : "; loss chart: " + chart;
            if (full) {
                if (r.completed() && finalDtype != WeightFormat.F32) fullModel.writeWeights(out, finalDtype);
                o.println("model: " + out + " (config.json, model.safetensors " + saveDtype.toLowerCase(Locale.ROOT)
                        + ", tokenizer files); metrics: " + out.resolve(MetricsLog.FILE) + chartNote);
            } else {
                o.println("adapter: " + out.resolve(AdapterConfigFile.NAME).getParent() + " (" + AdapterConfigFile.NAME
                        + ", adapter_model.safetensors); metrics: " + out.resolve(MetricsLog.FILE) + chartNote);
            }
            o.flush();
        }
        return QloraCommand.EXIT_OK;
    }

    // ---------------------------------------------------------------- flag checks

    private void checkFlags() {
        if (full && initAdapter != null) throw new CliError("--init-adapter trains an adapter; it cannot be combined with --full");
        if (full && modulesToSave != null) {
            throw new CliError("--modules-to-save trains LayerNorm copies next to a LoRA adapter; with --full every "
                    + "weight trains already");
        }
        if (modulesToSave != null) parseModulesToSave(modulesToSave);
        if (evalData != null && !Files.isRegularFile(evalData)) throw new CliError("--eval-data " + evalData + ": no such file");
        if (evalData != null && evalSplit != null) throw new CliError("--eval-data and --eval-split cannot be combined");
        if (initAdapter != null && resume != null) {
            throw new CliError("--init-adapter and --resume cannot be combined (a checkpoint already holds its adapter)");
        }
        if (steps != null && epochs != null) throw new CliError("--steps and --epochs cannot be combined");
        if (steps != null && steps < 1) throw new CliError("--steps must be at least 1, got " + steps);
        if (epochs != null && !(epochs > 0 && Double.isFinite(epochs))) throw new CliError("--epochs must be > 0, got " + epochs);
        if (batch < 1) throw new CliError("--batch must be at least 1, got " + batch);
        if (seq != null && seq < 1) throw new CliError("--seq must be at least 1, got " + seq);
        if (gradAccum < 1) throw new CliError("--grad-accum must be at least 1, got " + gradAccum);
        if (!(lr >= 0) || Double.isInfinite(lr)) throw new CliError("--lr must be finite and >= 0, got " + lr);
        if (!(weightDecay >= 0) || Double.isInfinite(weightDecay)) throw new CliError("--weight-decay must be >= 0, got " + weightDecay);
        if (!(clip >= 0) || Double.isInfinite(clip)) throw new CliError("--clip must be >= 0 (0 = off), got " + clip);
        if (loraR < 1) throw new CliError("--lora-r must be at least 1, got " + loraR);
        if (!(loraAlpha > 0) || Double.isInfinite(loraAlpha)) throw new CliError("--lora-alpha must be > 0, got " + loraAlpha);
        if (!(loraDropout >= 0 && loraDropout < 1)) throw new CliError("--lora-dropout must be in [0, 1), got " + loraDropout);
        for (var f : List.of(Map.entry("--eval-every", evalEvery), Map.entry("--eval-batches", evalBatches),
                Map.entry("--save-every", saveEvery), Map.entry("--save-total-limit", saveTotalLimit),
                Map.entry("--log-every", logEvery))) {
            if (f.getValue() < 0) throw new CliError(f.getKey() + " must be >= 0, got " + f.getValue());
        }
        try {
            LrSchedule.Kind k = LrSchedule.Kind.parse(schedule);
            if (k == LrSchedule.Kind.CONSTANT_WITH_WARMUP) throw new IllegalArgumentException("x");
        } catch (IllegalArgumentException e) {
            throw new CliError("--schedule must be constant, linear or cosine; got '" + schedule + "'");
        }
        if (format != null) {
            try {
                DataFormat.parse(format);
            } catch (IllegalArgumentException e) {
                throw new CliError("--format must be text, jsonl or csv; got '" + format + "'");
            }
        } else {
            List<Path> all = new ArrayList<>(data);
            if (evalData != null) all.add(evalData);
            for (Path f : all) {
                try {
                    DataFormat.ofFile(f);
                } catch (java.io.IOException e) {
                    throw new CliError(f + ": cannot tell the data format from the file name (.txt, .jsonl, .csv); "
                            + "pass --format text|jsonl|csv");
                }
            }
        }
        if ((promptColumn == null) != (completionColumn == null)) {
            throw new CliError("--prompt-column and --completion-column go together");
        }
        if (textColumn != null && promptColumn != null) {
            throw new CliError("--text-column cannot be combined with --prompt-column/--completion-column");
        }
        warmupSteps(1000); // syntax check
        if (evalSplit != null) evalSplit(1_000_000);
    }

    /** Refuses to mix a new run into an output directory that holds another one. */
    private void checkOut(Path ckpt) {
        if (Files.exists(out) && !Files.isDirectory(out)) throw new CliError("--out " + out + ": exists and is not a directory");
        checkCreatable("--out", out);
        boolean previous = Files.isRegularFile(out.resolve(MetricsLog.FILE)) || !Checkpoint.list(out).isEmpty()
                || Files.isRegularFile(out.resolve(AdapterConfigFile.NAME))
                || Files.isRegularFile(out.resolve("config.json"));
        boolean resumingHere = ckpt != null && ckpt.toAbsolutePath().normalize().getParent()
                .equals(out.toAbsolutePath().normalize());
        if (previous && !resumingHere && !overwrite) {
            throw new CliError("--out " + out + ": holds a previous training run; pass --resume " + out
                    + " to continue it, --overwrite to replace it, or another --out");
        }
    }

    private void clearPreviousRun() throws IOException {
        for (Path p : Checkpoint.list(out)) {
            try (var s = Files.walk(p)) {
                for (Path x : s.sorted(java.util.Comparator.reverseOrder()).toList()) Files.deleteIfExists(x);
            }
        }
        Files.deleteIfExists(out.resolve(AdapterConfigFile.NAME));
        Files.deleteIfExists(out.resolve("adapter_model.safetensors"));
        Files.deleteIfExists(out.resolve("model.safetensors"));
        Files.deleteIfExists(out.resolve("config.json"));
    }

    /** Expands directories into their data files (.txt .text .raw .jsonl .ndjson .csv, sorted by name). */
    static List<Path> dataFiles(List<Path> paths) {
        List<Path> files = new ArrayList<>();
        for (Path p : paths) {
            if (Files.isRegularFile(p)) {
                files.add(p);
            } else if (Files.isDirectory(p)) {
                List<Path> in;
                try (var s = Files.list(p)) {
                    in = s.filter(Files::isRegularFile).filter(f -> {
                        String n = f.getFileName().toString().toLowerCase(Locale.ROOT);
                        return !n.startsWith(".") && (n.endsWith(".txt") || n.endsWith(".text") || n.endsWith(".raw")
                                || n.endsWith(".jsonl") || n.endsWith(".ndjson") || n.endsWith(".csv"));
                    }).sorted().toList();
                } catch (IOException e) {
                    throw new CliError("--data " + p + ": cannot list the directory: " + e.getMessage(), e);
                }
                if (in.isEmpty()) throw new CliError("--data " + p + ": the directory holds no .txt/.raw/.jsonl/.csv files");
                files.addAll(in);
            } else {
                throw new CliError("--data " + p + ": no such file or directory");
            }
        }
        return files;
    }

    private String dataNote() {
        return data.size() == 1 ? data.get(0).toString() : data.size() + " files (" + data.get(0) + ", ...)";
    }

    private WeightFormat parseSaveDtype() {
        try {
            return MergedCheckpointWriter.parseDtype(saveDtype);
        } catch (IllegalArgumentException e) {
            throw new CliError("--save-dtype must be f32, f16 or bf16; got '" + saveDtype + "'");
        }
    }

    private DataSpec dataSpec() {
        DataSpec s = DataSpec.auto();
        if (format != null) s = s.withFormat(DataFormat.parse(format));
        if (textColumn != null) s = s.withTextColumn(textColumn);
        if (promptColumn != null) s = s.withPromptCompletion(promptColumn, completionColumn);
        return s;
    }

    private EvalSplit evalSplit(int n) {
        if (evalSplit == null) return n >= 20 ? EvalSplit.fraction(0.05) : EvalSplit.none();
        try {
            return EvalSplit.parse(evalSplit);
        } catch (IllegalArgumentException e) {
            throw new CliError("--eval-split must be a fraction in [0, 1) or a whole count, got '" + evalSplit + "'");
        }
    }

    /** HF: steps per epoch = max(1, batches per epoch / grad-accum); steps = ceil(epochs · that). */
    private int totalSteps(int trainExamples) {
        if (steps != null) return steps;
        long batchesPerEpoch = (trainExamples + (long) batch - 1) / batch;
        long perEpoch = Math.max(1, batchesPerEpoch / gradAccum);
        double e = epochs != null ? epochs : 1.0;
        double n = Math.ceil(e * perEpoch);
        if (n > Integer.MAX_VALUE) throw new CliError("--epochs " + e + " makes more than 2^31 steps");
        return (int) Math.max(1, n);
    }

    private int warmupSteps(int totalSteps) {
        try {
            if (warmup.contains(".") || warmup.contains("e") || warmup.contains("E")) {
                double f = Double.parseDouble(warmup);
                if (f >= 0 && f < 1) return LrSchedule.warmupSteps(0, f, totalSteps);
                if (f >= 1 && f == Math.rint(f)) return (int) f;
                throw new NumberFormatException();
            }
            int n = Integer.parseInt(warmup);
            if (n < 0) throw new NumberFormatException();
            return n;
        } catch (NumberFormatException e) {
            throw new CliError("--warmup must be a step count (e.g. 100) or a fraction of the steps (e.g. 0.03), got '"
                    + warmup + "'");
        }
    }

    // ---------------------------------------------------------------- the adapter

    private LoraModel adapter(LoadedModel lm, Path ckpt) {
        List<String> toSave = modulesToSave == null ? null : parseModulesToSave(modulesToSave);
        if (ckpt != null || initAdapter != null) {
            Path dir = ckpt != null ? ckpt : initAdapter;
            if (ckpt == null && !Files.isDirectory(initAdapter)) {
                throw new CliError("--init-adapter " + initAdapter + ": no such directory");
            }
            LoraModel m = LoraModel.load(lm.model(), dir, seed);
            List<String> had = m.config().modulesToSave() == null ? List.of() : m.config().modulesToSave();
            if (toSave != null && !toSave.equals(had)) {
                m.detach();
                throw new CliError("--modules-to-save " + String.join(",", toSave) + ": the adapter in " + dir
                        + (had.isEmpty() ? " has no modules_to_save" : " was trained with modules_to_save "
                        + String.join(",", had)) + "; drop the flag (the adapter's config decides)");
            }
            return m;
        }
        LoraConfig.Builder b = LoraConfig.builder().r(loraR).loraDropout(loraDropout).useRslora(useRslora)
                .taskType("CAUSAL_LM")
                .loraAlpha(loraAlpha == Math.rint(loraAlpha) ? (Number) (int) loraAlpha : (Number) loraAlpha);
        if (toSave != null) {
            try {
                LoraModel.matchModulesToSave(lm.model(), toSave);
            } catch (AdapterException e) {
                throw new CliError("--modules-to-save: " + e.getMessage(), e);
            }
            b.modulesToSave(toSave);
        }
        if (targetModules != null) b.targetModules(parseTargets(targetModules));
        try {
            return LoraModel.attach(lm, b.build(), seed);
        } catch (AdapterException e) {
            throw new CliError("--target-modules: " + e.getMessage(), e);
        }
    }

    /** Comma-separated module names, none empty. */
    static List<String> parseModulesToSave(String s) {
        List<String> names = new ArrayList<>();
        for (String p : s.split(",", -1)) {
            String n = p.strip();
            if (n.isEmpty()) throw new CliError("--modules-to-save '" + s + "' has an empty name");
            if (!names.contains(n)) names.add(n);
        }
        return names;
    }

    /** {@code ; modules_to_save ln_f → 1 module}, or nothing. */
    static String savedNote(LoraModel lora) {
        if (lora.modulesToSave().isEmpty()) return "";
        List<String> parts = new ArrayList<>();
        int total = 0;
        for (var e : lora.modulesToSave().matchCounts().entrySet()) {
            parts.add(e.getKey() + " → " + e.getValue());
            total += e.getValue();
        }
        return "; modules_to_save " + String.join(", ", parts) + " module" + (total == 1 ? "" : "s");
    }

    /** {@code all-linear}; a regex when it has regex syntax; else comma-separated names. */
    static TargetModules parseTargets(String s) {
        String v = s.strip();
        if (v.isEmpty()) throw new CliError("--target-modules is empty");
        if (v.equalsIgnoreCase(TargetModules.ALL_LINEAR)) return new TargetModules.AllLinear();
        if (v.chars().anyMatch(c -> "*?[]()|\\^$+{}".indexOf(c) >= 0)) return new TargetModules.Regex(v);
        List<String> names = new ArrayList<>();
        for (String p : v.split(",")) {
            String n = p.strip();
            if (n.isEmpty()) throw new CliError("--target-modules '" + s + "' has an empty name");
            names.add(n);
        }
        return new TargetModules.Names(names);
    }

    /** {@code targets c_attn → 2, c_proj → 4 modules}, in the order the targets were given. */
    private static String matches(TargetModules targets, Map<String, Integer> counts) {
        List<String> keys = new ArrayList<>(counts.keySet());
        if (targets instanceof TargetModules.Names n && counts.keySet().containsAll(n.names())) keys = n.names();
        List<String> parts = new ArrayList<>();
        int total = 0;
        for (String k : keys) {
            parts.add(k + " → " + counts.get(k));
            total += counts.get(k);
        }
        return "targets " + String.join(", ", parts) + " module" + (total == 1 ? "" : "s");
    }

    private static String quantNote(LoadedModel lm, String quant) {
        var w = lm.model().weights().blocks()[0].qkv().weight().format();
        return Units.formatName(w) + (quant.equals("none") ? " (as stored)" : w.isQuantized() ? "" : " (as stored)");
    }

    /** The base-model dropout of config.json's probabilities (BLOOM has no embedding dropout). */
    static Dropout baseDropout(ModelConfig mc, long seed) {
        return switch (mc) {
            case Gpt2Config g -> new Dropout(g.embdPdrop(), g.attnPdrop(), g.residPdrop(), seed);
            case BloomConfig b -> new Dropout(0, b.attentionDropout(), b.hiddenDropout(), seed);
        };
    }

    static String dropouts(ModelConfig mc) {
        return switch (mc) {
            case Gpt2Config g -> String.format(Locale.ROOT, "embd_pdrop %s, attn_pdrop %s, resid_pdrop %s",
                    g.embdPdrop(), g.attnPdrop(), g.residPdrop());
            case BloomConfig b -> String.format(Locale.ROOT, "hidden_dropout %s, attention_dropout %s",
                    b.hiddenDropout(), b.attentionDropout());
        };
    }
}
