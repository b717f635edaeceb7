package dev.qlora4j.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static dev.qlora4j.cli.QloraCommandTest.TINY;
import static dev.qlora4j.cli.QloraCommandTest.run;
import static org.junit.jupiter.api.Assertions.*;

/** Mistakes a user makes on a first run: each is one line on stderr naming the bad thing, exit 1, no stack trace. */
class UserErrorsTest {

    @TempDir
    Path tmp;

    Path text() throws IOException {
        return Files.writeString(tmp.resolve("d.txt"), "hello world, this is some training text.\n".repeat(40));
    }

    @Test
    void missingModelDirectory() throws IOException {
        String nope = tmp.resolve("no-such-model").toString(), data = text().toString(), out = tmp.resolve("o").toString();
        run("train", "--model", nope, "--data", data, "--out", out).assertOneLineError(1, "--model", nope, "no such directory");
        run("eval", "--model", nope, "--data", data).assertOneLineError(1, "--model", nope, "no such directory");
        run("generate", "--model", nope, "--prompt", "hi").assertOneLineError(1, "--model", nope, "no such directory");
        run("quantize", "--model", nope, "--out", out).assertOneLineError(1, "--model", nope, "no such directory");
        assertFalse(Files.exists(Path.of(out)));
    }

    @Test
    void wrongModelTypeInConfigJson() throws IOException {
        Path llama = Files.createDirectory(tmp.resolve("llama"));
        Files.writeString(llama.resolve("config.json"), "{\"model_type\": \"llama\", \"hidden_size\": 8}");
        Files.copy(TINY.resolve("model.safetensors"), llama.resolve("model.safetensors"));
        String data = text().toString();
        run("train", "--model", llama.toString(), "--data", data, "--out", tmp.resolve("o").toString())
                .assertOneLineError(1, "config.json", "model_type 'llama'", "gpt2, bloom");
        run("eval", "--model", llama.toString(), "--data", data).assertOneLineError(1, "config.json", "'llama'");
    }

    @Test
    void unknownTargetModule() throws IOException {
        String data = text().toString(), out = tmp.resolve("o").toString();
        run("train", "--model", TINY.toString(), "--data", data, "--out", out, "--target-modules", "c_attn,q_proj")
                .assertOneLineError(1, "--target-modules", "q_proj", "matches no module", "c_attn");
        run("train", "--model", TINY.toString(), "--data", data, "--out", out, "--target-modules", "attn\\.(q|k)_proj")
                .assertOneLineError(1, "--target-modules", "(q|k)_proj", "matches no module");
        assertFalse(Files.exists(tmp.resolve("o").resolve("metrics.jsonl")));
    }

    @Test
    void badCsvColumn() throws IOException {
        Path csv = Files.writeString(tmp.resolve("pairs.csv"), "question,answer\n\"1 + 1 =\",\" two\"\n\"2 + 2 =\",\" four\"\n");
        String out = tmp.resolve("o").toString();
        run("train", "--model", TINY.toString(), "--data", csv.toString(), "--out", out)
                .assertOneLineError(1, "pairs.csv", "no column \"text\"", "question, answer");
        run("train", "--model", TINY.toString(), "--data", csv.toString(), "--out", out, "--prompt-column", "prompt",
                "--completion-column", "answer").assertOneLineError(1, "pairs.csv", "no column \"prompt\"");
        run("train", "--model", TINY.toString(), "--data", csv.toString(), "--out", out, "--prompt-column", "question")
                .assertOneLineError(1, "--prompt-column and --completion-column go together");
    }

    @Test
    void outOfRangeFlags() throws IOException {
        String m = TINY.toString(), data = text().toString(), out = tmp.resolve("o").toString();
        String[][] cases = {
                {"--lora-r", "0", "--lora-r must be at least 1, got 0"},
                {"--batch", "-1", "--batch must be at least 1, got -1"},
                {"--lr", "-1", "--lr must be finite and >= 0, got -1.0"},
                {"--lr", "NaN", "--lr must be finite"},
                {"--steps", "0", "--steps must be at least 1, got 0"},
                {"--seq", "0", "--seq must be at least 1, got 0"},
                {"--grad-accum", "0", "--grad-accum must be at least 1"},
                {"--lora-alpha", "0", "--lora-alpha must be > 0"},
                {"--lora-dropout", "1", "--lora-dropout must be in [0, 1)"},
                {"--eval-every", "-5", "--eval-every must be >= 0, got -5"},
                {"--epochs", "-1", "--epochs must be > 0"},
                {"--max-context", "1", "--max-context must be at least 2"},
        };
        for (String[] c : cases) {
            run("train", "--model", m, "--data", data, "--out", out, c[0], c[1]).assertOneLineError(1, c[2]);
        }
        run("eval", "--model", m, "--data", data, "--seq", "1").assertOneLineError(1, "--seq must be in [2, 1024], got 1");
        run("eval", "--model", m, "--data", data, "--stride", "0").assertOneLineError(1, "--stride must be in [1,");
        run("generate", "--model", m, "--prompt", "hi", "--max-new-tokens", "0").assertOneLineError(1, "--max-new-tokens");
        run("generate", "--model", m, "--prompt", "hi", "--temperature", "-1").assertOneLineError(1, "--temperature must be > 0");
        run("generate", "--model", m, "--prompt", "hi", "--top-p", "2").assertOneLineError(1, "--top-p must be in (0, 1]");
        run("generate", "--model", m, "--prompt", "hi", "--top-k", "-3").assertOneLineError(1, "--top-k must be >= 0");
        run("generate", "--model", m, "--prompt", "hi", "--repetition-penalty", "0")
                .assertOneLineError(1, "--repetition-penalty must be > 0");
        run("quantize", "--model", m, "--blocksize", "48", "--out", out).assertOneLineError(1, "--blocksize 48");
        assertFalse(Files.exists(Path.of(out)), "no failed command leaves an output behind");
    }

    @Test
    void outputUnderAFileIsRefusedBeforeAnyWork() throws IOException {
        Path file = Files.writeString(tmp.resolve("results.txt"), "x");
        String under = file.resolve("run").toString();
        run("train", "--model", TINY.toString(), "--data", text().toString(), "--out", under)
                .assertOneLineError(1, "--out", under, "results.txt is a file");
        QloraCommandTest.Run q = run("quantize", "--model", TINY.toString(), "--out", under);
        q.assertOneLineError(1, "--out", under, "results.txt is a file");
        assertEquals("", q.out(), "refused before quantizing");
    }

    @Test
    void verbosePrintsTheStackTraceAndOnlyThen() throws IOException {
        String data = text().toString(), out = tmp.resolve("o").toString();
        QloraCommandTest.Run quiet = run("train", "--model", TINY.toString(), "--data", data, "--out", out, "--lora-r", "0");
        quiet.assertOneLineError(1, "--lora-r");
        for (String[] args : new String[][]{
                {"--verbose", "train", "--model", TINY.toString(), "--data", data, "--out", out, "--lora-r", "0"},
                {"train", "--verbose", "--model", TINY.toString(), "--data", data, "--out", out, "--lora-r", "0"}}) {
            QloraCommandTest.Run v = run(args);
            assertEquals(1, v.code(), v.err());
            assertTrue(v.err().startsWith("qlora train: --lora-r must be at least 1, got 0"), v.err());
            assertTrue(v.err().contains("\tat dev.qlora4j.cli.TrainCommand"), v.err());
        }
    }
}
