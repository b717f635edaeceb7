package dev.qlora4j.lora.train;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * {@code loss_chart.svg}: the training curve of a run, drawn from its {@link MetricsLog metrics.jsonl} (so a resumed
 * run's chart covers the whole run): train loss per step (thin line, plus an exponential moving average once there
 * are enough steps), eval loss (points joined by a line), axes with tick labels, a legend, and a title with the run's
 * key facts. Self-contained SVG 1.1: no scripts, no external fonts or styles. Non-finite losses ({@code null} in
 * metrics.jsonl) are left out and counted in the subtitle; an empty log gives a chart that says so.
 */
public final class LossChart {
    public static final String FILE = "loss_chart.svg";

    static final int WIDTH = 960, HEIGHT = 540;
    static final int LEFT = 78, RIGHT = 28, TOP = 92, BOTTOM = 62;
    private static final String TRAIN = "#9bbbe0", SMOOTH = "#1f5fae", EVAL = "#e06c1f", GRID = "#e4e4e4",
            AXIS = "#444444", TEXT = "#222222", MUTED = "#666666";
    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * A run's curves, sorted by step.
     *
     * @param skipped steps whose train loss is not a finite number (not drawn)
     */
    public record Data(int[] steps, double[] loss, int[] evalSteps, double[] evalLoss, int skipped) {
        public int size() {
            return steps.length;
        }
    }

    private LossChart() {
    }

    /**
     * Reads {@code metrics.jsonl}: {@code step}, {@code loss} and, on eval steps, {@code eval_loss}. A step logged more
     * than once keeps its last line; lines that are blank or not JSON objects with a step are skipped (a line being
     * written while we read is not an error). {@code initialEvalLoss} (the evaluation before the first step, which
     * metrics.jsonl does not hold) is added at step 0 unless NaN.
     */
    public static Data read(Path metrics, double initialEvalLoss) throws IOException {
        TreeMap<Integer, Double> loss = new TreeMap<>(), eval = new TreeMap<>();
        if (!Double.isNaN(initialEvalLoss)) eval.put(0, initialEvalLoss);
        if (Files.isRegularFile(metrics)) {
            for (String l : Files.readAllLines(metrics, StandardCharsets.UTF_8)) {
                if (l.isBlank()) continue;
                JsonNode o;
                try {
                    o = JSON.readTree(l);
                } catch (JsonProcessingException e) {
                    continue;
                }
                if (o == null || !o.isObject() || !o.path("step").canConvertToInt()) continue;
                int step = o.get("step").asInt();
                loss.put(step, number(o.get("loss")));
                if (o.has("eval_loss")) eval.put(step, number(o.get("eval_loss")));
                else if (step != 0) eval.remove(step); // a step logged again without an eval drops the stale one
            }
        }
        return data(loss, eval);
    }

    /** The curves of explicit (step → loss) maps; NaN train losses count as skipped, NaN eval losses are dropped. */
    public static Data data(Map<Integer, Double> trainLoss, Map<Integer, Double> evalLoss) {
        TreeMap<Integer, Double> t = new TreeMap<>(trainLoss), e = new TreeMap<>(evalLoss);
        int n = 0, skipped = 0;
        int[] steps = new int[t.size()];
        double[] loss = new double[t.size()];
        for (var x : t.entrySet()) {
            if (x.getValue() == null || !Double.isFinite(x.getValue())) {
                skipped++;
                continue;
            }
            steps[n] = x.getKey();
            loss[n++] = x.getValue();
        }
        int m = 0;
        int[] evalSteps = new int[e.size()];
        double[] evals = new double[e.size()];
        for (var x : e.entrySet()) {
            if (x.getValue() != null && Double.isFinite(x.getValue())) {
                evalSteps[m] = x.getKey();
                evals[m++] = x.getValue();
            }
        }
        return new Data(Arrays.copyOf(steps, n), Arrays.copyOf(loss, n), Arrays.copyOf(evalSteps, m),
                Arrays.copyOf(evals, m), skipped);
    }

    private static double number(JsonNode n) {
        return n != null && n.isNumber() ? n.asDouble() : Double.NaN;
    }

