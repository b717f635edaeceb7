package dev.qlora4j.cli;

import org.junit.jupiter.api.Test;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class ProgressTest {
    static final long S = Progress.SECOND, MS = S / 1000;

    /** A progress line into a string, on a clock the test moves. */
    static final class Fake {
        final StringWriter text = new StringWriter();
        long now = 1_000 * S; // any origin: only differences matter
        double rss = 412.4;

        Progress progress(boolean tty, String label, String unit) {
            return new Progress(new PrintWriter(text, false), tty, label, unit, () -> now, () -> rss).width(200);
        }

        List<String> lines() {
            return text.toString().lines().toList();
        }
    }

    static final Progress.Fields LOSS = (line, done) -> line.append("loss ").append(10 - done / 10.0);

    @Test
    void plainLinesAtTheFirstUpdateEveryNAndTheLastWithEtaArithmetic() {
        Fake f = new Fake();
        Progress p = f.progress(false, "step", "").every(10).first(true).interval(0);
        for (int step = 1; step <= 25; step++) {
            f.now += 2 * S; // 2 s a step
            p.update(step, 25, LOSS);
        }
        assertEquals(List.of(
                // 1 step in 2 s: 24 left → 48 s
                "step 1/25 | loss 9.9 | ETA 48s | rss 412 MiB",
                // 10 steps in 20 s: 15 left → 30 s
                "step 10/25 | loss 9.0 | ETA 30s | rss 412 MiB",
                "step 20/25 | loss 8.0 | ETA 10s | rss 412 MiB",
                // the last says how long it took instead
                "step 25/25 | loss 7.5 | elapsed 50s | rss 412 MiB"), f.lines());
        assertFalse(f.text.toString().contains("\r"), "no carriage returns in plain output");
    }

    @Test
    void plainLinesByTimeWhenNotByCount() {
        Fake f = new Fake();
        Progress p = f.progress(false, "eval", "windows"); // defaults: every 10 s, not the first, not by count
        for (int w = 1; w <= 12; w++) {
            f.now += 3 * S;
            p.update(w, 12, null);
        }
        // lines at 12 s (w 4), 24 s (w 8: 12 s after the last line), and the last; no fields: only the count
        assertEquals(List.of(
                "eval 4/12 windows | ETA 24s | rss 412 MiB",
                "eval 8/12 windows | ETA 12s | rss 412 MiB",
                "eval 12/12 windows | elapsed 36s | rss 412 MiB"), f.lines());
    }

    @Test
    void etaCountsOnlyThisSessionsUnits() {
        Fake f = new Fake();
        Progress p = f.progress(false, "step", "").every(10).interval(0);
        // a run resumed at step 100 of 200: 10 steps in 5 s here → 0.5 s a step, 90 left → 45 s
        for (int step = 101; step <= 110; step++) {
            f.now += S / 2;
            p.update(step, 200, null);
        }
        assertEquals(List.of("step 110/200 | ETA 45s | rss 412 MiB"), f.lines());
        assertEquals(2.0, p.rate(110), 1e-9);
        assertEquals(45.0, p.etaSeconds(110, 200), 1e-9);
    }

    @Test
    void unknownEtaAndUnknownMemory() {
        Fake f = new Fake();
        f.rss = -1; // no /proc: memory is left out
        Progress p = f.progress(false, "step", "").first(true);
        p.update(1, 10, null); // no time has passed: no rate yet
        assertEquals(List.of("step 1/10 | ETA ?"), f.lines());
    }

    @Test
    void terminalRedrawsOneLineInPlace() {
        Fake f = new Fake();
        Progress p = f.progress(true, "step", "");
        f.now += S;
        p.update(1, 4, (line, done) -> line.append("loss 10.8227 | 37 tok/s"));
        f.now += 50 * MS; // within 100 ms of the last draw: skipped
        p.update(2, 4, (line, done) -> line.append("SKIPPED"));
        f.now += 950 * MS;
        p.update(3, 4, (line, done) -> line.append("loss 3.5"));
        f.now += S;
        p.update(4, 4, (line, done) -> line.append("loss 3.25"));
        String out = f.text.toString();
        assertFalse(out.contains("SKIPPED"), out);
        String first = "step 1/4 [==>       ] 25%  loss 10.8227  37 tok/s  ETA 3.0s  rss 412 MiB";
        // step 3 after 2 s: 3 units (base 0) → 0.667 s each, 1 left
        String third = "step 3/4 [=======>  ] 75%  loss 3.5  ETA 0.7s  rss 412 MiB";
        String last = "step 4/4 [==========] 100%  loss 3.25  elapsed 3.0s  rss 412 MiB";
        // a shorter line is padded with spaces over the longer one; only the last ends the line
        assertEquals("\r" + first + "\r" + third + " ".repeat(first.length() - third.length())
                + "\r" + last + " ".repeat(Math.max(0, third.length() - last.length())) + System.lineSeparator(), out);
    }

    @Test
    void terminalMessageClearsTheLineAndDrawsItAgainBelow() {
        Fake f = new Fake();
        Progress p = f.progress(true, "step", "");
        f.now += S;
        p.update(1, 10, null);
        String bar = "step 1/10 [=>        ] 10%  ETA 9.0s  rss 412 MiB";
        p.message("eval @ step 1: loss 3.2");
        p.close();
        assertEquals("\r" + bar + "\r" + " ".repeat(bar.length()) + "\r" + "eval @ step 1: loss 3.2"
                + System.lineSeparator() + bar + System.lineSeparator(), f.text.toString());
        // plain output: a message is just a line
        Fake g = new Fake();
        Progress q = g.progress(false, "step", "");
        q.message("eval @ step 0: loss 3.3");
        q.close();
        assertEquals(List.of("eval @ step 0: loss 3.3"), g.lines());
    }

    @Test
    void terminalLineIsCutToTheWidth() {
        Fake f = new Fake();
        Progress p = f.progress(true, "step", "").width(50);
        f.now += S;
        p.update(1, 10, LOSS);
        // too long for 50 columns with the bar: without it, it fits
        assertEquals("\rstep 1/10 10%  loss 9.9  ETA 9.0s  rss 412 MiB", f.text.toString());
        p.width(30);
        f.now += S;
        p.update(2, 10, LOSS);
        String all = f.text.toString(), drawn = all.substring(all.lastIndexOf('\r') + 1);
        // never wraps (\r could not redraw a wrapped line): cut to 29 columns, then padded over the longer line before
        assertEquals("step 2/10 20%  loss 9.8  ETA " + " ".repeat(46 - 29), drawn);
    }

    @Test
    void quickWorkStaysQuietSlowWorkShows() {
        for (boolean tty : new boolean[]{false, true}) {
            Fake f = new Fake();
            Progress p = f.progress(tty, "load", "blocks").quiet(2 * S);
            for (int b = 1; b <= 12; b++) {
                f.now += 100 * MS;
                p.update(b, 12, null);
            }
            p.close();
            assertEquals("", f.text.toString(), "tty " + tty);

            Fake g = new Fake();
            Progress q = g.progress(tty, "load", "blocks").quiet(2 * S).interval(S);
            for (int b = 1; b <= 12; b++) {
                g.now += 500 * MS;
                q.update(b, 12, null);
            }
            q.close();
            String out = g.text.toString();
            assertTrue(out.contains("load 12/12") && out.contains("elapsed 6.0s"), out);
            assertEquals(!tty, out.contains("load 12/12 blocks"), "the unit only in plain lines: " + out);
            assertFalse(out.contains("load 3/12 "), "nothing before 2 s: " + out);
            assertTrue(out.contains("load 4/12 "), out);
            assertTrue(out.endsWith(System.lineSeparator()), out);
        }
    }

    @Test
    void anInterruptedTerminalLineIsEndedOnClose() {
        Fake f = new Fake();
        Progress p = f.progress(true, "step", "");
        f.now += S;
        p.update(3, 100, null);
        p.close();
        p.update(4, 100, null); // after close: nothing more
        String out = f.text.toString();
        assertTrue(out.startsWith("\rstep 3/100 ") && out.endsWith(System.lineSeparator()), out);
        assertEquals(out.length() - System.lineSeparator().length(), out.indexOf(System.lineSeparator()), "one newline, at the end: " + out);
    }

    @Test
    void durations() {
        assertEquals("0.0s", Progress.duration(0));
        assertEquals("4.2s", Progress.duration(4.2));
        assertEquals("42s", Progress.duration(42.4));
        assertEquals("2m05s", Progress.duration(125));
        assertEquals("1h02m", Progress.duration(3725));
        assertEquals("27h46m", Progress.duration(100_000));
        assertEquals("?", Progress.duration(Double.NaN));
        assertEquals("?", Progress.duration(Double.POSITIVE_INFINITY));
    }

    @Test
    void resumeCommandReplacesResumeAndQuotes() {
        List<String> args = List.of("--verbose", "train", "--model", "models/gpt2", "--data", "my data.txt", "--out", "run",
                "--overwrite", "--init-adapter", "old", "--resume=run/checkpoint-10", "--lr", "1e-4", "--prompt-column", "it's");
        assertEquals("./qlora --verbose train --model models/gpt2 --data 'my data.txt' --out run --lr 1e-4 "
                        + "--prompt-column 'it'\\''s' --resume run/checkpoint-40",
                TrainProgress.resumeCommand("./qlora", args, java.nio.file.Path.of("run/checkpoint-40")));
        assertEquals("qlora train --out o --resume o/checkpoint-2", TrainProgress.resumeCommand("qlora",
                List.of("train", "--resume", "o/checkpoint-1", "--out", "o"), java.nio.file.Path.of("o/checkpoint-2")));
    }
}
