package dev.qlora4j.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static dev.qlora4j.cli.QloraCommandTest.TINY;
import static org.junit.jupiter.api.Assertions.*;

/**
 * SIGTERM (what {@code kill}, {@code timeout} and CI send; Ctrl-C's SIGINT takes the same path) in the middle of
 * {@code qlora train}, for real: a child JVM trains, gets the signal after a few steps, saves a checkpoint of its
 * last step, exits 143 with the command that resumes, and that command finishes the run.
 */
class TrainInterruptTest {

    @TempDir
    Path tmp;

    static long lines(Path f) throws IOException {
        if (!Files.isRegularFile(f)) return 0;
        return Files.readAllLines(f).stream().filter(l -> l.endsWith("}")).count();
    }

    @Test
    @Timeout(value = 90, unit = TimeUnit.SECONDS)
    void sigtermSavesACheckpointAndTheResumeCommandFinishesTheRun() throws Exception {
        Path data = TrainCommandTest.numbers(tmp, 40), out = tmp.resolve("run");
        String java = ProcessHandle.current().info().command().orElseThrow();
        List<String> train = List.of("train", "--model", TINY.toString(), "--data", data.toString(), "--out", out.toString(),
                "--batch", "2", "--seq", "12", "--steps", "1000000", "--schedule", "constant", "--lr", "1e-2",
                "--target-modules", "c_attn,c_proj", "--save-every", "0", "--eval-every", "0", "--log-every", "0");
        List<String> cmd = new ArrayList<>(List.of(java, "--add-modules", "jdk.incubator.vector",
                "--enable-native-access=ALL-UNNAMED", "-Xmx1g", "-cp", System.getProperty("java.class.path"),
                "-Dqlora.prog=qlora", QloraCommand.class.getName()));
        cmd.addAll(train);
        Path stdout = tmp.resolve("stdout.txt"), stderr = tmp.resolve("stderr.txt");
        Process p = new ProcessBuilder(cmd).redirectOutput(stdout.toFile()).redirectError(stderr.toFile()).start();
        try {
            Path metrics = out.resolve("metrics.jsonl");
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(240); // generous: a loaded machine starts the child JVM slowly
            while (lines(metrics) < 2) {
                assertTrue(p.isAlive(), () -> "the child ended early: " + read(stderr) + read(stdout));
                assertTrue(System.nanoTime() < deadline, () -> "no 2 steps in 240 s: " + read(stderr) + read(stdout));
                Thread.sleep(20);
            }
            p.destroy(); // SIGTERM
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the child saves and exits within the hook's 60 s");
        } finally {
            p.destroyForcibly();
        }
        String err = read(stderr), o = read(stdout);
        assertEquals(143, p.exitValue(), "128 + SIGTERM; stderr: " + err + "\nstdout: " + o);

        // the checkpoint is of the last step that completed: the last line of metrics.jsonl
        long k = lines(out.resolve("metrics.jsonl"));
        assertTrue(k >= 2, "steps " + k);
        Path ckpt = out.resolve("checkpoint-" + k).toAbsolutePath().normalize();
        assertTrue(Files.isRegularFile(ckpt.resolve("trainer_state.json")), o + err);
        try (var s = Files.list(out)) {
            assertEquals(List.of("checkpoint-" + k), s.map(x -> x.getFileName().toString())
                    .filter(n -> n.startsWith("checkpoint-")).toList(), "--save-every 0: only the interrupt saved");
        }
        assertFalse(Files.exists(out.resolve("adapter_config.json")), "an unfinished run writes no final adapter");
        assertTrue(Files.readString(out.resolve("loss_chart.svg")).contains("steps 1–" + k), "the chart covers the steps so far");
        assertTrue(o.contains("stopping after this step to save a checkpoint"), o);

        // one line on stderr saying how to resume: the original command with --resume <checkpoint>
        List<String> said = err.lines().filter(l -> l.startsWith("qlora train: ")).toList();
        assertEquals(1, said.size(), err);
        String expected = "qlora train: interrupted after step " + k + " of 1000000; saved " + ckpt + ". Resume with: qlora "
                + String.join(" ", train) + " --resume " + ckpt;
        assertEquals(expected, said.getFirst());
        assertFalse(err.contains("\tat "), err);

        // run that command — its constant schedule extended to k + 3 steps so that it ends — and the run is complete
        String[] resume = said.getFirst().substring(said.getFirst().indexOf("Resume with: qlora ") + 19).split(" ");
        List<String> args = new ArrayList<>(Arrays.asList(resume));
        args.set(args.indexOf("--steps") + 1, Long.toString(k + 3));
        QloraCommandTest.Run r = QloraCommandTest.run(new CommandLine(new QloraCommand()), args.toArray(String[]::new));
        assertEquals(0, r.code(), r.err() + r.out());
        assertTrue(r.out().contains("resumed from " + ckpt + " at step " + k + "/" + (k + 3)), r.out());
        List<Long> steps = TrainCommandTest.metrics(out).stream().map(j -> j.get("step").asLong()).toList();
        List<Long> want = new ArrayList<>();
        for (long i = 1; i <= k + 3; i++) want.add(i);
        assertEquals(want, steps, "metrics.jsonl: every step once");
        assertTrue(Files.isRegularFile(out.resolve("adapter_model.safetensors")));
        assertTrue(r.out().contains("loss chart: " + out.resolve("loss_chart.svg")), r.out());
    }

    static String read(Path f) {
        try {
            return Files.isRegularFile(f) ? Files.readString(f) : "";
        } catch (IOException e) {
            return e.toString();
        }
    }
}