    /**
     * Reads {@code dir/metrics.jsonl} and writes {@code dir/loss_chart.svg} (atomically: readers never see half a
     * file).
     *
     * @param title    the first line, e.g. {@code tiny-gpt2 (nf4) · LoRA r=8 α=16 · data.jsonl}
     * @param subtitle the second line, e.g. the training config; may be empty
     * @return the chart file
     */
    public static Path write(Path dir, String title, String subtitle, double initialEvalLoss) throws IOException {
        Data d = read(dir.resolve(MetricsLog.FILE), initialEvalLoss);
        Path file = dir.resolve(FILE);
        Path tmp = dir.resolve("." + FILE + ".tmp");
        Files.writeString(tmp, svg(d, title, subtitle), StandardCharsets.UTF_8);
        try {
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
        }
        return file;
    }

    /** The chart as an SVG document. */
    public static String svg(Data d, String title, String subtitle) {
        StringBuilder s = new StringBuilder(16_384 + 24 * d.size());
        s.append("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        s.append("<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"").append(WIDTH)
                .append("\" height=\"").append(HEIGHT).append("\" viewBox=\"0 0 ").append(WIDTH).append(' ')
                .append(HEIGHT).append("\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n");
        s.append("<title>").append(esc(title)).append("</title>\n");
        s.append("<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n");
        text(s, LEFT, 30, 17, "start", TEXT, "bold", "chart-title", title);
        if (subtitle != null && !subtitle.isBlank()) text(s, LEFT, 51, 12, "start", MUTED, null, "chart-subtitle", subtitle);
        text(s, LEFT, 70, 12, "start", MUTED, null, "chart-facts", facts(d));

        int x0 = LEFT, x1 = WIDTH - RIGHT, y0 = HEIGHT - BOTTOM, y1 = TOP; // plot box: x0..x1, y1 (top)..y0 (bottom)
        if (d.size() == 0 && d.evalSteps().length == 0) {
            s.append("<rect x=\"").append(x0).append("\" y=\"").append(y1).append("\" width=\"").append(x1 - x0)
                    .append("\" height=\"").append(y0 - y1).append("\" fill=\"none\" stroke=\"").append(GRID).append("\"/>\n");
            text(s, (x0 + x1) / 2, (y0 + y1) / 2, 15, "middle", MUTED, null, "no-data",
                    d.skipped() > 0 ? "no finite loss logged yet" : "no steps logged yet");
            return s.append("</svg>\n").toString();
        }

        // ranges
        double minX = Double.POSITIVE_INFINITY, maxX = Double.NEGATIVE_INFINITY;
        double minY = Double.POSITIVE_INFINITY, maxY = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < d.size(); i++) {
            minX = Math.min(minX, d.steps()[i]);
            maxX = Math.max(maxX, d.steps()[i]);
            minY = Math.min(minY, d.loss()[i]);
            maxY = Math.max(maxY, d.loss()[i]);
        }
        for (int i = 0; i < d.evalSteps().length; i++) {
            minX = Math.min(minX, d.evalSteps()[i]);
            maxX = Math.max(maxX, d.evalSteps()[i]);
            minY = Math.min(minY, d.evalLoss()[i]);
            maxY = Math.max(maxY, d.evalLoss()[i]);
        }
        if (minX > 0 && minX <= 1) minX = 0;
        if (maxX - minX < 1) maxX = minX + 1;
        double pad = 0.03 * (maxY - minY);
        minY -= pad;
        maxY += pad;
        double[] yt = ticks(minY, maxY, 6);
        double[] xt = ticks(minX, maxX, 8);
        double ylo = Math.min(minY, yt[0]), yhi = Math.max(maxY, yt[yt.length - 1]);
        if (yhi - ylo < 1e-12) {
            ylo -= 0.5;
            yhi += 0.5;
            yt = ticks(ylo, yhi, 6);
        }
        double xlo = minX, xhi = maxX;
        final double fylo = ylo, fyhi = yhi;
        Scale sx = v -> x0 + (v - xlo) / (xhi - xlo) * (x1 - x0);
        Scale sy = v -> y0 - (v - fylo) / (fyhi - fylo) * (y0 - y1);

