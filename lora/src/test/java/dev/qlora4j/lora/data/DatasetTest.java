package dev.qlora4j.lora.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.qlora4j.runtime.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DatasetTest {

    static final int EOS = 50256;
    static final int IGN = Examples.IGNORE;

    final Tokenizer tok = SharedData.gpt2();

    // ---------------------------------------------------------------- completion-only masking, by hand

    @Test
    void completionOnlyMaskingByHand(@TempDir Path dir) throws IOException {
        // GPT-2 ids: "Hello" 15496, " world" 995, "The" 464, " quick" 2068, " brown" 7586, " fox" 21831, EOS 50256
        assertArrayEquals(new int[] {15496}, tok.encode("Hello"));
        assertArrayEquals(new int[] {995}, tok.encode(" world"));
        assertArrayEquals(new int[] {464, 2068, 7586}, tok.encode("The quick brown"));
        assertArrayEquals(new int[] {21831}, tok.encode(" fox"));
        Path f = write(dir, "tiny.jsonl",
                "{\"prompt\": \"Hello\", \"completion\": \" world\"}\n"
                        + "\n"
                        + "{\"prompt\": \"The quick brown\", \"completion\": \" fox\"}\n");

        Dataset t5 = Dataset.load(f, DataSpec.auto(), tok, 5);
        assertEquals(DataSpec.Mode.PROMPT_COMPLETION, t5.mode());
        assertRow(t5.examples(), 0,
                new int[] {15496, 995, EOS, EOS, EOS},   // Hello world <eos> + pad (GPT-2 has no pad: EOS)
                new int[] {995, EOS, IGN, IGN, IGN});   // predict " world" from "Hello", then EOS; padding ignored
        assertRow(t5.examples(), 1,
                new int[] {464, 2068, 7586, 21831, EOS},
                new int[] {IGN, IGN, 21831, EOS, IGN});  // "The"→" quick" and " quick"→" brown" are prompt: no loss
        assertEquals(2, t5.examples().targetCount(0));
        assertEquals(2, t5.examples().targetCount(1));
        assertEquals(new Dataset.Stats(1, 2, 0, 8, 2, 4, 0, 0, 0), t5.stats());

        // T = 3: row 2 is 5 tokens, truncated to T+1 = 4: inputs The quick brown, one target (" fox")
        Dataset t3 = Dataset.load(f, DataSpec.auto(), tok, 3);
        assertRow(t3.examples(), 1, new int[] {464, 2068, 7586}, new int[] {IGN, IGN, 21831});
        assertEquals(1, t3.stats().truncated());

        // T = 2: row 2's prompt fills the whole window: nothing to learn, dropped
        Dataset t2 = Dataset.load(f, DataSpec.auto(), tok, 2);
        assertEquals(1, t2.examples().size());
        assertEquals(1, t2.stats().droppedNoTarget());
        assertRow(t2.examples(), 0, new int[] {15496, 995}, new int[] {995, EOS});
    }

    static void assertRow(Examples ex, int i, int[] inputs, int[] targets) {
        int t = ex.seqLen();
        int[] in = new int[t], tg = new int[t];
        ex.copyTo(i, in, tg, 0);
        assertArrayEquals(inputs, in, "inputs of row " + i);
        assertArrayEquals(targets, tg, "targets of row " + i);
    }

    // ---------------------------------------------------------------- plain text

    @Test
    void textFileIsOneDocumentPackedIntoWindowsOfTPlusOne() throws IOException {
        Path file = SharedData.dir().resolve("corpus/pg11-alice-in-wonderland.txt"); // > 2 pieces of 64K chars
        String text = Files.readString(file);
        if (text.charAt(0) == '\uFEFF') text = text.substring(1);
        assertTrue(text.length() > 2 * TextEncoder.PIECE_CHARS);
        int[] whole = tok.encode(text); // one tokenizer call over the whole book: the pieces must give the same ids
        int t = 64;
        Dataset d = Dataset.load(file, DataSpec.auto(), tok, t);
        assertEquals(DataSpec.Mode.TEXT, d.mode());
        assertEquals(whole.length, d.stats().tokens());
        assertEquals((whole.length - 1) / t, d.examples().size());
        assertEquals(whole.length - d.examples().size() * t - 1, d.stats().droppedTokens());
        int[] in = new int[t], tg = new int[t];
        for (int i = 0; i < d.examples().size(); i++) {
            d.examples().copyTo(i, in, tg, 0);
            assertArrayEquals(Arrays.copyOfRange(whole, i * t, i * t + t), in);
            assertArrayEquals(Arrays.copyOfRange(whole, i * t + 1, i * t + t + 1), tg);
        }
    }

    @Test
    void severalTextFilesAreDocumentsWithEosBetween(@TempDir Path dir) throws IOException {
        Path a = write(dir, "a.txt", "Hello world"), b = write(dir, "b.txt", "The quick brown fox"), empty = write(dir, "c.txt", "");
        Dataset d = Dataset.load(List.of(a, empty, b), DataSpec.auto(), tok, 3);
        // stream: Hello world EOS The quick brown fox = 7 tokens → (7-1)/3 = 2 windows
        assertEquals(2, d.examples().size());
        assertRow(d.examples(), 0, new int[] {15496, 995, EOS}, new int[] {995, EOS, 464});
        assertRow(d.examples(), 1, new int[] {464, 2068, 7586}, new int[] {2068, 7586, 21831});
        assertEquals(new Dataset.Stats(3, 2, 1, 7, 2, 6, 0, 0, 0), d.stats());
    }

    @Test
    void tooLittleTextIsAnEmptyDatasetError(@TempDir Path dir) throws IOException {
        Path a = write(dir, "a.txt", "Hello world");
        DataException e = assertThrows(DataException.class, () -> Dataset.load(a, DataSpec.auto(), tok, 8));
        assertEquals(a + ": empty dataset: 2 tokens do not fill one window of T+1 = 9 tokens", e.getMessage());
    }

    // ---------------------------------------------------------------- real CSV and JSONL

    @Test
    void realCsvTextColumn() throws IOException {
        Path file = SharedData.dir().resolve("awesome-chatgpt-prompts/prompts.csv");
        Dataset d = Dataset.load(file, DataSpec.auto().withTextColumn("prompt"), tok, 128);
        assertEquals(DataSpec.Mode.TEXT, d.mode());
        assertEquals(224, d.stats().documents()); // rows counted with Python's csv module
        int[] in = new int[128], tg = new int[128];
        d.examples().copyTo(0, in, tg, 0);
        assertTrue(tok.decode(in).startsWith("Imagine you are an experienced Ethereum developer"), tok.decode(in));
    }

    @Test
    void realCsvPromptCompletionColumns() throws IOException {
        Path file = SharedData.dir().resolve("awesome-chatgpt-prompts/prompts.csv");
        int t = 256;
        Dataset d = Dataset.load(file, DataSpec.auto().withPromptCompletion("act", "prompt"), tok, t);
        assertEquals(DataSpec.Mode.PROMPT_COMPLETION, d.mode());
        assertEquals(224, d.stats().documents());
        assertEquals(224, d.examples().size() + d.stats().droppedNoTarget());
        // row 1: act "Ethereum Developer" → its prompt; the targets that count decode to the prompt text
        String act = "Ethereum Developer";
        int[] in = new int[t], tg = new int[t];
        d.examples().copyTo(0, in, tg, 0);
        int p = tok.encode(act).length;
        for (int j = 0; j < p - 1; j++) assertEquals(IGN, tg[j], "prompt position " + j);
        int[] learned = Arrays.stream(tg).filter(x -> x != IGN).toArray();
        assertTrue(tok.decode(learned).startsWith("Imagine you are an experienced Ethereum developer"), tok.decode(learned));
        assertEquals(act, tok.decode(Arrays.copyOf(in, p)));
    }

    @Test
    void realJsonlWithChosenAsTheCompletion() throws IOException {
        Path file = SharedData.dir().resolve("preference-dpo-demo/dpo_en_demo.single_turn.jsonl");
        int t = 512;
        Dataset d = Dataset.load(file, DataSpec.auto().withPromptCompletion("prompt", "chosen"), tok, t);
        List<String> lines = Files.readAllLines(file).stream().filter(s -> !s.isBlank()).toList();
        assertEquals(lines.size(), d.stats().documents());
        JsonNode first = new ObjectMapper().readTree(lines.get(0));
        int[] want = concat(tok.encode(first.get("prompt").asText()), tok.encode(first.get("chosen").asText()), new int[] {EOS});
        int[] in = new int[t], tg = new int[t];
        d.examples().copyTo(0, in, tg, 0);
        int p = tok.encode(first.get("prompt").asText()).length;
        int n = Math.min(want.length, t + 1);
        for (int j = 0; j < t; j++) {
            assertEquals(j < n - 1 ? want[j] : EOS, in[j], "input " + j);
            assertEquals(j < n - 1 && j + 1 >= p ? want[j + 1] : IGN, tg[j], "target " + j);
        }
    }

    @Test
    void jsonlTextKeyIsDocumentsLikePlainText(@TempDir Path dir) throws IOException {
        Path f = write(dir, "t.jsonl", "{\"text\": \"Hello world\", \"id\": 1}\n{\"text\": \"The quick brown fox\"}\n");
        Dataset d = Dataset.load(f, DataSpec.auto(), tok, 3);
        assertEquals(DataSpec.Mode.TEXT, d.mode());
        assertRow(d.examples(), 0, new int[] {15496, 995, EOS}, new int[] {995, EOS, 464});
    }

    // ---------------------------------------------------------------- errors name file, line and column

    @Test
    void badJsonLineIsNamed(@TempDir Path dir) throws IOException {
        Path f = write(dir, "bad.jsonl", "{\"text\": \"ok\"}\n{\"text\": \"no end}\n");
        DataException e = assertThrows(DataException.class, () -> Dataset.load(f, DataSpec.auto(), tok, 4));
        assertTrue(e.getMessage().startsWith(f + ":2:"), e.getMessage());
        assertTrue(e.getMessage().contains("not valid JSON"), e.getMessage());
    }

    @Test
    void missingJsonKeyListsTheKeysThere(@TempDir Path dir) throws IOException {
        Path f = write(dir, "k.jsonl", "{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": \"a\", \"chosen\": \"b\"}\n");
        DataException e = assertThrows(DataException.class, () -> Dataset.load(f, DataSpec.auto(), tok, 4));
        assertEquals(f + ":2: missing key \"completion\" (this line has prompt, chosen)", e.getMessage());

        Path g = write(dir, "n.jsonl", "{\"text\": 5}\n");
        e = assertThrows(DataException.class, () -> Dataset.load(g, DataSpec.auto(), tok, 4));
        assertEquals(g + ":1: key \"text\" is number, expected a string", e.getMessage());

        Path h = write(dir, "none.jsonl", "{\"question\": \"q\", \"answer\": \"a\"}\n");
        e = assertThrows(DataException.class, () -> Dataset.load(h, DataSpec.auto(), tok, 4));
        assertTrue(e.getMessage().startsWith(h + ":1: no key \"text\" and no \"prompt\" + \"completion\" keys (available: question, answer)"), e.getMessage());
    }

    @Test
    void missingCsvColumnListsTheHeader() {
        Path file = SharedData.dir().resolve("awesome-chatgpt-prompts/prompts.csv");
        DataException e = assertThrows(DataException.class, () -> Dataset.load(file, DataSpec.auto().withTextColumn("body"), tok, 8));
        assertEquals(file + ":1: no column \"body\" (available: act, prompt, for_devs, type, contributor)", e.getMessage());
    }

    @Test
    void csvErrorsCarryFileLineAndColumn(@TempDir Path dir) throws IOException {
        Path f = write(dir, "q.csv", "text\n\"fine\"\n\"broken\"x\n");
        DataException e = assertThrows(DataException.class, () -> Dataset.load(f, DataSpec.auto(), tok, 4));
        assertTrue(e.getMessage().startsWith(f + ":3:9: malformed quoting"), e.getMessage());

        Path g = write(dir, "n.csv", "a,text\n1,two,three\n");
        e = assertThrows(DataException.class, () -> Dataset.load(g, DataSpec.auto(), tok, 4));
        assertTrue(e.getMessage().startsWith(g + ":2: record has 3 fields, the header has 2"), e.getMessage());
    }

    @Test
    void emptyInputsAreErrors(@TempDir Path dir) throws IOException {
        for (String[] c : new String[][] {{"e.csv", ""}, {"h.csv", "text\n"}, {"e.jsonl", "\n\n"}}) {
            Path f = write(dir, c[0], c[1]);
            DataException e = assertThrows(DataException.class, () -> Dataset.load(f, DataSpec.auto(), tok, 4));
            assertTrue(e.getMessage().startsWith(f + ": empty"), e.getMessage());
        }
        DataException e = assertThrows(DataException.class, () -> Dataset.load(dir.resolve("nope.txt"), DataSpec.auto(), tok, 4));
        assertTrue(e.getMessage().contains("no such data file"), e.getMessage());
    }

    @Test
    void csvFieldOver128KiBBecomesOneDocument(@TempDir Path dir) throws IOException {
        StringBuilder sb = new StringBuilder();
        while (sb.length() < 200_000) sb.append("Hello, \"world\"\n");
        Path f = write(dir, "big.csv", "id,text\n1,\"" + sb.toString().replace("\"", "\"\"") + "\"\n");
        Dataset d = Dataset.load(f, DataSpec.auto(), tok, 16);
        assertEquals(1, d.stats().documents());
        assertEquals(tok.encode(sb.toString()).length, d.stats().tokens());
    }

    static Path write(Path dir, String name, String content) throws IOException {
        return Files.writeString(dir.resolve(name), content, StandardCharsets.UTF_8);
    }

    static int[] concat(int[]... parts) {
        int n = 0;
        for (int[] p : parts) n += p.length;
        int[] out = new int[n];
        int o = 0;
        for (int[] p : parts) {
            System.arraycopy(p, 0, out, o, p.length);
            o += p.length;
        }
        return out;
    }
}
