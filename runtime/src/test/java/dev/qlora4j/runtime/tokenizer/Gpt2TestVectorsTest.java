package dev.qlora4j.runtime.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Pattern;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** GPT-2 ids from llama.cpp's test vectors (../shared/data/gpt2-tokenizer/test-vectors), for every way of loading GPT-2. */
class Gpt2TestVectorsTest {

    record Case(String text, int[] ids) {}

    static List<Case> jsonlCases() throws IOException {
        ObjectMapper json = new ObjectMapper();
        List<Case> cases = new ArrayList<>();
        for (String line : Files.readAllLines(Gpt2Files.gpt2Dir().resolve("test-vectors/gpt2_cases.jsonl"), StandardCharsets.UTF_8)) {
            if (line.isBlank()) continue;
            JsonNode n = json.readTree(line);
            int[] ids = new int[n.get("ids").size()];
            for (int i = 0; i < ids.length; i++) ids[i] = n.get("ids").get(i).asInt();
            cases.add(new Case(n.get("text").asText(), ids));
        }
        return cases;
    }

    /** llama.cpp's format: inputs separated by "\n__ggml_vocab_test__\n", one line of ids per input. */
    static List<Case> ggmlCases() throws IOException {
        Path dir = Gpt2Files.gpt2Dir().resolve("test-vectors");
        String inp = Files.readString(dir.resolve("ggml-vocab-gpt-2.gguf.inp"), StandardCharsets.UTF_8);
        String sep = "\n__ggml_vocab_test__\n";
        if (!inp.endsWith(sep)) throw new IOException("unexpected .inp ending");
        String[] texts = inp.substring(0, inp.length() - sep.length()).split(Pattern.quote(sep), -1);
        List<String> lines = Files.readAllLines(dir.resolve("ggml-vocab-gpt-2.gguf.out"), StandardCharsets.UTF_8);
        assertEquals(texts.length, lines.size(), ".inp and .out disagree on the number of cases");
        List<Case> cases = new ArrayList<>();
        for (int i = 0; i < texts.length; i++) {
            String l = lines.get(i).trim();
            int[] ids = l.isEmpty() ? new int[0] : Arrays.stream(l.split(" +")).mapToInt(Integer::parseInt).toArray();
            cases.add(new Case(texts[i], ids));
        }
        return cases;
    }

    @ParameterizedTest
    @EnumSource(Gpt2Files.Source.class)
    void everyJsonlCase(Gpt2Files.Source source) throws IOException {
        check(Gpt2Files.load(source), jsonlCases());
    }

    @ParameterizedTest
    @EnumSource(Gpt2Files.Source.class)
    void everyGgmlCase(Gpt2Files.Source source) throws IOException {
        check(Gpt2Files.load(source), ggmlCases());
    }

    private static void check(Tokenizer tok, List<Case> cases) {
        assertEquals(44, cases.size());
        for (Case c : cases) {
            String shown = c.text().replace("\n", "\\n").replace("\t", "\\t");
            assertArrayEquals(c.ids(), tok.encode(c.text()), () -> "encode \"" + shown + "\"");
            assertArrayEquals(c.ids(), tok.encodeOrdinary(c.text()), () -> "encodeOrdinary \"" + shown + "\"");
            assertArrayEquals(c.ids(), tok.encodeBytes(c.text().getBytes(StandardCharsets.UTF_8)), () -> "encodeBytes \"" + shown + "\"");
            assertEquals(c.text(), tok.decode(c.ids()), () -> "decode \"" + shown + "\"");
        }
    }
}