        // grid and tick labels
        s.append("<g id=\"grid\" stroke=\"").append(GRID).append("\" stroke-width=\"1\">\n");
        for (double v : yt) if (v >= ylo - 1e-9 && v <= yhi + 1e-9) line(s, x0, sy.at(v), x1, sy.at(v));
        for (double v : xt) if (v >= xlo - 1e-9 && v <= xhi + 1e-9) line(s, sx.at(v), y1, sx.at(v), y0);
        s.append("</g>\n");
        s.append("<g id=\"y-ticks\" font-size=\"12\" fill=\"").append(TEXT).append("\" text-anchor=\"end\">\n");
        for (double v : yt) {
            if (v < ylo - 1e-9 || v > yhi + 1e-9) continue;
            s.append("<text x=\"").append(x0 - 8).append("\" y=\"").append(f(sy.at(v) + 4)).append("\">")
                    .append(tickLabel(v, yt)).append("</text>\n");
        }
        s.append("</g>\n");
        s.append("<g id=\"x-ticks\" font-size=\"12\" fill=\"").append(TEXT).append("\" text-anchor=\"middle\">\n");
        for (double v : xt) {
            if (v < xlo - 1e-9 || v > xhi + 1e-9) continue;
            s.append("<text x=\"").append(f(sx.at(v))).append("\" y=\"").append(y0 + 20).append("\">")
                    .append(tickLabel(v, xt)).append("</text>\n");
        }
        s.append("</g>\n");
        // axes
        s.append("<g id=\"axes\" stroke=\"").append(AXIS).append("\" stroke-width=\"1.2\">\n");
        line(s, x0, y0, x1, y0);
        line(s, x0, y0, x0, y1);
        s.append("</g>\n");
        text(s, (x0 + x1) / 2, HEIGHT - 18, 13, "middle", TEXT, null, "x-label", "step");
        s.append("<text id=\"y-label\" x=\"20\" y=\"").append((y0 + y1) / 2).append("\" font-size=\"13\" fill=\"")
                .append(TEXT).append("\" text-anchor=\"middle\" transform=\"rotate(-90 20 ").append((y0 + y1) / 2)
                .append(")\">loss (nats/token)</text>\n");

        // curves
        boolean smooth = d.size() >= 20;
        if (d.size() > 0) {
            s.append("<polyline id=\"train-loss\" fill=\"none\" stroke=\"").append(smooth ? TRAIN : SMOOTH)
                    .append("\" stroke-width=\"").append(smooth ? "1" : "1.8").append("\" stroke-linejoin=\"round\" points=\"");
            for (int i = 0; i < d.size(); i++) {
                if (i > 0) s.append(' ');
                s.append(f(sx.at(d.steps()[i]))).append(',').append(f(sy.at(d.loss()[i])));
            }
            s.append("\"/>\n");
            if (d.size() == 1) {
                s.append("<circle id=\"train-point\" cx=\"").append(f(sx.at(d.steps()[0]))).append("\" cy=\"")
                        .append(f(sy.at(d.loss()[0]))).append("\" r=\"3\" fill=\"").append(SMOOTH).append("\"/>\n");
            }
        }
        if (smooth) {
            double[] ema = ema(d.loss(), smoothing(d.size()));
            s.append("<polyline id=\"train-loss-smoothed\" fill=\"none\" stroke=\"").append(SMOOTH)
                    .append("\" stroke-width=\"2.2\" stroke-linejoin=\"round\" points=\"");
            for (int i = 0; i < d.size(); i++) {
                if (i > 0) s.append(' ');
                s.append(f(sx.at(d.steps()[i]))).append(',').append(f(sy.at(ema[i])));
            }
            s.append("\"/>\n");
        }
        if (d.evalSteps().length > 0) {
            s.append("<polyline id=\"eval-loss\" fill=\"none\" stroke=\"").append(EVAL)
                    .append("\" stroke-width=\"2\" stroke-dasharray=\"6 3\" points=\"");
            for (int i = 0; i < d.evalSteps().length; i++) {
                if (i > 0) s.append(' ');
                s.append(f(sx.at(d.evalSteps()[i]))).append(',').append(f(sy.at(d.evalLoss()[i])));
            }
            s.append("\"/>\n<g id=\"eval-points\" fill=\"").append(EVAL).append("\" stroke=\"#ffffff\" stroke-width=\"1\">\n");
            for (int i = 0; i < d.evalSteps().length; i++) {
                s.append("<circle class=\"eval-point\" cx=\"").append(f(sx.at(d.evalSteps()[i]))).append("\" cy=\"")
                        .append(f(sy.at(d.evalLoss()[i]))).append("\" r=\"4\"><title>step ").append(d.evalSteps()[i])
                        .append(": eval loss ").append(String.format(Locale.ROOT, "%.4f", d.evalLoss()[i]))
                        .append("</title></circle>\n");
            }
            s.append("</g>\n");
        }

