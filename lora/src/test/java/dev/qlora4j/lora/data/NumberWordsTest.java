package dev.qlora4j.lora.data;

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
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

class NumberWordsTest {

    @TempDir
    Path tmp;

    /** Spellings written out by hand (American, no "and", no hyphens), not produced by the code under test. */
    private static final Object[][] KNOWN = {
            {0, "zero"}, {1, "one"}, {7, "seven"}, {9, "nine"},
            {10, "ten"}, {11, "eleven"}, {12, "twelve"}, {13, "thirteen"}, {14, "fourteen"}, {15, "fifteen"},
            {16, "sixteen"}, {17, "seventeen"}, {18, "eighteen"}, {19, "nineteen"},
            {20, "twenty"}, {21, "twenty one"}, {30, "thirty"}, {40, "forty"}, {44, "forty four"},
            {50, "fifty"}, {58, "fifty eight"}, {60, "sixty"}, {70, "seventy"}, {80, "eighty"}, {90, "ninety"},
            {99, "ninety nine"},
            {100, "one hundred"}, {101, "one hundred one"}, {110, "one hundred ten"}, {115, "one hundred fifteen"},
            {120, "one hundred twenty"}, {200, "two hundred"}, {305, "three hundred five"},
            {999, "nine hundred ninety nine"},
            {1000, "one thousand"}, {1001, "one thousand one"}, {1010, "one thousand ten"},
            {1100, "one thousand one hundred"}, {1234, "one thousand two hundred thirty four"},
            {2019, "two thousand nineteen"}, {4711, "four thousand seven hundred eleven"},
            {9999, "nine thousand nine hundred ninety nine"},
            {10000, "ten thousand"}, {10001, "ten thousand one"}, {11000, "eleven thousand"},
            {12345, "twelve thousand three hundred forty five"}, {20020, "twenty thousand twenty"},
            {40000, "forty thousand"}, {99999, "ninety nine thousand nine hundred ninety nine"},
            {100000, "one hundred thousand"}, {100001, "one hundred thousand one"},
            {100100, "one hundred thousand one hundred"}, {101000, "one hundred one thousand"},
            {110011, "one hundred ten thousand eleven"}, {250000, "two hundred fifty thousand"},
            {500500, "five hundred thousand five hundred"},
            {777777, "seven hundred seventy seven thousand seven hundred seventy seven"},
            {999999, "nine hundred ninety nine thousand nine hundred ninety nine"},
    };

    @Test
    void spellsTheHandWrittenTable() {
        assertTrue(KNOWN.length >= 40);
        for (Object[] k : KNOWN) assertEquals(k[1], NumberWords.words((Integer) k[0]), "words(" + k[0] + ")");
    }

    @Test
    void promptAndCompletionOfTheIssueExample() {
        assertEquals("4711 =", NumberWords.prompt(4711));
        assertEquals(" four thousand seven hundred eleven", NumberWords.completion(4711));
        assertEquals("4 7 1 1 =", NumberWords.spacedPrompt(4711));
        assertEquals("0 =", NumberWords.spacedPrompt(0));
        assertEquals("1 0 0 0 0 1 =", NumberWords.spacedPrompt(100001));
    }

    @Test
    void rejectsNumbersOutsideTheRange() {
        assertThrows(IllegalArgumentException.class, () -> NumberWords.words(-1));
        assertThrows(IllegalArgumentException.class, () -> NumberWords.words(1_000_000));
    }

    private static final Map<String, Integer> VALUE = Map.ofEntries(
            Map.entry("one", 1), Map.entry("two", 2), Map.entry("three", 3), Map.entry("four", 4), Map.entry("five", 5),
            Map.entry("six", 6), Map.entry("seven", 7), Map.entry("eight", 8), Map.entry("nine", 9), Map.entry("ten", 10),
            Map.entry("eleven", 11), Map.entry("twelve", 12), Map.entry("thirteen", 13), Map.entry("fourteen", 14),
            Map.entry("fifteen", 15), Map.entry("sixteen", 16), Map.entry("seventeen", 17), Map.entry("eighteen", 18),
            Map.entry("nineteen", 19), Map.entry("twenty", 20), Map.entry("thirty", 30), Map.entry("forty", 40),
            Map.entry("fifty", 50), Map.entry("sixty", 60), Map.entry("seventy", 70), Map.entry("eighty", 80),
            Map.entry("ninety", 90));

