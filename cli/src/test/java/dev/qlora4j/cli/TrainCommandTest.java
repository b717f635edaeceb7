package dev.qlora4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static dev.qlora4j.cli.QloraCommandTest.TINY;
import static dev.qlora4j.cli.QloraCommandTest.run;
import static org.junit.jupiter.api.Assertions.*;

class TrainCommandTest {

    @TempDir
    Path tmp;

    /** {@code {"prompt": "4711 =", "completion": " four thousand seven hundred eleven"}} × n. */
    static Path numbers(Path dir, int n) throws IOException {
        String[] ones = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"};
        SplittableRandom r = new SplittableRandom(n);
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int x = r.nextInt(100);
            lines.add("{\"prompt\": \"" + x + " =\", \"completion\": \" " + ones[x / 10] + " " + ones[x % 10] + "\"}");
        }
        Path f = dir.resolve("numbers.jsonl");
        Files.write(f, lines);
        return f;
    }

    /** A short QLoRA run on tiny-gpt2 (NF4 by default) into {@code out}; extra flags appended (later values win). */
    static QloraCommandTest.Run train(Path data, Path out, String... extra) {
        List<String> a = new ArrayList<>(List.of("train", "--model", TINY.toString(), "--data", data.toString(),
                "--out", out.toString(), "--batch", "2", "--seq", "12", "--steps", "6", "--lr", "1e-2",
                "--target-modules", "c_attn,c_proj,c_fc", "--lora-r", "4", "--lora-alpha", "8", "--eval-every", "3",
                "--save-every", "3", "--log-every", "2"));
        a.addAll(List.of(extra));
        return run(new CommandLine(new QloraCommand()).setOverwrittenOptionsAllowed(true), a.toArray(String[]::new));
    }

    static List<JsonNode> metrics(Path out) throws IOException {
        ObjectMapper om = new ObjectMapper();
        List<JsonNode> l = new ArrayList<>();
        for (String line : Files.readAllLines(out.resolve("metrics.jsonl"))) l.add(om.readTree(line));
        return l;
    }

    @Test
    void trainWritesAdapterMetricsAndCheckpoints() throws IOException {
        Path data = numbers(tmp, 40), out = tmp.resolve("run");
        QloraCommandTest.Run r = train(data, out, "--schedule", "cosine", "--warmup", "2", "--grad-accum", "2");
        assertEquals(0, r.code(), r.err() + r.out());
        assertEquals("", r.err());
        String o = r.out();
        assertTrue(o.contains("linear weights nf4"), o);
        assertTrue(o.contains("targets c_attn → 2, c_proj → 4, c_fc → 2 modules"), o);
        assertTrue(o.contains("40 examples × 12 tokens (prompt/completion, loss on completions)"), o);
        assertTrue(o.contains("2 held out for eval"), o);
        assertTrue(o.contains("base dropouts: on in training (embd_pdrop 0.1, attn_pdrop 0.1, resid_pdrop 0.1"), o);
        assertTrue(o.contains("6 steps × 2×12 tokens × accum 2, lr 0.01 cosine (warmup 2)"), o);
        assertTrue(o.contains("step 1/6 | loss ") && o.contains("step 2/6 |") && o.contains("step 6/6 |"), o);
        assertFalse(o.contains("step 3/6 |"), o);
        assertTrue(o.contains("tok/s | ETA ") && o.contains(" MiB"), o);
        assertTrue(o.contains("eval @ step 0: loss ") && o.contains("eval @ step 3: loss ") && o.contains("eval @ step 6: loss "), o);
        assertTrue(o.contains("done: 6 steps"), o);
        for (String f : List.of("adapter_config.json", "adapter_model.safetensors", "metrics.jsonl")) {
            assertTrue(Files.isRegularFile(out.resolve(f)), f);
        }
        assertTrue(Files.isDirectory(out.resolve("checkpoint-3")) && Files.isDirectory(out.resolve("checkpoint-6")));
        List<JsonNode> m = metrics(out);
        assertEquals(6, m.size());
        for (int i = 0; i < 6; i++) {
            JsonNode j = m.get(i);
            assertEquals(i + 1, j.get("step").asInt());
            for (String k : List.of("loss", "lr", "grad_norm", "tokens_per_s", "rss_mib")) assertTrue(j.get(k).isNumber(), k + " in " + j);
            assertEquals(i == 2 || i == 5, j.has("eval_loss"), j.toString());
        }
        JsonNode cfg = new ObjectMapper().readTree(out.resolve("adapter_config.json").toFile());
        assertEquals(4, cfg.get("r").asInt());
        assertEquals("CAUSAL_LM", cfg.get("task_type").asText());
        assertTrue(cfg.get("fan_in_fan_out").asBoolean());

        // again into the same directory: refused, unless resumed or overwritten
        train(data, out).assertOneLineError(1, "--out", "holds a previous training run", "--resume");
        QloraCommandTest.Run again = train(data, out, "--overwrite", "--steps", "2", "--save-every", "0");
        assertEquals(0, again.code(), again.err());
        assertEquals(2, metrics(out).size());
        assertEquals(List.of("checkpoint-2"), Files.list(out).map(p -> p.getFileName().toString())
                .filter(n -> n.startsWith("checkpoint-")).toList());
    }

    @Test
    void resumeContinuesTheRunAndRefusesOtherSettings() throws IOException {
        Path data = numbers(tmp, 30), out = tmp.resolve("run");
        QloraCommandTest.Run first = train(data, out, "--schedule", "constant", "--steps", "4", "--save-every", "2");
        assertEquals(0, first.code(), first.err());
        List<JsonNode> before = metrics(out);

        train(data, out, "--schedule", "constant", "--steps", "4", "--lr", "3e-2", "--resume", out.toString())
                .assertOneLineError(1, "checkpoint-4", "other settings", "--lr 0.01 → 0.03");
        train(data, out, "--schedule", "constant", "--steps", "4", "--resume", out.toString(), "--quant", "none")
                .assertOneLineError(1, "--resume", "--quant nf4");
        train(data, out, "--schedule", "constant", "--steps", "4", "--resume", out.toString(), "--no-base-dropout")
                .assertOneLineError(1, "--resume", "--base-dropout", "same setting");

        // a constant schedule may be extended: 4 more steps from checkpoint-4 (the newest in --out)
        QloraCommandTest.Run more = train(data, out, "--schedule", "constant", "--steps", "8", "--resume", out.toString());
        assertEquals(0, more.code(), more.err());
        assertTrue(more.out().contains("resumed from") && more.out().contains("at step 4/8"), more.out());
        assertTrue(more.out().contains("step 5/8 |") && more.out().contains("step 8/8 |"), more.out());
        List<JsonNode> after = metrics(out);
        assertEquals(8, after.size());
        for (int i = 0; i < 4; i++) assertEquals(before.get(i).get("loss").asDouble(), after.get(i).get("loss").asDouble(), 0.0);

        // resuming from an earlier checkpoint redoes its later steps with the same losses
        QloraCommandTest.Run redo = train(data, out, "--schedule", "constant", "--steps", "8", "--resume",
                out.resolve("checkpoint-6").toString());
        assertEquals(0, redo.code(), redo.err());
        List<JsonNode> redone = metrics(out);
        assertEquals(8, redone.size());
        for (int i = 0; i < 8; i++) assertEquals(after.get(i).get("loss").asDouble(), redone.get(i).get("loss").asDouble(), 0.0, "step " + (i + 1));

        // --init-adapter: a fresh optimizer on the trained adapter
        Path out2 = tmp.resolve("continued");
        QloraCommandTest.Run cont = train(data, out2, "--init-adapter", out.toString(), "--steps", "2");
        assertEquals(0, cont.code(), cont.err());
        assertTrue(cont.out().contains("from " + out), cont.out());
    }

    @Test
    void modulesToSaveTrainsResumesAndMerges() throws IOException {
        Path data = numbers(tmp, 30), out = tmp.resolve("run");
        QloraCommandTest.Run r = train(data, out, "--modules-to-save", "ln_f");
        assertEquals(0, r.code(), r.err() + r.out());
        assertTrue(r.out().contains("targets c_attn → 2, c_proj → 4, c_fc → 2 modules; modules_to_save ln_f → 1 module;"),
                r.out());
        JsonNode cfg = new ObjectMapper().readTree(out.resolve("adapter_config.json").toFile());
        assertEquals("[\"ln_f\"]", cfg.get("modules_to_save").toString());
        for (Path f : List.of(out, out.resolve("checkpoint-3"))) {
            try (var st = dev.qlora4j.quant.safetensors.SafetensorsFile.open(f.resolve("adapter_model.safetensors"))) {
                assertTrue(st.contains("base_model.model.transformer.ln_f.weight")
                        && st.contains("base_model.model.transformer.ln_f.bias"), st.names().toString());
            }
        }
        byte[] uninterrupted = Files.readAllBytes(out.resolve("adapter_model.safetensors"));

        // resumed from checkpoint-3: the same final adapter, bit for bit (the LayerNorm copy and its AdamW moments too)
        QloraCommandTest.Run resumed = train(data, out, "--resume", out.resolve("checkpoint-3").toString());
        assertEquals(0, resumed.code(), resumed.err());
        assertArrayEquals(uninterrupted, Files.readAllBytes(out.resolve("adapter_model.safetensors")));
        train(data, out, "--resume", out.resolve("checkpoint-3").toString(), "--modules-to-save", "ln_f,ln_1")
                .assertOneLineError(1, "--modules-to-save ln_f,ln_1", "trained with modules_to_save ln_f");

        // merge writes the trained ln_f into the checkpoint: same loss as base + adapter
        Path merged = tmp.resolve("merged");
        QloraCommandTest.Run m = run("merge", "--model", TINY.toString(), "--adapter", out.toString(), "--out", merged.toString());
        assertEquals(0, m.code(), m.err());
        assertTrue(m.out().contains("and 1 trained LayerNorms (modules_to_save ln_f)"), m.out());
        Path text = tmp.resolve("t.txt");
        Files.writeString(text, "12 = one two\n34 = three four\n56 = five six\n");
        QloraCommandTest.Run adapted = run("eval", "--model", TINY.toString(), "--data", text.toString(), "--json",
                "--adapter", out.toString());
        QloraCommandTest.Run fromMerged = run("eval", "--model", merged.toString(), "--data", text.toString(), "--json");
        QloraCommandTest.Run base = run("eval", "--model", TINY.toString(), "--data", text.toString(), "--json");
        double la = new ObjectMapper().readTree(adapted.out()).get("loss").asDouble();
        double lm = new ObjectMapper().readTree(fromMerged.out()).get("loss").asDouble();
        double lb = new ObjectMapper().readTree(base.out()).get("loss").asDouble();
        assertEquals(la, lm, 1e-4 * Math.abs(la), "merged checkpoint = base + adapter");
        assertNotEquals(lb, la, "the adapter changes the model");
    }

    @Test
    void modulesToSaveErrorsAreOneLine() throws IOException {
        Path data = numbers(tmp, 30), out = tmp.resolve("o");
        train(data, out, "--modules-to-save", "wte").assertOneLineError(1, "--modules-to-save", "'wte'",
                "transformer.wte (Embedding)", "only LayerNorm modules");
        train(data, out, "--modules-to-save", "lm_head").assertOneLineError(1, "--modules-to-save", "only LayerNorm");
        train(data, out, "--modules-to-save", "ln_f,q_norm").assertOneLineError(1, "--modules-to-save", "'q_norm'",
                "matches no module", "transformer.ln_f");
        train(data, out, "--modules-to-save", "ln_f,").assertOneLineError(1, "--modules-to-save", "empty name");
        train(data, out, "--modules-to-save", "ln_f", "--full").assertOneLineError(1, "--modules-to-save", "--full");
        assertFalse(Files.exists(out.resolve("metrics.jsonl")));
    }

    @Test
    void baseDropoutTrainsAndChangesTheLoss() throws IOException {
        Path data = numbers(tmp, 30);
        QloraCommandTest.Run off = train(data, tmp.resolve("off"), "--steps", "2", "--no-base-dropout");
        assertEquals(0, off.code(), off.err() + off.out());
        assertTrue(off.out().contains("base dropouts: off"), off.out());
        QloraCommandTest.Run on = train(data, tmp.resolve("on"), "--steps", "2"); // on by default, as in train mode
        assertEquals(0, on.code(), on.err() + on.out());
        assertTrue(on.out().contains("base dropouts: on in training"), on.out());
        List<String> lossOff = new ArrayList<>(), lossOn = new ArrayList<>();
        for (JsonNode n : metrics(tmp.resolve("off"))) if (n.has("loss")) lossOff.add(n.get("loss").asText());
        for (JsonNode n : metrics(tmp.resolve("on"))) if (n.has("loss")) lossOn.add(n.get("loss").asText());
        assertFalse(lossOff.isEmpty(), "no losses logged");
        org.junit.jupiter.api.Assertions.assertNotEquals(lossOff, lossOn, "the base dropout changes the losses");
    }

    @Test
    void userErrorsAreOneLine() throws IOException {
        Path data = numbers(tmp, 30), out = tmp.resolve("o");
        train(tmp.resolve("missing.jsonl"), out).assertOneLineError(1, "--data", "missing.jsonl", "no such file");
        train(data, out, "--steps", "0").assertOneLineError(1, "--steps must be at least 1");
        train(data, out, "--epochs", "1").assertOneLineError(1, "--steps and --epochs cannot be combined");
        train(data, out, "--target-modules", "c_attn,nonexistent").assertOneLineError(1, "nonexistent", "no module");
        train(data, out, "--schedule", "exponential").assertOneLineError(1, "--schedule", "exponential");
        train(data, out, "--warmup", "abc").assertOneLineError(1, "--warmup", "abc");
        train(data, out, "--seq", "5000").assertOneLineError(1, "--seq must be in [1, 1024]");
        train(data, out, "--quant", "nf3").assertOneLineError(1, "--quant", "nf3");
        train(data, out, "--lora-dropout", "1.5").assertOneLineError(1, "--lora-dropout");
        train(data, out, "--resume", tmp.resolve("nowhere").toString()).assertOneLineError(1, "nowhere", "no such checkpoint");
        train(data, out, "--resume", tmp.toString(), "--init-adapter", tmp.toString()).assertOneLineError(1, "cannot be combined");
        train(data, out, "--format", "xml").assertOneLineError(1, "--format", "xml");
        Path raw = tmp.resolve("wiki.dat");
        Files.writeString(raw, "some text");
        train(raw, out).assertOneLineError(1, "wiki.dat", "pass --format text|jsonl|csv");
        train(data, out, "--text-column", "body").assertOneLineError(1, "no key \"body\"");
        Path bad = tmp.resolve("bad.jsonl");
        Files.writeString(bad, "{\"prompt\": \"1 =\", \"completion\": \" one\"}\n{not json\n");
        train(bad, out, "--eval-split", "0").assertOneLineError(1, "bad.jsonl:2", "not valid JSON");
        QloraCommandTest.Run usage = run("train", "--model", TINY.toString(), "--data", data.toString());
        assertEquals(2, usage.code());
        assertTrue(usage.err().startsWith("qlora train: Missing required option: '--out=DIR'"), usage.err());
        assertFalse(Files.exists(out.resolve("metrics.jsonl")), "no failed run leaves metrics behind");
    }

    @Test
    void generateAndEvalTakeAnAdapter() throws IOException {
        Path data = numbers(tmp, 30), out = tmp.resolve("run");
        assertEquals(0, train(data, out, "--quant", "none").code());
        QloraCommandTest.Run g = run("generate", "--model", TINY.toString(), "--adapter", out.toString(), "--prompt", "42 =",
                "--max-new-tokens", "3");
        assertEquals(0, g.code(), g.err());
        assertTrue(g.out().startsWith("42 ="), g.out());
        Path text = tmp.resolve("t.txt");
        Files.writeString(text, "12 = one two\n34 = three four\n56 = five six\n");
        QloraCommandTest.Run base = run("eval", "--model", TINY.toString(), "--data", text.toString(), "--json");
        QloraCommandTest.Run tuned = run("eval", "--model", TINY.toString(), "--data", text.toString(), "--json",
                "--adapter", out.toString());
        assertEquals(0, base.code(), base.err());
        assertEquals(0, tuned.code(), tuned.err());
        double lb = new ObjectMapper().readTree(base.out()).get("loss").asDouble();
        double lt = new ObjectMapper().readTree(tuned.out()).get("loss").asDouble();
        assertNotEquals(lb, lt, "the adapter changes the model");
        run("eval", "--model", TINY.toString(), "--data", text.toString(), "--adapter", tmp.resolve("none").toString())
                .assertOneLineError(1, "--adapter", "no such directory");
        run("generate", "--model", TINY.toString(), "--prompt", "x", "--adapter", data.toString())
                .assertOneLineError(1, "--adapter", "not a directory");
        run("generate", "--model", TINY.toString(), "--prompt", "x", "--adapter", tmp.toString())
                .assertOneLineError(1, "--adapter", "no adapter_config.json");
    }
}