        // legend, top right inside the plot
        List<String[]> items = new ArrayList<>(); // color, width, dash, label
        if (d.size() > 0) items.add(new String[]{smooth ? TRAIN : SMOOTH, smooth ? "1" : "1.8", null, "train loss"});
        if (smooth) items.add(new String[]{SMOOTH, "2.2", null, "train loss, smoothed (EMA)"});
        if (d.evalSteps().length > 0) items.add(new String[]{EVAL, "2", "6 3", "eval loss"});
        int lw = 206, lh = 10 + 20 * items.size(), lx = x1 - lw - 10, ly = y1 + 10;
        s.append("<g id=\"legend\" font-size=\"12\" fill=\"").append(TEXT).append("\">\n");
        s.append("<rect x=\"").append(lx).append("\" y=\"").append(ly).append("\" width=\"").append(lw)
                .append("\" height=\"").append(lh).append("\" fill=\"#ffffff\" fill-opacity=\"0.9\" stroke=\"#cccccc\"/>\n");
        for (int i = 0; i < items.size(); i++) {
            String[] it = items.get(i);
            int yy = ly + 15 + 20 * i;
            s.append("<line x1=\"").append(lx + 10).append("\" y1=\"").append(yy).append("\" x2=\"").append(lx + 40)
                    .append("\" y2=\"").append(yy).append("\" stroke=\"").append(it[0]).append("\" stroke-width=\"")
                    .append(it[1]).append('"').append(it[2] == null ? "" : " stroke-dasharray=\"" + it[2] + "\"").append("/>\n");
            if (it[3].equals("eval loss")) {
                s.append("<circle cx=\"").append(lx + 25).append("\" cy=\"").append(yy).append("\" r=\"4\" fill=\"")
                        .append(EVAL).append("\"/>\n");
            }
            s.append("<text x=\"").append(lx + 48).append("\" y=\"").append(yy + 4).append("\">").append(esc(it[3]))
                    .append("</text>\n");
        }
        s.append("</g>\n");
        return s.append("</svg>\n").toString();
    }

    /** {@code steps 1–200 · last train loss 2.913 · eval loss 3.204 → 2.951 (best 2.931 at step 150)}. */
    static String facts(Data d) {
        List<String> parts = new ArrayList<>();
        if (d.size() > 0) {
            parts.add(d.size() == 1 ? "step " + d.steps()[0] : "steps " + d.steps()[0] + "–" + d.steps()[d.size() - 1]);
            parts.add(String.format(Locale.ROOT, "last train loss %.4f", d.loss()[d.size() - 1]));
        }
        int n = d.evalSteps().length;
        if (n > 0) {
            int best = 0;
            for (int i = 1; i < n; i++) if (d.evalLoss()[i] < d.evalLoss()[best]) best = i;
            String e = n == 1 ? String.format(Locale.ROOT, "eval loss %.4f at step %d", d.evalLoss()[0], d.evalSteps()[0])
                    : String.format(Locale.ROOT, "eval loss %.4f → %.4f (best %.4f at step %d)", d.evalLoss()[0],
                    d.evalLoss()[n - 1], d.evalLoss()[best], d.evalSteps()[best]);
            parts.add(e);
        }
        if (d.skipped() > 0) parts.add(d.skipped() + " step" + (d.skipped() == 1 ? "" : "s") + " with a non-finite loss not drawn");
        return String.join(" · ", parts);
    }

    /** Smoothing weight of the EMA: that of a moving average over about 1/20 of the steps (at least 5). */
    static double smoothing(int n) {
        double k = Math.max(5, n / 20.0);
        return 1 - 2 / (k + 1);
    }

    /** Debiased exponential moving average (as TensorBoard's smoothing): starts at the first value, not at 0. */
    static double[] ema(double[] v, double w) {
        double[] out = new double[v.length];
        double acc = 0, norm = 0;
        for (int i = 0; i < v.length; i++) {
            acc = acc * w + (1 - w) * v[i];
            norm = norm * w + (1 - w);
            out[i] = acc / norm;
        }
        return out;
    }

    /** About {@code target} "nice" ticks (1, 2, 2.5, 5 × 10^k) covering [lo, hi]. */
    static double[] ticks(double lo, double hi, int target) {
        if (!(hi > lo)) {
            double pad = lo == 0 ? 1 : Math.abs(lo) * 0.1;
            lo -= pad;
            hi += pad;
        }
        double raw = (hi - lo) / Math.max(1, target - 1);
        double mag = Math.pow(10, Math.floor(Math.log10(raw)));
        double step = mag;
        for (double m : new double[]{1, 2, 2.5, 5, 10}) {
            if (m * mag >= raw) {
                step = m * mag;
                break;
            }
        }
        long k0 = (long) Math.floor(lo / step + 1e-9), k1 = (long) Math.ceil(hi / step - 1e-9); // 1080.99999 is 1081
        int n = (int) (k1 - k0) + 1;
        double[] t = new double[n];
        for (int i = 0; i < n; i++) t[i] = (k0 + i) * step;
        return t;
    }

    /** A tick value with as many decimals as the tick spacing needs. */
    static String tickLabel(double v, double[] ticks) {
        double step = ticks.length > 1 ? new java.math.BigDecimal(ticks[1] - ticks[0])
                .round(new java.math.MathContext(6)).doubleValue() : 1; // 0.00999999999998 → 0.01
        int decimals = Math.max(0, (int) Math.ceil(-Math.log10(step) - 1e-9));
        if (step * Math.pow(10, decimals) % 1 > 1e-6 && decimals < 6) decimals++; // 2.5 × 10^k
        String r = String.format(Locale.ROOT, "%." + decimals + "f", v);
        return r.equals("-0") || r.matches("-0\\.0*") ? r.substring(1) : r;
    }

    private interface Scale {
        double at(double v);
    }

    private static void line(StringBuilder s, double ax, double ay, double bx, double by) {
        s.append("<line x1=\"").append(f(ax)).append("\" y1=\"").append(f(ay)).append("\" x2=\"").append(f(bx))
                .append("\" y2=\"").append(f(by)).append("\"/>\n");
    }

    private static void text(StringBuilder s, double x, double y, int size, String anchor, String color, String weight,
                             String id, String text) {
        s.append("<text id=\"").append(id).append("\" x=\"").append(f(x)).append("\" y=\"").append(f(y))
                .append("\" font-size=\"").append(size).append("\" fill=\"").append(color).append("\" text-anchor=\"")
                .append(anchor).append('"');
        if (weight != null) s.append(" font-weight=\"").append(weight).append('"');
        s.append('>').append(esc(text)).append("</text>\n");
    }

    private static String f(double v) {
        return String.format(Locale.ROOT, "%.1f", v);
    }

    /** XML text/attribute escaping; drops control characters XML 1.0 cannot hold. */
    static String esc(String s) {
        if (s == null) return "";
        StringBuilder b = new StringBuilder(s.length() + 16);
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '&' -> b.append("&amp;");
                case '<' -> b.append("&lt;");
                case '>' -> b.append("&gt;");
                case '"' -> b.append("&quot;");
                default -> {
                    if (c >= 0x20 || c == '\t' || c == '\n') b.append(c);
                }
            }
        }
        return b.toString();
    }
}
