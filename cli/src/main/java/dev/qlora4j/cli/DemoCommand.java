package dev.qlora4j.cli;

import dev.qlora4j.lora.adapter.AdapterConfigFile;
import dev.qlora4j.lora.adapter.AdapterException;
import dev.qlora4j.lora.adapter.AdapterWriter;
import dev.qlora4j.lora.adapter.LoraConfig;
import dev.qlora4j.lora.adapter.LoraModel;
import dev.qlora4j.lora.adapter.ModulesToSave;
import dev.qlora4j.lora.adapter.TargetModules;
import dev.qlora4j.lora.data.DataSpec;
import dev.qlora4j.lora.data.Dataset;
import dev.qlora4j.lora.data.NumberWords;
import dev.qlora4j.lora.optim.LrSchedule;
import dev.qlora4j.lora.train.Checkpoint;
import dev.qlora4j.lora.train.LossChart;
import dev.qlora4j.lora.train.MetricsLog;
import dev.qlora4j.lora.train.TrainConfig;
import dev.qlora4j.lora.train.TrainException;
import dev.qlora4j.lora.train.Trainer;
import dev.qlora4j.lora.train.TrainingRun;
import dev.qlora4j.quant.kernel.KernelProvider;
import dev.qlora4j.runtime.config.ModelConfig;
import dev.qlora4j.runtime.load.LoadOptions;
import dev.qlora4j.runtime.load.LoadedModel;
import dev.qlora4j.runtime.load.ModelLoader;
import dev.qlora4j.runtime.model.DecoderSpec;
import dev.qlora4j.runtime.quantize.CheckpointQuantizer;
import dev.qlora4j.runtime.tokenizer.Tokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintWriter;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;

/**
 * {@code qlora demo}: the whole story on the built-in model in a few minutes: quantize to NF4 + double quantization,
 * greedy generation, then QLoRA fine-tuning on a generated task with its score before and after.
 */
@Command(name = "demo", mixinStandardHelpOptions = true, usageHelpAutoWidth = true, sortOptions = false,
        header = "Quantize, generate and QLoRA-fine-tune the built-in model, end to end, in a few minutes.",
        description = {"Runs the whole story on one model: (1) quantizes it to NF4 with double quantization and "
                + "prints the memory saved, (2) shows greedy continuations of a few prompts, (3) LoRA-fine-tunes "
                + "the frozen NF4 model on a generated task and (4) shows the held-out score and sample outputs "
                + "before and after, and where the adapter, metrics.jsonl and loss chart were written.",
                "Tasks: 'numbers' (default): \"4711 =\" → \" four thousand seven hundred eleven\", scored by exact "
                        + "match on held-out numbers; 'prompts': awesome-chatgpt-prompts' act → prompt, scored by "
                        + "held-out loss.",
                "Writes into --out: model-nf4/ (the quantized checkpoint), data/ (the generated training files) "
                        + "and the adapter directory (adapter/ for numbers, prompts-adapter/ for prompts)."})
final class DemoCommand extends Subcommand {

    /** The built-in model, relative to the working directory or the qlora4j checkout. */
    static final Path BUILT_IN = Path.of("models", "gpt2-mini");

    enum Task { numbers, prompts }

    @Option(names = "--model", paramLabel = "DIR",
            description = "GPT-2 or BLOOM model directory. Default: the built-in models/gpt2-mini (looked up in the "
                    + "working directory, then in the qlora4j checkout).")
    Path model;

    @Option(names = "--task", paramLabel = "TASK", defaultValue = "numbers",
            description = "numbers (default) or prompts.")
    Task task;

    @Option(names = "--out", paramLabel = "DIR", defaultValue = "demo-out",
            description = "Output directory (default demo-out); the demo's own files in it are replaced.")
    Path out;

    @Option(names = "--steps", paramLabel = "N",
            description = "Training steps (default: 1200 for numbers, 100 for prompts; 4 and 3 with --quick).")
    Integer steps;

