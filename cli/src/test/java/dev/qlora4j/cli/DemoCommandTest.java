package dev.qlora4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static dev.qlora4j.cli.QloraCommandTest.TINY;
import static dev.qlora4j.cli.QloraCommandTest.run;
import static org.junit.jupiter.api.Assertions.*;

/** {@code qlora demo --quick} end to end on tiny-gpt2 (random weights: the mechanics, not the scores). */
class DemoCommandTest {

    @TempDir
    Path tmp;

    static List<JsonNode> jsonl(Path f) throws IOException {
        ObjectMapper om = new ObjectMapper();
        List<JsonNode> l = new ArrayList<>();
        for (String line : Files.readAllLines(f)) l.add(om.readTree(line));
        return l;
    }

    private static void assertInOrder(String text, String... parts) {
        int at = 0;
        for (String p : parts) {
            int i = text.indexOf(p, at);
            assertTrue(i >= 0, () -> "'" + p + "' missing (or out of order) in:\n" + text);
            at = i + p.length();
        }
    }

    @Test
    void quickNumbersDemoRunsEveryStepAndWritesTheAdapter() throws IOException {
        Path out = tmp.resolve("demo");
        QloraCommandTest.Run r = run("demo", "--model", TINY.toString(), "--quick", "--out", out.toString());
        assertEquals(0, r.code(), r.err() + r.out());
        assertEquals("", r.err());
        String o = r.out();
        assertInOrder(o, "== 1. Quantize to NF4 with double quantization",
                "linear weights     8 tensors, 96 parameters", "written to", "model-nf4",
                "== 2. Greedy generation", "The meaning of life is → ", "Once upon a time, → ",
                "== 3. The task: number → English words", "48 training and 8 held-out numbers of 1 to 4 digits",
                "before training    exact match ", "/4 (", "words in place ",
                "== 4. QLoRA fine-tuning", "plus a trained copy of ln_f (PEFT's modules_to_save, ", "held-out loss ", "(before training)", "step 1/4", "step 4/4",
                "trained            4 steps",
                "== 5. After fine-tuning", "held-out numbers (4)", "before", "after", "  exact match", "/4 (",
                "/4 (", "  words in place", "%", "%", "  loss on the completions",
                "expected", "before", "after",
                "== Files", "adapter", "metrics", "Use the adapter:", "./qlora generate --model " + out.resolve("model-nf4")
                        + " --adapter " + out.resolve("adapter") + " --prompt '", "done in ");
        assertEquals(3, o.lines().filter(l -> l.contains("  expected  ")).count(), o);
        assertFalse(o.contains("step 5/"), o);

        Path adapter = out.resolve("adapter");
        for (String f : List.of("adapter_config.json", "adapter_model.safetensors", "metrics.jsonl")) {
            assertTrue(Files.isRegularFile(adapter.resolve(f)), f);
        }
        assertTrue(Files.isDirectory(adapter.resolve("checkpoint-4")));
        assertEquals(4, Files.readAllLines(adapter.resolve("metrics.jsonl")).size());
        JsonNode cfg = new ObjectMapper().readTree(adapter.resolve("adapter_config.json").toFile());
        assertEquals(4, cfg.get("r").asInt());
        assertEquals(TINY.toString(), cfg.get("base_model_name_or_path").asText());
        assertEquals("[\"ln_f\"]", cfg.get("modules_to_save").toString());
        JsonNode q = new ObjectMapper().readTree(out.resolve("model-nf4/config.json").toFile()).get("quantization_config");
        assertEquals("nf4", q.get("bnb_4bit_quant_type").asText());
        assertTrue(q.get("bnb_4bit_use_double_quant").asBoolean());

        List<JsonNode> train = jsonl(out.resolve("data/numbers-train.jsonl")), held = jsonl(out.resolve("data/numbers-heldout.jsonl"));
        assertEquals(48, train.size());
        assertEquals(8, held.size());
        Set<String> prompts = new HashSet<>();
        for (JsonNode n : train) prompts.add(n.get("prompt").asText());
        assertEquals(48, prompts.size());
        for (JsonNode n : held) {
            assertFalse(prompts.contains(n.get("prompt").asText()), "held-out number in the training data: " + n);
            assertTrue(n.get("prompt").asText().matches("\\d( \\d){0,3} ="), n.toString()); // spaced digits by default
            assertTrue(n.get("completion").asText().matches("( [a-z]+)+"), n.toString());
        }

        // the generate command it prints works on what it wrote
        QloraCommandTest.Run g = run("generate", "--model", out.resolve("model-nf4").toString(), "--adapter",
                adapter.toString(), "--prompt", "1 2 =", "--max-new-tokens", "3");
        assertEquals(0, g.code(), g.err());

        // a second run into the same directory replaces the first: no stale checkpoint, a fresh metrics file
        QloraCommandTest.Run again = run("demo", "--model", TINY.toString(), "--quick", "--steps", "2",
                "--no-spaced-digits", "--out", out.toString());
        assertEquals(0, again.code(), again.err() + again.out());
        assertTrue(again.out().contains("step 2/2"), again.out());
        assertFalse(Files.exists(adapter.resolve("checkpoint-4")), "stale checkpoint of the first run");
        assertTrue(Files.isDirectory(adapter.resolve("checkpoint-2")));
        assertEquals(2, Files.readAllLines(adapter.resolve("metrics.jsonl")).size());
        for (JsonNode n : jsonl(out.resolve("data/numbers-train.jsonl"))) {
            assertTrue(n.get("prompt").asText().matches("\\d{1,4} ="), n.toString());
        }
    }

