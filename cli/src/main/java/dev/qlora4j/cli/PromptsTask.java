package dev.qlora4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.qlora4j.lora.data.CsvReader;
import dev.qlora4j.runtime.load.LoadedModel;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * The prompts task of {@code qlora demo}: awesome-chatgpt-prompts' {@code act} → {@code prompt} ("Linux Terminal" →
 * "I want you to act as a linux terminal. ..."), a prompt writer. Rows are shuffled by the seed; the first acts are
 * held out. Each example is {@code "Act: <act>\nPrompt:"} → {@code " <prompt>"} + EOS, loss on the prompt text.
 */
final class PromptsTask {
    record Row(String act, String prompt) {
    }

    private final List<Row> train, heldOut;
    private final DemoPlan plan;
    private final Path trainFile, heldOutFile, source;

    private PromptsTask(Path source, List<Row> train, List<Row> heldOut, DemoPlan plan, Path trainFile,
                        Path heldOutFile) {
        this.source = source;
        this.train = train;
        this.heldOut = heldOut;
        this.plan = plan;
        this.trainFile = trainFile;
        this.heldOutFile = heldOutFile;
    }

    static String prompt(String act) {
        return "Act: " + act + "\nPrompt:";
    }

    static PromptsTask load(Path csv, DemoPlan plan, long seed, Path dataDir) throws IOException {
        List<Row> rows = read(csv);
        if (rows.size() < plan.heldOutCount() + 2) {
            throw new CliError("--data " + csv + ": " + rows.size() + " usable rows; the demo needs at least "
                    + (plan.heldOutCount() + 2));
        }
        Collections.shuffle(rows, new Random(seed));
        List<Row> held = List.copyOf(rows.subList(0, plan.heldOutCount()));
        List<Row> train = List.copyOf(rows.subList(plan.heldOutCount(), rows.size()));
        Path tf = dataDir.resolve("prompts-train.jsonl"), hf = dataDir.resolve("prompts-heldout.jsonl");
        write(train, tf);
        write(held, hf);
        return new PromptsTask(csv, train, held, plan, tf, hf);
    }

    /** Rows with a non-empty {@code act} and {@code prompt} (columns found by the header). */
    private static List<Row> read(Path csv) throws IOException {
        List<Row> rows = new ArrayList<>();
        try (Reader r = Files.newBufferedReader(csv, StandardCharsets.UTF_8); CsvReader in = new CsvReader(r, csv.toString())) {
            List<String> header = in.next();
            int act = header == null ? -1 : header.indexOf("act"), prompt = header == null ? -1 : header.indexOf("prompt");
            if (act < 0 || prompt < 0) throw new CliError("--data " + csv + ": no 'act' and 'prompt' columns in the header");
            for (List<String> f = in.next(); f != null; f = in.next()) {
                if (f.size() <= Math.max(act, prompt)) continue;
                String a = f.get(act).strip(), p = f.get(prompt).strip();
                if (!a.isEmpty() && !p.isEmpty()) rows.add(new Row(a, p));
            }
        }
        return rows;
    }

    private static void write(List<Row> rows, Path file) throws IOException {
        ObjectMapper json = new ObjectMapper();
        Files.createDirectories(file.toAbsolutePath().getParent());
        try (BufferedWriter w = Files.newBufferedWriter(file, StandardCharsets.UTF_8)) {
            for (Row r : rows) {
                ObjectNode o = json.createObjectNode();
                o.put("prompt", prompt(r.act()));
                o.put("completion", " " + r.prompt());
                w.write(json.writeValueAsString(o));
                w.write('\n');
            }
        }
    }

    Path train() {
        return trainFile;
    }

    Path heldOut() {
        return heldOutFile;
    }

    int heldOutCount() {
        return heldOut.size();
    }

    String exampleAct() {
        return heldOut.getFirst().act();
    }

    void describe(PrintWriter o) {
        o.printf(Locale.ROOT, "%-18s %d acts from %s: %d for training, %d held out (unseen acts), written to %s%n",
                "data", train.size() + heldOut.size(), source, train.size(), heldOut.size(), trainFile.getParent());
        o.printf("%-18s \"%s\" → \" %s\" + EOS; loss on the prompt text, the first %d tokens%n", "one example",
                prompt(train.getFirst().act()).replace("\n", "\\n"), Greedy.oneLine(train.getFirst().prompt(), 50),
                plan.promptsSeq());
        o.flush();
    }

    /** Greedy prompts (repetition penalty 1.2) for the first held-out acts. */
    List<String> samples(LoadedModel lm) {
        Greedy g = new Greedy(lm, 256, 1.2f);
        List<String> out = new ArrayList<>();
        for (int i = 0; i < Math.min(plan.samples(), heldOut.size()); i++) {
            out.add(g.complete(prompt(heldOut.get(i).act()), plan.sampleTokens(), false).text());
        }
        return out;
    }

    void print(PrintWriter o, List<String> before, List<String> after) {
        for (int i = 0; i < before.size(); i++) {
            Row r = heldOut.get(i);
            o.printf("  %s%n", r.act());
            o.printf("    %-9s  %s%n", "reference", Greedy.oneLine(r.prompt(), 110));
            o.printf("    %-9s  %s%n", "before", Greedy.oneLine(before.get(i).strip(), 110));
            o.printf("    %-9s  %s%n", "after", Greedy.oneLine(after.get(i).strip(), 110));
        }
        o.flush();
    }
}
