package dev.qlora4j.lora.train;

import java.io.BufferedWriter;
import java.io.Closeable;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code metrics.jsonl}: one JSON object per optimizer step, flushed as it is written, with {@code step},
 * {@code loss}, {@code lr}, {@code grad_norm} (before clipping), {@code tokens_per_s} (input tokens B·T·accum over
 * the step's wall time), {@code rss_mib} ({@code VmRSS}), {@code epoch}, and {@code eval_loss} on eval steps.
 * Non-finite numbers are written as {@code null}; finite ones as Java's shortest round-trip decimal.
 */
public final class MetricsLog implements Closeable {
    public static final String FILE = "metrics.jsonl";
    private static final Pattern STEP = Pattern.compile("^\\{\"step\":(\\d+)[,}]");

    private final BufferedWriter out;
    private final StringBuilder line = new StringBuilder(256);

    /**
     * Opens {@code dir/metrics.jsonl}; with {@code keepUpToStep >= 0} an existing file keeps only its lines of steps
     * up to that one (a resumed run continues the curve without the steps it redoes), else it is replaced.
     */
    public MetricsLog(Path dir, int keepUpToStep) throws IOException {
        Path file = dir.resolve(FILE);
        List<String> kept = new ArrayList<>();
        if (keepUpToStep >= 0 && Files.isRegularFile(file)) {
            for (String l : Files.readAllLines(file, StandardCharsets.UTF_8)) {
                Matcher m = STEP.matcher(l);
                if (m.find() && Long.parseLong(m.group(1)) <= keepUpToStep) kept.add(l);
            }
        }
        Files.createDirectories(dir);
        out = Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE);
        for (String l : kept) {
            out.write(l);
            out.write('\n');
        }
        out.flush();
    }

    /** Appends one step; {@code evalLoss} NaN = not an eval step. */
    public void write(Trainer.StepStats s, double epoch, double rssMib, double evalLoss) throws IOException {
        line.setLength(0);
        line.append("{\"step\":").append(s.step);
        num("loss", s.loss);
        num("lr", s.lr);
        num("grad_norm", s.gradNorm);
        num("tokens_per_s", Math.round(s.tokensPerSecond() * 10) / 10.0);
        num("rss_mib", Math.round(rssMib * 10) / 10.0);
        num("epoch", Math.round(epoch * 1e4) / 1e4);
        line.append(",\"tokens\":").append(s.tokens).append(",\"targets\":").append(s.targets);
        if (!Double.isNaN(evalLoss)) num("eval_loss", evalLoss);
        line.append("}\n");
        out.append(line);
        out.flush();
    }

    private void num(String key, double v) {
        line.append(",\"").append(key).append("\":");
        if (Double.isFinite(v)) line.append(v);
        else line.append("null");
    }

    @Override
    public void close() throws IOException {
        out.close();
    }
}