    @Test
    void wordsInPlaceCountsPositionByPosition() {
        assertArrayEquals(new int[]{3, 4}, NumbersTask.wordsInPlace("three hundred ninety six", " three hundred sixty six"));
        assertArrayEquals(new int[]{4, 4}, NumbersTask.wordsInPlace("three hundred ninety six", "three hundred ninety six"));
        assertArrayEquals(new int[]{0, 2}, NumbersTask.wordsInPlace("two hundred", ""));
        assertArrayEquals(new int[]{1, 3}, NumbersTask.wordsInPlace("one", " one two  three"));
        assertArrayEquals(new int[]{0, 3}, NumbersTask.wordsInPlace("one thousand one", "thousand one"));
    }

    @Test
    void quickPromptsDemoTrainsAnActToPromptWriter() throws IOException {
        Path csv = TINY.resolve("../awesome-chatgpt-prompts/prompts.csv").normalize(), out = tmp.resolve("p");
        QloraCommandTest.Run r = run("demo", "--task", "prompts", "--model", TINY.toString(), "--data", csv.toString(),
                "--quick", "--out", out.toString());
        assertEquals(0, r.code(), r.err() + r.out());
        assertEquals("", r.err());
        assertInOrder(r.out(), "qlora demo: act → prompt", "== 1. Quantize", "== 2. Greedy generation",
                "== 3. The task: act → prompt", "4 held out (unseen acts)", "\"Act: ", "== 4. QLoRA fine-tuning",
                "step 3/3", "== 5. After fine-tuning", "held-out loss (4 unseen acts): ", "reference", "before", "after",
                "== Files", "prompts-adapter");
        assertTrue(Files.isRegularFile(out.resolve("prompts-adapter/adapter_model.safetensors")));
        List<JsonNode> held = jsonl(out.resolve("data/prompts-heldout.jsonl")), train = jsonl(out.resolve("data/prompts-train.jsonl"));
        assertEquals(4, held.size());
        assertTrue(train.size() > 150, "rows of prompts.csv: " + train.size());
        Set<String> trainPrompts = new HashSet<>();
        for (JsonNode n : train) trainPrompts.add(n.get("prompt").asText());
        for (JsonNode n : held) {
            assertTrue(n.get("prompt").asText().startsWith("Act: ") && n.get("prompt").asText().endsWith("\nPrompt:"), n.toString());
            assertFalse(trainPrompts.contains(n.get("prompt").asText()), "held-out act in the training data: " + n);
        }
    }