    /**
     * An independent reader of the style (words → number) that also enforces its grammar: a count before
     * "hundred"/"thousand", tens before units, a unit never after a teen, no "zero" inside a number.
     */
    private static int parse(String s) {
        if (s.equals("zero")) return 0;
        int total = 0, group = 0, last = Integer.MAX_VALUE; // last: the size of the previous word, to check order
        for (String w : s.split(" ", -1)) {
            switch (w) {
                case "hundred" -> {
                    if (group < 1 || group > 9 || last > 9) throw new IllegalArgumentException("bad 'hundred' in " + s);
                    group *= 100;
                    last = 100;
                }
                case "thousand" -> {
                    if (group < 1 || total > 0) throw new IllegalArgumentException("bad 'thousand' in " + s);
                    total = group * 1000;
                    group = 0;
                    last = Integer.MAX_VALUE;
                }
                default -> {
                    Integer v = VALUE.get(w);
                    if (v == null) throw new IllegalArgumentException("unknown word '" + w + "' in " + s);
                    boolean ok = last == Integer.MAX_VALUE || last == 100 || (last >= 20 && last % 10 == 0 && v < 10);
                    if (!ok) throw new IllegalArgumentException("'" + w + "' cannot follow the previous word in " + s);
                    group += v;
                    last = v;
                }
            }
        }
        return total + group;
    }

    @Test
    void everyNumberReadsBackAndFollowsTheStyle() {
        assertEquals(4711, parse("four thousand seven hundred eleven")); // the reader itself works
        assertThrows(IllegalArgumentException.class, () -> parse("twenty-one"));
        assertThrows(IllegalArgumentException.class, () -> parse("one hundred and one"));
        assertThrows(IllegalArgumentException.class, () -> parse("eleven one"));
        for (int n = 0; n <= NumberWords.MAX; n++) {
            String w = NumberWords.words(n);
            assertEquals(n, parse(w), w);
            if (n > 0) assertFalse(w.contains("zero"), w);
        }
    }

    @Test
    void splitIsDisjointSeededAndCoversAllLengths() {
        NumberWords.Split s = NumberWords.split(7, 2000, 200, 6);
        assertEquals(2000, s.train().size());
        assertEquals(200, s.heldOut().size());
        Set<Integer> all = new HashSet<>(s.train());
        assertEquals(2000, all.size(), "training numbers repeat");
        for (int n : s.heldOut()) assertFalse(all.contains(n), n + " is in both sets");
        all.addAll(s.heldOut());
        assertEquals(2200, all.size());
        int[] byDigits = new int[7];
        for (int n : all) {
            assertTrue(n >= 0 && n <= 999_999, "out of range: " + n);
            byDigits[Integer.toString(n).length()]++;
        }
        assertEquals(10, byDigits[1], "all ten one-digit numbers are drawn");
        assertEquals(90, byDigits[2], "all two-digit numbers are drawn");
        for (int d = 3; d <= 6; d++) assertTrue(byDigits[d] > 350, d + " digits: " + byDigits[d]);
        int shortInTrain = 0;
        for (int n : s.train()) if (n < 100) shortInTrain++;
        assertTrue(shortInTrain > 70, "most short numbers belong to the training set, got " + shortInTrain);

        assertEquals(s, NumberWords.split(7, 2000, 200, 6), "same seed, same split");
        assertNotEquals(s.heldOut(), NumberWords.split(8, 2000, 200, 6).heldOut());
        for (int n : NumberWords.split(1, 500, 50, 4).train()) assertTrue(n < 10_000, "4 digits at most: " + n);
        assertThrows(IllegalArgumentException.class, () -> NumberWords.split(1, 40, 20, 2)); // 60 of 100 numbers
        assertThrows(IllegalArgumentException.class, () -> NumberWords.split(1, 10, 1, 7));
    }

    @Test
    void jsonlIsPromptCompletionDataForTheDataset() throws IOException {
        Path f = tmp.resolve("d/numbers.jsonl");
        NumberWords.writeJsonl(List.of(4711, 0, 100001), f);
        List<String> lines = Files.readAllLines(f);
        assertEquals(3, lines.size());
        ObjectMapper om = new ObjectMapper();
        List<String> got = new ArrayList<>();
        for (String l : lines) {
            JsonNode o = om.readTree(l);
            assertEquals(2, o.size(), l);
            got.add(o.get("prompt").asText() + "|" + o.get("completion").asText());
        }
        assertEquals(List.of("4711 =| four thousand seven hundred eleven", "0 =| zero",
                "100001 =| one hundred thousand one"), got);

        Path spaced = tmp.resolve("spaced.jsonl");
        NumberWords.writeJsonl(List.of(4711), spaced, true);
        assertEquals("{\"prompt\":\"4 7 1 1 =\",\"completion\":\" four thousand seven hundred eleven\"}",
                Files.readString(spaced).strip());

        Dataset d = Dataset.load(f, DataSpec.auto(), SharedData.gpt2(), 16);
        assertEquals(DataSpec.Mode.PROMPT_COMPLETION, d.mode());
        assertEquals(3, d.examples().size());
        // "4711 =" is 3 GPT-2 tokens (47, 11, " ="); the loss is on the 5 words and the EOS
        int[] in = new int[16], tg = new int[16];
        d.examples().copyTo(0, in, tg, 0);
        assertEquals(Examples.IGNORE, tg[0]);
        assertEquals(Examples.IGNORE, tg[1]);
        assertEquals(6, d.examples().targetCount(0));
        assertEquals(50256, tg[7], "EOS after the last word");
    }
}