    @Option(names = "--lr", paramLabel = "LR",
            description = "Peak learning rate of the cosine schedule (default: 3e-3 for numbers, 1e-3 for prompts).")
    Double lr;

    @Option(names = "--max-digits", paramLabel = "D",
            description = "numbers task: numbers of 1 to D digits, D ≤ 6 (default 4).")
    Integer maxDigits;

    @Option(names = "--spaced-digits", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "numbers task: prompts with the digits apart, \"4 7 1 1 =\": one token per digit, every "
                    + "one seen in training (default). --no-spaced-digits writes \"4711 =\", which GPT-2's tokenizer "
                    + "cuts into chunks (\"47\", \"11\") that a short run cannot learn to read.")
    boolean spacedDigits;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "42",
            description = "Seeds the generated data, the LoRA init and the data order (default 42).")
    long seed;

    @Option(names = "--data", paramLabel = "FILE",
            description = "prompts task: the awesome-chatgpt-prompts CSV (default: ../shared/data/"
                    + "awesome-chatgpt-prompts/prompts.csv, looked up like the model).")
    Path data;

    @Option(names = "--quick", description = "A tiny run (a few steps, a few examples) that checks the mechanics "
            + "in seconds; the scores mean nothing.")
    boolean quick;

    @Override
    int run() throws IOException {
        try {
            DemoPlan plan = DemoPlan.of(task, quick, steps, lr, maxDigits);
            if (task != Task.numbers && spec.commandLine().getParseResult().hasMatchedOption("--spaced-digits")) {
                throw new CliError("--[no-]spaced-digits applies to --task numbers");
            }
            Path modelDir = resolveModel(model, Path.of("").toAbsolutePath(), codeLocation());
            if (Files.exists(out) && !Files.isDirectory(out)) throw new CliError("--out " + out + ": exists and is not a directory");
            Demo d = new Demo(out(), modelDir, plan);
            return task == Task.numbers ? d.numbers() : d.prompts(promptsFile());
        } catch (TrainException | AdapterException e) {
            throw new CliError(e.getMessage(), e);
        }
    }

    // ---------------------------------------------------------------- where the model is

    /**
     * {@code given} when the user named a model; else the first {@code models/gpt2-mini} directory in the working
     * directory or in a parent of the code's location (cli/target/qlora.jar or cli/target/classes of a checkout).
     */
    static Path resolveModel(Path given, Path workingDir, Path codeLocation) {
        if (given != null) {
            if (!Files.exists(given)) throw new CliError("--model " + given + ": no such directory");
            if (!Files.isDirectory(given)) throw new CliError("--model " + given + ": not a directory");
            return given;
        }
        List<Path> looked = candidates(BUILT_IN, workingDir, codeLocation);
        for (Path p : looked) if (Files.isDirectory(p)) return relative(workingDir, p);
        throw new CliError("the built-in model " + BUILT_IN + " is not there (looked in " + String.join(", ",
                looked.stream().map(Path::toString).toList()) + "); pass --model DIR, e.g. --model ../shared/data/tiny-gpt2");
    }

    /**
     * {@code rel} under the working directory, then under the checkout the code runs from: the nearest ancestor of
     * the code location with a {@code pom.xml} and a {@code cli/} directory.
     */
    static List<Path> candidates(Path rel, Path workingDir, Path codeLocation) {
        List<Path> c = new ArrayList<>();
        c.add(workingDir.resolve(rel).normalize());
        for (Path a = codeLocation == null ? null : codeLocation.toAbsolutePath().getParent(); a != null; a = a.getParent()) {
            if (Files.isDirectory(a.resolve("cli")) && Files.isRegularFile(a.resolve("pom.xml"))) {
                Path p = a.resolve(rel).normalize();
                if (!c.contains(p)) c.add(p);
                break;
            }
        }
        return c;
    }

    private static Path relative(Path workingDir, Path p) {
        try {
            Path r = workingDir.relativize(p);
            return r.toString().length() < p.toString().length() ? r : p;
        } catch (IllegalArgumentException e) {
            return p;
        }
    }

    static Path codeLocation() {
        try {
            return Path.of(DemoCommand.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        } catch (URISyntaxException | RuntimeException e) {
            return null;
        }
    }

    private Path promptsFile() {
        if (data != null) {
            if (!Files.isRegularFile(data)) throw new CliError("--data " + data + ": no such file");
            return data;
        }
        Path rel = Path.of("..", "shared", "data", "awesome-chatgpt-prompts", "prompts.csv");
        Path wd = Path.of("").toAbsolutePath();
        List<Path> looked = candidates(rel, wd, codeLocation());
        for (Path p : looked) if (Files.isRegularFile(p)) return relative(wd, p);
        throw new CliError("--task prompts: awesome-chatgpt-prompts/prompts.csv is not there (looked in "
                + String.join(", ", looked.stream().map(Path::toString).toList()) + "); pass --data FILE");
    }

    // ---------------------------------------------------------------- the run

    /** One demo run: the sections in order, printing as it goes. */
    private final class Demo {
        final PrintWriter o;
        final Path modelDir;
        final DemoPlan plan;
        final long t0 = System.nanoTime();
        final Path quantized = out.resolve("model-nf4");

        Demo(PrintWriter o, Path modelDir, DemoPlan plan) {
            this.o = o;
            this.modelDir = modelDir;
            this.plan = plan;
        }

        int numbers() throws IOException {
            title();
            quantize();
            try (LoadedModel lm = load()) {
                generate(lm);
                NumbersTask t = new NumbersTask(lm, plan, seed, spacedDigits, out.resolve("data"));
                section("3. The task: number → English words");
                t.describe(o);
                NumbersTask.Score before = t.score();
                o.printf("%-18s exact match %s, words in place %s%n", "before training", before.summary(), before.words());
                Path adapter = out.resolve("adapter");
                section("4. QLoRA fine-tuning (frozen NF4 base, LoRA adapters in fp32)");
                TrainingRun.Result r = train(lm, t.train(), t.heldOut(), t.seqLen(), adapter);
                section("5. After fine-tuning");
                NumbersTask.Score after;
                try (LoraModel ignored = ModelOptions.loadAdapter(lm, adapter)) { // as 'qlora generate --adapter' does
                    after = t.score();
                }
                o.printf("%-32s %-16s %s%n", "held-out numbers (" + before.total() + ")", "before", "after");
                o.printf("%-32s %-16s %s%n", "  exact match", before.summary(), after.summary());
                o.printf("%-32s %-16s %s%n", "  words in place", before.words(), after.words());
                if (!Double.isNaN(r.firstEvalLoss())) {
                    o.printf(Locale.ROOT, "%-32s %-16.3f %.3f%n", "  loss on the completions", r.firstEvalLoss(), r.evalLoss());
                }
                o.println();
                t.table(o, before, after);
                files(adapter, t.train(), "--prompt " + bashQuote(t.prompt(t.example())) + " --max-new-tokens 12");
            }
            return QloraCommand.EXIT_OK;
        }

        int prompts(Path csv) throws IOException {
            title();
            quantize();
            try (LoadedModel lm = load()) {
                generate(lm);
                PromptsTask t = PromptsTask.load(csv, plan, seed, out.resolve("data"));
                section("3. The task: act → prompt (awesome-chatgpt-prompts)");
                t.describe(o);
                List<String> before = t.samples(lm);
                Path adapter = out.resolve("prompts-adapter");
                section("4. QLoRA fine-tuning (frozen NF4 base, LoRA adapters in fp32)");
                TrainingRun.Result r = train(lm, t.train(), t.heldOut(), plan.promptsSeq(), adapter);
                section("5. After fine-tuning");
                if (!Double.isNaN(r.firstEvalLoss())) {
                    o.printf(Locale.ROOT, "held-out loss (%d unseen acts): %.3f → %.3f (perplexity %.1f → %.1f)%n%n",
                            t.heldOutCount(), r.firstEvalLoss(), r.evalLoss(), Math.exp(r.firstEvalLoss()),
                            Math.exp(r.evalLoss()));
                }
                List<String> after;
                try (LoraModel ignored = ModelOptions.loadAdapter(lm, adapter)) {
                    after = t.samples(lm);
                }
                t.print(o, before, after);
                files(adapter, t.train(), "--prompt " + bashQuote(PromptsTask.prompt(t.exampleAct()))
                        + " --max-new-tokens 60 --repetition-penalty 1.2");
            }
            return QloraCommand.EXIT_OK;
        }

        void title() {
            o.printf("qlora demo: %s on %s%s%n", task == Task.numbers ? "number → words" : "act → prompt", modelDir,
                    quick ? " (--quick: a few steps to check the mechanics; the scores mean nothing)" : "");
            o.flush();
        }

        void section(String name) {
            o.println();
            o.println("== " + name + " " + "=".repeat(Math.max(3, 72 - name.length())));
            o.flush();
        }

        // ------------------------------------------------------------ 1. quantize

        void quantize() {
            section("1. Quantize to NF4 with double quantization");
            var r = CheckpointQuantizer.quantize(modelDir, quantized, CheckpointQuantizer.Options.nf4(), true,
                    DemoCommand.this::note);
            o.printf(Locale.ROOT, "%-18s %s%n", "model", modelDir + " (" + r.modelType() + ")");
            o.printf(Locale.ROOT, "%-18s %d tensors, %s parameters%n", "linear weights", r.linearWeights(),
                    Units.count(r.linearParams()));
            o.printf(Locale.ROOT, "%-18s %12s → %12s  %.1f → %.2f bits/param, %s%n", "", Units.mib(r.linearBytesBefore()),
                    Units.mib(r.linearBytesAfter()), r.linearBitsPerParamBefore(), r.linearBitsPerParamAfter(),
                    saved(r.linearBytesBefore(), r.linearBytesAfter()));
            o.printf(Locale.ROOT, "%-18s %12s → %12s  embeddings and LayerNorms stay as stored (as in QLoRA), %s%n",
                    "whole checkpoint", Units.mib(r.bytesBefore()), Units.mib(r.bytesAfter()),
                    saved(r.bytesBefore(), r.bytesAfter()));
            o.printf("%-18s %s%n", "written to", quantized + "/ (bitsandbytes' serialized layout)");
            o.flush();
        }

        LoadedModel load() {
            LoadedModel lm = ModelLoader.load(quantized, LoadOptions.asStored(), KernelProvider.get());
            DecoderSpec s = lm.model().spec();
            o.printf(Locale.ROOT, "%-18s %d layers × %d channels, %d heads, vocabulary %,d, %d positions; linear "
                    + "weights %s in memory, dequantized on the fly%n", "loaded", s.l(), s.c(), s.nh(), s.v(), s.maxT(),
                    Units.formatName(lm.model().weights().blocks()[0].qkv().weight().format()));
            o.flush();
            return lm;
        }

        // ------------------------------------------------------------ 2. generate

        void generate(LoadedModel lm) {
            section("2. Greedy generation with the NF4 model");
            Greedy g = new Greedy(lm, 64);
            for (String p : plan.prompts()) {
                Greedy.Answer a = g.complete(p, plan.promptTokens(), false);
                o.printf("  %s → %s%n", p, Greedy.oneLine(a.text().strip(), 110));
                o.flush();
            }
        }

        // ------------------------------------------------------------ 4. train

        TrainingRun.Result train(LoadedModel lm, Path trainFile, Path heldOutFile, int seqLen, Path adapter)
                throws IOException {
            Tokenizer tok = lm.tokenizer();
            DecoderSpec spec = lm.model().spec();
            int t = Math.min(seqLen, spec.maxT());
            Dataset train = Dataset.load(trainFile, DataSpec.auto(), tok, t);
            Dataset eval = Dataset.load(heldOutFile, DataSpec.auto(), tok, t);
            TrainConfig cfg = plan.trainConfig(t, seed);
            LoraConfig.Builder lcb = LoraConfig.builder().r(plan.loraR()).loraAlpha(plan.loraAlpha()).taskType("CAUSAL_LM")
                    .targetModules(new TargetModules.AllLinear()).baseModelNameOrPath(modelDir.toString());
            if (!plan.modulesToSave().isEmpty()) lcb.modulesToSave(plan.modulesToSave());
            LoraConfig lc = lcb.build();
            clearPreviousRun(adapter);
            ModelConfig mc = lm.dir().config();
            try (LoraModel lora = LoraModel.attach(lm.model(), lc, seed)) {
                lora.model().setDropout(TrainCommand.baseDropout(mc, seed));
                String targets = lora.config().targetModules() instanceof TargetModules.Names n
                        ? String.join(", ", n.names()) : "all linear layers";
                ModulesToSave saved = lora.modulesToSave();
                String savedNote = saved.isEmpty() ? "" : String.format(Locale.ROOT, ", plus a trained copy of %s "
                        + "(PEFT's modules_to_save, %s parameters)", String.join(", ", lc.modulesToSave()),
                        Units.count(saved.parameterCount()));
                o.printf(Locale.ROOT, "%-18s r=%d, alpha=%d on every linear layer (%s)%s: %s trainable parameters, "
                                + "%.2f%% of %s%n", "LoRA", lc.r(), plan.loraAlpha(), targets, savedNote,
                        Units.count(lora.trainableParameterCount()),
                        100.0 * lora.trainableParameterCount() / lora.baseParameterCount(),
                        Units.count(lora.baseParameterCount()));
                o.printf(Locale.ROOT, "%-18s %,d examples (%s tokens with loss) from %s; held-out loss on %,d%n", "data",
                        train.examples().size(), Units.count(train.stats().targetTokens()), trainFile,
                        Math.min(eval.examples().size(), cfg.evalBatches() * cfg.batchSize()));
                o.printf("%-18s %s; base dropouts as in 'qlora train' (%s)%n", "schedule", cfg.summary(),
                        TrainCommand.dropouts(mc));
                o.flush();
                Trainer trainer = new Trainer(lora, train.examples(), eval.examples(), cfg);
                Map<String, String> run = new LinkedHashMap<>();
                run.put("base_model", modelDir.toAbsolutePath().normalize().toString());
                run.put("quant", "nf4");
                run.put("data", trainFile.toAbsolutePath().normalize().toString());
                run.put("eval_data", heldOutFile.toAbsolutePath().normalize().toString());
                TrainingRun.Result r = TrainingRun.run(trainer, adapter, run, false, new StepLines(cfg));
                LossChart.write(adapter, modelDir.getFileName() + " (nf4) · LoRA r=" + lc.r()
                                + (saved.isEmpty() ? "" : " + " + String.join(", ", lc.modulesToSave())) + " · "
                                + (task == Task.numbers ? "number → words" : "act → prompt"),
                        cfg.summary(), r.firstEvalLoss());
                o.printf(Locale.ROOT, "%-18s %d steps in %s (%.0f tok/s), peak RSS %.0f MiB%n", "trained", r.steps(),
                        Progress.duration(r.trainNanos() / 1e9), r.tokensPerSecond(), r.peakRssMib());
                o.flush();
                return r;
            }
        }

        /** {@code  step  40/300  loss 2.3141  lr 1.9e-03  0.41 s/step  ETA 1m45s}, ten lines a run. */
        final class StepLines implements TrainingRun.Listener {
            final TrainConfig cfg;
            long lastTime = System.nanoTime();
            int lastStep;
            final int every;
            final int width;

            StepLines(TrainConfig cfg) {
                this.cfg = cfg;
                this.every = Math.max(1, cfg.steps() / 10);
                this.width = Integer.toString(cfg.steps()).length();
            }

            @Override
            public boolean onStep(Trainer.StepStats s, double evalLoss, double rssMib) {
                if (s.step == 1 || s.step % every == 0 || s.step == cfg.steps()) {
                    // the pace since the last line: the first steps run while the JIT compiles the kernels
                    long now = System.nanoTime();
                    double perStep = (now - lastTime) / 1e9 / Math.max(1, s.step - lastStep);
                    o.printf(Locale.ROOT, "  step %" + width + "d/%d  loss %.4f  lr %.1e  %.2f s/step  %s%n",
                            s.step, cfg.steps(), s.loss, s.lr, perStep, s.step == 1 ? "(JIT warm-up)"
                                    : "ETA " + Progress.duration(perStep * (cfg.steps() - s.step)));
                    o.flush();
                    lastTime = now;
                    lastStep = s.step;
                }
                return true;
            }

            @Override
            public void onEval(int step, double loss) {
                o.printf(Locale.ROOT, "  held-out loss %.4f%s%n", loss, step == 0 ? " (before training)" : " @ step " + step);
                o.flush();
            }
        }

        // ------------------------------------------------------------ files

        void files(Path adapter, Path trainFile, String generateArgs) {
            section("Files");
            o.printf("%-18s %s/ (%s, %s)%n", "adapter", adapter, AdapterConfigFile.NAME, AdapterWriter.WEIGHTS);
            o.printf("%-18s %s%n", "metrics", adapter.resolve(MetricsLog.FILE));
            Path chart = adapter.resolve("loss_chart.svg");
            if (Files.isRegularFile(chart)) o.printf("%-18s %s%n", "loss chart", chart);
            List<Path> ck = Checkpoint.list(adapter);
            if (!ck.isEmpty()) o.printf("%-18s %s/ (adapter, optimizer state, data position: --resume)%n", "checkpoint", ck.getLast());
            o.printf("%-18s %s/%n", "quantized model", quantized);
            o.printf("%-18s %s%n", "training data", trainFile.getParent() + "/");
            o.println();
            o.println("Use the adapter:");
            o.println("  ./qlora generate --model " + quantized + " --adapter " + adapter + " " + generateArgs);
            o.println("  ./qlora merge --model " + modelDir + " --adapter " + adapter + " --out " + out.resolve("merged"));
            o.printf(Locale.ROOT, "%ndone in %s%n", Progress.duration((System.nanoTime() - t0) / 1e9));
            o.flush();
        }
    }

    /** {@code text} as one bash word: {@code 'plain'}, or {@code $'with\nescapes'} when it has a line break. */
    static String bashQuote(String text) {
        if (text.indexOf('\n') < 0 && text.indexOf('\r') < 0) return "'" + text.replace("'", "'\\''") + "'";
        return "$'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r") + "'";
    }

    /** Removes what a previous demo left in {@code dir}: checkpoints, the adapter, metrics and the chart. */
    static void clearPreviousRun(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) return;
        for (Path p : Checkpoint.list(dir)) {
            try (Stream<Path> s = Files.walk(p)) {
                for (Path x : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(x);
            }
        }
        for (String f : List.of(AdapterConfigFile.NAME, AdapterWriter.WEIGHTS, MetricsLog.FILE, "loss_chart.svg")) {
            Files.deleteIfExists(dir.resolve(f));
        }
    }

    static String saved(long before, long after) {
        if (after > before) return "larger: the per-tensor tables outweigh the weights of a model this small";
        return before == 0 ? "" : String.format(Locale.ROOT, "%.0f%% saved", 100.0 * (before - after) / before);
    }

    /** HF's AdamW defaults, cosine schedule, clipping at {@code clip}; only the last checkpoint is written and kept. */
    static TrainConfig config(int batch, int seqLen, int steps, double lr, int warmup, double clip, long seed,
                              int evalEvery, int evalBatches) {
        return new TrainConfig(batch, seqLen, 1, steps, lr, LrSchedule.Kind.COSINE, warmup, 0.0, 0.9, 0.999, 1e-8,
                clip, seed, evalEvery, evalBatches, 0, 1, 0);
    }
}