    @Test
    void missingModelIsOneLine() {
        run("demo", "--model", tmp.resolve("nope").toString(), "--quick", "--out", tmp.resolve("o").toString())
                .assertOneLineError(QloraCommand.EXIT_USER_ERROR, "--model", "nope", "no such directory");
        assertFalse(Files.exists(tmp.resolve("o")), "nothing written for a missing model");
        run("demo", "--model", TINY.toString(), "--steps", "0", "--out", tmp.resolve("o").toString())
                .assertOneLineError(QloraCommand.EXIT_USER_ERROR, "--steps");
        run("demo", "--model", TINY.toString(), "--task", "prompts", "--max-digits", "3")
                .assertOneLineError(QloraCommand.EXIT_USER_ERROR, "--max-digits");
        run("demo", "--model", TINY.toString(), "--task", "prompts", "--no-spaced-digits")
                .assertOneLineError(QloraCommand.EXIT_USER_ERROR, "spaced-digits", "--task numbers");
        QloraCommandTest.Run bad = run("demo", "--task", "poems");
        assertEquals(QloraCommand.EXIT_USAGE, bad.code());
        assertTrue(bad.err().lines().findFirst().orElse("").contains("--task"), bad.err());
        assertTrue(run("--help").out().contains("demo"));
    }

    @Test
    void printedPromptsAreOneBashWordEach() throws Exception {
        assertEquals("'4711 ='", DemoCommand.bashQuote("4711 ="));
        assertEquals("$'Act: Children\\'s Book\\nPrompt:'", DemoCommand.bashQuote("Act: Children's Book\nPrompt:"));
        for (String s : List.of("4711 =", "it's", "Act: Children's \\ \"Book\"\nPrompt:", "a\r\nb $HOME `x`")) {
            Process p = new ProcessBuilder("bash", "-c", "printf %s " + DemoCommand.bashQuote(s)).start();
            String got = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
            assertEquals(0, p.waitFor());
            assertEquals(s, got, "bash read back " + DemoCommand.bashQuote(s));
        }
    }

    @Test
    void builtInModelIsFoundInTheWorkingDirectoryOrTheCheckout() throws IOException {
        Path repo = tmp.resolve("repo"), wd = tmp.resolve("elsewhere");
        Files.createDirectories(repo.resolve("cli/target/classes"));
        Files.writeString(repo.resolve("pom.xml"), "<project/>");
        Files.createDirectories(wd);
        Path code = repo.resolve("cli/target/classes");

        CliError e = assertThrows(CliError.class, () -> DemoCommand.resolveModel(null, wd, code));
        assertTrue(e.getMessage().contains("models/gpt2-mini") && e.getMessage().contains("--model DIR"), e.getMessage());
        assertTrue(e.getMessage().contains(repo.resolve("models/gpt2-mini").toString()), e.getMessage());

        Files.createDirectories(tmp.resolve("models/gpt2-mini")); // above the checkout: not looked at
        assertThrows(CliError.class, () -> DemoCommand.resolveModel(null, wd, code));

        Files.createDirectories(repo.resolve("models/gpt2-mini"));
        assertEquals(repo.resolve("models/gpt2-mini"), wd.resolve(DemoCommand.resolveModel(null, wd, code)).normalize());
        assertEquals(repo.resolve("models/gpt2-mini"),
                wd.resolve(DemoCommand.resolveModel(null, wd, repo.resolve("cli/target/qlora.jar"))).normalize());

        Files.createDirectories(wd.resolve("models/gpt2-mini")); // the working directory comes first
        assertEquals(Path.of("models/gpt2-mini"), DemoCommand.resolveModel(null, wd, code));

        Path given = tmp.resolve("given");
        Files.createDirectories(given);
        assertEquals(given, DemoCommand.resolveModel(given, wd, code));
    }
}
