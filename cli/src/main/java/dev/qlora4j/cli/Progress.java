package dev.qlora4j.cli;

import dev.qlora4j.lora.train.ProcessMemory;

import java.io.PrintWriter;
import java.util.Locale;
import java.util.function.DoubleSupplier;
import java.util.function.LongSupplier;

/**
 * A progress line for long work (loading, quantizing, training, evaluating):
 * {@code step 20/200 | loss 3.2101 | 1523 tok/s | ETA 2m05s | rss 412 MiB}.
 * <p>
 * On a terminal it is one line redrawn in place with {@code \r} (with a bar and a percentage, at most every 100 ms,
 * compact and cut to the terminal's width: {@code step 20/200 [=>        ] 10%  loss 3.2101  1523 tok/s  ETA 2m05s
 * rss 412 MiB}); otherwise it prints plain lines — the first update (optionally), every
 * {@link #every(long) N units}, whenever {@link #interval(long) some seconds} passed since the last line, and the last
 * one — so that logs and CI output stay readable. {@link #quiet(long)} keeps work that finishes quickly silent.
 * The ETA extrapolates the rate since this object was made (units done before it, e.g. the steps of a resumed run, do
 * not count). Callers pass their fields as a {@link Fields} callback, which runs only when a line is drawn.
 * Methods are synchronized: a shutdown hook may print a {@link #message(String)} while the worker updates.
 */
final class Progress {

    /**
     * Appends the caller's fields (e.g. {@code loss 3.2101 | 1523 tok/s}) for {@code done} units to the line; runs
     * only when drawing. Make one per loop, not one per update: the updates themselves then allocate nothing.
     */
    @FunctionalInterface
    interface Fields {
        void append(StringBuilder line, long done);
    }

    static final long SECOND = 1_000_000_000L;
    static final long TTY_REDRAW_NANOS = 100_000_000L;
    private static final int BAR = 10;

    private final PrintWriter out;
    private final boolean tty;
    private final String label, unit;
    private final LongSupplier clock;
    private final DoubleSupplier rssMib;
    private final long start;
    private long base = -1; // units done before this session's first update: see update
    private long every, intervalNanos = 10 * SECOND, quietNanos;
    private boolean first;
    private int width;

    private final StringBuilder line = new StringBuilder(160);
    private String shown = ""; // the tty line on screen (without the \r)
    private boolean open; // a tty line is on screen without its newline
    private boolean finished;
    private long lastDrawNanos = Long.MIN_VALUE / 2, lastPrintedDone = -1;

    /**
     * @param tty    redraw one line in place (a terminal) or print plain lines
     * @param label  what counts, first on the line: {@code step}, {@code load}, {@code eval}
     * @param unit   after the count ({@code blocks}), or "" for none
     * @param clock  nanoseconds, {@link System#nanoTime()} outside tests
     * @param rssMib the resident set in MiB (negative: unknown, not shown)
     */
    Progress(PrintWriter out, boolean tty, String label, String unit, LongSupplier clock, DoubleSupplier rssMib) {
        this.out = out;
        this.tty = tty;
        this.label = label;
        this.unit = unit == null || unit.isEmpty() ? "" : " " + unit;
        this.clock = clock;
        this.rssMib = rssMib;
        this.start = clock.getAsLong();
        this.width = -1; // asked on the first terminal line
    }

    /** A progress line on {@code out}, redrawn in place when stdout is a terminal. */
    static Progress of(PrintWriter out, String label, String unit) {
        return new Progress(out, isTerminal(), label, unit, System::nanoTime, ProcessMemory::rssMib);
    }

    /** Whether stdout (and stdin) is an interactive terminal: {@code System.console().isTerminal()}, JDK 22+. */
    static boolean isTerminal() {
        java.io.Console c = System.console();
        return c != null && c.isTerminal();
    }

