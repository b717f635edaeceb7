package dev.qlora4j.cli;

import dev.qlora4j.lora.adapter.LoraModel;
import dev.qlora4j.lora.train.Checkpoint;
import dev.qlora4j.lora.train.LossChart;
import dev.qlora4j.lora.train.TrainConfig;
import dev.qlora4j.lora.train.Trainer;
import dev.qlora4j.lora.train.TrainingRun;
import picocli.CommandLine.Model.CommandSpec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * What {@code qlora train} shows while it trains: the {@link Progress} line per step (loss, tok/s, ETA, RSS), a line
 * per evaluation, {@code loss_chart.svg} rewritten at every checkpoint, and the stop request of a Ctrl-C (checked
 * after every step). After a stop, {@link #interrupted} writes the checkpoint of the last completed step and
 * {@link #resumeCommand} says how to continue.
 */
final class TrainProgress implements TrainingRun.Listener {
    /** Key in a checkpoint's {@code run} object: the evaluation before step 1 (metrics.jsonl starts at step 1). */
    static final String INITIAL_EVAL = "initial_eval_loss";

    private final Progress bar;
    private final TrainConfig cfg;
    private final Path out;
    private final Map<String, String> run;
    private final String chartTitle, chartSubtitle;
    private final boolean verbose;
    private GracefulStop stop;
    private Trainer.StepStats last;
    private volatile long slowestStepNanos;
    private final Progress.Fields fields = (line, done) -> {
        line.append(String.format(Locale.ROOT, "loss %.4f", last.loss));
        if (!bar().tty()) line.append(String.format(Locale.ROOT, " | lr %.2e | grad %.3f", last.lr, last.gradNorm));
        line.append(String.format(Locale.ROOT, " | %.0f tok/s", last.tokensPerSecond()));
    };
    int stepsThisSession;
    private boolean chartFailed;

    /**
     * @param run   the run facts recorded in every checkpoint; the initial evaluation is added to it (and a resumed
     *              run's is carried over from {@code saved}) so that the chart of a resumed run starts at step 0 too
     * @param saved the checkpoint resumed from, or null
     */
    TrainProgress(Progress bar, TrainConfig cfg, Path out, Map<String, String> run, Checkpoint.State saved,
                  String chartTitle, String chartSubtitle, boolean verbose) {
        this.bar = bar.every(cfg.logEvery()).first(true).interval(60 * Progress.SECOND);
        this.cfg = cfg;
        this.out = out;
        this.run = run;
        this.chartTitle = chartTitle;
        this.chartSubtitle = chartSubtitle;
        this.verbose = verbose;
        if (saved != null && saved.run().hasNonNull(INITIAL_EVAL)) run.put(INITIAL_EVAL, saved.run().get(INITIAL_EVAL).asText());
    }

    private Progress bar() {
        return bar;
    }

    /** {@code tiny-gpt2 (nf4) · LoRA r=4 α=8 on c_attn, c_proj · numbers.jsonl}. */
    /** @param lora the adapter, or null for a full fine-tune */
    static String chartTitle(Path model, String quant, LoraModel lora, java.util.List<Path> data) {
        Path name = model.toAbsolutePath().normalize().getFileName();
        String files = data.size() == 1 ? String.valueOf(data.get(0).getFileName()) : data.size() + " files";
        if (lora == null) {
            return String.format(Locale.ROOT, "%s · full fine-tune (every weight, fp32) · %s", name == null ? model : name,
                    files);
        }
        var c = lora.config();
        return String.format(Locale.ROOT, "%s (%s) · LoRA r=%d α=%s%s on %s%s · %s", name == null ? model : name, quant,
                c.r(), c.loraAlpha(), c.useRslora() ? " rsLoRA" : "", String.join(", ", lora.matchCounts().keySet()),
                lora.modulesToSave().isEmpty() ? "" : " + " + String.join(", ", c.modulesToSave()), files);
    }

    /**
     * From now until the returned object is closed, SIGINT/SIGTERM stop the run after the current step: the shutdown
     * hook waits for {@link #interrupted} to save it, at most 60 s or, for slow steps, twice the slowest step so far
     * plus 30 s for the checkpoint.
     */
    GracefulStop stopOnSignal(String command) {
        stop = GracefulStop.install(() -> bar.message(command + ": stopping after this step to save a checkpoint ..."),
                () -> Math.max(60_000, 2 * slowestStepNanos / 1_000_000 + 30_000));
        return stop;
    }

    @Override
    public boolean onStep(Trainer.StepStats s, double evalLoss, double rssMib) {
        stepsThisSession++;
        last = s;
        if (s.nanos > slowestStepNanos) slowestStepNanos = s.nanos;
        bar.update(s.step, cfg.steps(), fields);
        return stop == null || !stop.requested();
    }

    @Override
    public void onEval(int step, double loss) {
        if (step == 0 && !Double.isNaN(loss)) run.put(INITIAL_EVAL, Double.toString(loss));
        bar.message(String.format(Locale.ROOT, "eval @ step %d: loss %.4f", step, loss));
    }

    @Override
    public void onCheckpoint(Path dir) {
        writeChart();
        if (verbose) bar.message("saved " + dir);
    }

    /** (Re)writes {@code loss_chart.svg} from metrics.jsonl; a failure is reported once and does not stop training. */
    Path writeChart() {
        try {
            double initial = run.containsKey(INITIAL_EVAL) ? Double.parseDouble(run.get(INITIAL_EVAL)) : Double.NaN;
            return LossChart.write(out, chartTitle, chartSubtitle, initial);
        } catch (IOException | RuntimeException e) {
            if (!chartFailed) bar.message("could not write " + out.resolve(LossChart.FILE) + ": " + Subcommand.oneLine(e.toString()));
            chartFailed = true;
            return null;
        }
    }

    /** Ends the progress line. */
    void close() {
        bar.close();
    }

    /**
     * After a stopped run: writes the checkpoint of the last completed step (unless the run just wrote it), prunes
     * to the run's limit, rewrites the chart, and prints one line on {@code err} with the command that resumes.
     *
     * @return {@link QloraCommand#EXIT_INTERRUPTED}
     */
    int interrupted(Trainer t, TrainingRun.Result r, PrintWriter err, CommandSpec command) {
        bar.close();
        Path ckpt = r.lastCheckpoint();
        if (ckpt == null || Checkpoint.stepOf(ckpt) != t.stepsDone()) {
            ckpt = Checkpoint.write(t, out, run);
            Checkpoint.prune(out, cfg.saveTotalLimit());
        }
        writeChart();
        err.printf(Locale.ROOT, "%s: interrupted after step %d of %d; saved %s. Resume with: %s%n",
                command.qualifiedName(), t.stepsDone(), cfg.steps(), ckpt, resumeCommand(
                        System.getProperty("qlora.prog", "qlora"), command.commandLine().getParseResult().originalArgs(), ckpt));
        err.flush();
        return QloraCommand.EXIT_INTERRUPTED;
    }

    private static final Pattern PLAIN = Pattern.compile("[A-Za-z0-9_./=:,@%+^-]+");

    /**
     * The command that continues a run from {@code checkpoint}: the original arguments with {@code --resume} (and
     * the flags a resume does not take: {@code --init-adapter}, {@code --overwrite}) replaced, shell-quoted.
     *
     * @param prog how the user runs qlora ({@code ./qlora}, {@code qlora})
     */
    static String resumeCommand(String prog, List<String> originalArgs, Path checkpoint) {
        List<String> a = new ArrayList<>();
        for (int i = 0; i < originalArgs.size(); i++) {
            String x = originalArgs.get(i);
            if (x.equals("--resume") || x.equals("--init-adapter")) {
                i++; // and its value
                continue;
            }
            if (x.startsWith("--resume=") || x.startsWith("--init-adapter=") || x.equals("--overwrite")) continue;
            a.add(x);
        }
        a.add("--resume");
        a.add(checkpoint.toString());
        StringBuilder b = new StringBuilder(prog);
        for (String x : a) b.append(' ').append(shellQuote(x));
        return b.toString();
    }

    static String shellQuote(String s) {
        if (!s.isEmpty() && PLAIN.matcher(s).matches()) return s;
        return "'" + s.replace("'", "'\\''") + "'";
    }
}