    /**
     * The terminal's width: {@code $COLUMNS} when exported, else what {@code stty size} says about {@code /dev/tty},
     * else 80. Only asked for terminal output (a redrawn line must not wrap, or {@code \r} cannot redraw it).
     */
    static int terminalWidth() {
        try {
            String c = System.getenv("COLUMNS");
            if (c != null && Integer.parseInt(c.strip()) >= 20) return Integer.parseInt(c.strip());
        } catch (NumberFormatException ignored) {
            // fall through
        }
        java.io.File tty = new java.io.File("/dev/tty");
        if (tty.exists()) {
            try {
                Process p = new ProcessBuilder("stty", "size").redirectInput(tty)
                        .redirectError(ProcessBuilder.Redirect.DISCARD).start();
                String s = new String(p.getInputStream().readAllBytes()).strip(); // "rows cols"
                if (p.waitFor(2, java.util.concurrent.TimeUnit.SECONDS) && p.exitValue() == 0 && s.matches("\\d+ \\d+")) {
                    int cols = Integer.parseInt(s.substring(s.indexOf(' ') + 1));
                    if (cols >= 20) return cols;
                }
            } catch (java.io.IOException | RuntimeException e) {
                // no stty: the default
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        return 80;
    }

    /** Plain mode: also print every {@code n} units (0 = not by count). */
    Progress every(long n) {
        this.every = n;
        return this;
    }

    /** Plain mode: print when this many nanoseconds passed since the last line (0 = not by time; default 10 s). */
    Progress interval(long nanos) {
        this.intervalNanos = nanos;
        return this;
    }

    /** Plain mode: print the first update. */
    Progress first(boolean b) {
        this.first = b;
        return this;
    }

    /** Show nothing before this many nanoseconds have passed; work that is done by then prints nothing at all. */
    Progress quiet(long nanos) {
        this.quietNanos = nanos;
        return this;
    }

    /** Terminal width to cut tty lines to. */
    Progress width(int columns) {
        this.width = columns;
        return this;
    }

    boolean tty() {
        return tty;
    }

    /** Units done per second since this progress began (counting from the first update's predecessor), or NaN. */
    synchronized double rate(long done) {
        long units = done - base;
        double s = (clock.getAsLong() - start) / 1e9;
        return base < 0 || units <= 0 || s <= 0 ? Double.NaN : units / s;
    }

    /** Seconds left at the current rate; NaN while unknown. */
    synchronized double etaSeconds(long done, long total) {
        double r = rate(done);
        return Double.isNaN(r) ? Double.NaN : Math.max(0, total - done) / r;
    }

    /**
     * {@code done} of {@code total} units are done; draws when due. The first update fixes where this session's
     * count began: {@code done - 1} (so a resumed run's ETA counts only its own steps).
     *
     * @return whether a line was drawn
     */
    synchronized boolean update(long done, long total, Fields fields) {
        if (finished) return false;
        if (base < 0) base = Math.max(0, done - 1);
        long now = clock.getAsLong();
        boolean last = done >= total;
        boolean quiet = now - start < quietNanos;
        boolean draw;
        if (tty) {
            draw = last ? !quiet || open : !quiet && now - lastDrawNanos >= TTY_REDRAW_NANOS;
        } else if (quiet && lastPrintedDone < 0) {
            draw = false;
        } else {
            draw = last
                    || first && lastPrintedDone < 0
                    || every > 0 && done % every == 0
                    || intervalNanos > 0 && now - Math.max(lastDrawNanos, start) >= intervalNanos;
        }
        if (last) finished = true;
        if (!draw) return false;
        render(done, total, fields, now, last);
        if (tty) {
            String s = line.toString();
            out.print('\r');
            out.print(s);
            for (int i = s.length(); i < shown.length(); i++) out.print(' ');
            shown = s;
            open = true;
            if (last) {
                out.println();
                open = false;
            }
        } else {
            out.println(line);
        }
        out.flush();
        lastDrawNanos = now;
        lastPrintedDone = done;
        return true;
    }

    /**
     * Prints a line of its own (an evaluation, a note): on a terminal it clears the progress line, prints the message
     * and draws the progress line again below it.
     */
    synchronized void message(String text) {
        if (open) {
            out.print('\r');
            for (int i = 0; i < shown.length(); i++) out.print(' ');
            out.print('\r');
        }
        out.println(text);
        if (open) {
            out.print(shown);
        }
        out.flush();
    }

    /** Ends an open terminal line (after an interruption, or work that stopped short of its total). */
    synchronized void close() {
        if (open) {
            out.println();
            out.flush();
            open = false;
        }
        finished = true;
    }

    private void render(long done, long total, Fields fields, long now, boolean last) {
        line.setLength(0);
        line.append(label).append(' ').append(done).append('/').append(total);
        if (!tty) line.append(unit);
        if (tty) {
            double f = total <= 0 ? 1 : Math.min(1, Math.max(0, (double) done / total));
            int full = (int) Math.floor(f * BAR);
            line.append(" [");
            for (int i = 0; i < BAR; i++) line.append(i < full ? '=' : i == full ? '>' : ' ');
            line.append("] ").append((int) Math.floor(f * 100)).append('%');
        }
        int mark = line.length();
        if (fields != null) {
            line.append(" | ");
            int before = line.length();
            fields.append(line, done);
            if (line.length() == before) line.setLength(mark);
        }
        if (last) {
            line.append(" | elapsed ").append(duration((now - start) / 1e9));
        } else {
            double eta = etaSeconds(done, total);
            line.append(" | ETA ").append(Double.isNaN(eta) ? "?" : duration(eta));
        }
        double rss = rssMib.getAsDouble();
        if (rss >= 0) line.append(" | rss ").append(Math.round(rss)).append(" MiB");
        if (tty) { // compact, to fit 80 columns: "  " between fields instead of " | "
            for (int i = line.indexOf(" | "); i >= 0; i = line.indexOf(" | ", i + 2)) line.replace(i, i + 3, "  ");
        }
        if (tty && width < 0) width = terminalWidth();
        if (tty && width > 1 && line.length() > width - 1) { // a wrapped line breaks \r: drop the bar, then cut
            int open = line.indexOf(" ["), close = line.indexOf("] ");
            if (open > 0 && close > open) line.delete(open, close + 1);
            if (line.length() > width - 1) line.setLength(width - 1);
        }
    }

    /** {@code 4.2s}, {@code 42s}, {@code 2m05s}, {@code 1h02m}; {@code ?} for NaN or infinity. */
    static String duration(double seconds) {
        if (!Double.isFinite(seconds)) return "?";
        if (seconds < 9.95) return String.format(Locale.ROOT, "%.1fs", Math.max(0, seconds));
        long s = Math.round(seconds);
        if (s < 60) return s + "s";
        if (s < 3600) return String.format(Locale.ROOT, "%dm%02ds", s / 60, s % 60);
        return String.format(Locale.ROOT, "%dh%02dm", s / 3600, (s % 3600) / 60);
    }
}
