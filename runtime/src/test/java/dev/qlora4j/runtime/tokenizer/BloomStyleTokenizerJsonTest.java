package dev.qlora4j.runtime.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.OptionalInt;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A tokenizer.json laid out like BLOOM's (bigscience/bloom): model BPE, pre_tokenizer Sequence of
 * Split(" ?[^(\s|[.,!?…。，、।۔،])]+", Isolated) and ByteLevel(use_regex false), decoder ByteLevel,
 * added tokens {@code <unk> <s> </s> <pad>} as ids 0..3. The vocab is tiny so ids can be derived by hand:
 *
 * <pre>
 * 0 &lt;unk&gt;  1 &lt;s&gt;  2 &lt;/s&gt;  3 &lt;pad&gt;
 * 4 + (b - 0x20) for the printable ASCII bytes b (space is 'Ġ' = 4, '.' = 18, 'a' = 69, 'h' = 76, 'l' = 80, 'o' = 83, 'w' = 91)
 * 99 'Ċ' (newline); no other bytes, so e.g. 'é' (C3 A9) is two &lt;unk&gt;
 * merges, rank order: h e → he 100, l l → ll 101, he ll → hell 102, hell o → hello 103, Ġ w → Ġw 104,
 *                     o r → or 105, Ġw or → Ġwor 106, l d → ld 107, Ġwor ld → Ġworld 108
 * </pre>
 */
class BloomStyleTokenizerJsonTest {

    static final String BLOOM_SPLIT = " ?[^(\\s|[.,!?…。，、।۔،])]+";
    static final String[][] MERGES = {
        {"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {"Ġ", "w"}, {"o", "r"}, {"Ġw", "or"}, {"l", "d"}, {"Ġwor", "ld"},
    };

    @TempDir
    Path dir;

    static int b(char c) {
        return 4 + (c - 0x20);
    }

    static ObjectNode bloomStyleJson(boolean mergesAsPairs) {
        ObjectMapper m = new ObjectMapper();
        ObjectNode root = m.createObjectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        String[] specials = {"<unk>", "<s>", "</s>", "<pad>"};
        for (int i = 0; i < specials.length; i++) {
            added.addObject().put("id", i).put("content", specials[i]).put("single_word", false).put("lstrip", false)
                    .put("rstrip", false).put("normalized", false).put("special", true);
        }
        root.putNull("normalizer");
        ObjectNode pre = root.putObject("pre_tokenizer");
        pre.put("type", "Sequence");
        ArrayNode steps = pre.putArray("pretokenizers");
        ObjectNode split = steps.addObject();
        split.put("type", "Split");
        split.putObject("pattern").put("Regex", BLOOM_SPLIT);
        split.put("behavior", "Isolated").put("invert", false);
        steps.addObject().put("type", "ByteLevel").put("add_prefix_space", false).put("trim_offsets", true).put("use_regex", false);
        root.putObject("post_processor").put("type", "ByteLevel").put("add_prefix_space", true).put("trim_offsets", false).put("use_regex", false);
        root.putObject("decoder").put("type", "ByteLevel").put("add_prefix_space", true).put("trim_offsets", true).put("use_regex", false);
        ObjectNode model = root.putObject("model");
        model.put("type", "BPE").putNull("dropout");
        model.put("unk_token", "<unk>").putNull("continuing_subword_prefix");
        model.putNull("end_of_word_suffix");
        model.put("fuse_unk", false);
        ObjectNode vocab = model.putObject("vocab");
        for (int i = 0; i < specials.length; i++) vocab.put(specials[i], i);
        for (int by = 0x20; by <= 0x7E; by++) vocab.put(String.valueOf(ByteLevelAlphabet.byteToChar(by)), 4 + by - 0x20);
        vocab.put("Ċ", 99);
        ArrayNode merges = model.putArray("merges");
        int id = 100;
        for (String[] mg : MERGES) {
            vocab.put(mg[0] + mg[1], id++);
            if (mergesAsPairs) merges.addArray().add(mg[0]).add(mg[1]);
            else merges.add(mg[0] + " " + mg[1]);
        }
        return root;
    }

    ByteLevelBpeTokenizer write(boolean mergesAsPairs) throws IOException {
        Files.writeString(dir.resolve("tokenizer.json"), new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(bloomStyleJson(mergesAsPairs)));
        return Tokenizers.load(dir);
    }

    @Test
    void handDerivedIds() throws IOException {
        Tokenizer t = write(false);
        assertEquals(109, t.vocabSize());
        assertArrayEquals(new int[] {103, 108, b('.')}, t.encode("hello world."));
        // Equal ranks merge leftmost first: l l l → ll l.
        assertArrayEquals(new int[] {101, b('l')}, t.encode("lll"));
        // The newline is outside the Split matches, so it is its own piece; "world" without its space gets w·or·ld.
        assertArrayEquals(new int[] {103, 99, b('w'), 105, 107}, t.encode("hello\nworld"));
        // Two spaces: the first is a gap piece, the second starts " b".
        assertArrayEquals(new int[] {b('a'), 4, 4, b('b')}, t.encode("a  b"));
        // '(' '|' ')' are inside the negated class too (Oniguruma nested-class semantics; Java 9+ agrees).
        assertArrayEquals(new int[] {b('a'), b('('), b('b'), b('|'), b('c'), b(')')}, t.encode("a(b|c)"));
        // Bytes missing from the vocab become the model's unk, one per byte (fuse_unk false); '…' is a splitter.
        assertArrayEquals(new int[] {b('h'), 0, 0}, t.encode("hé"));
        assertArrayEquals(new int[] {b('x'), 0, 0, 0, b('y')}, t.encode("x…y"));
        assertArrayEquals(new int[] {b('x'), 0, 0, 0, b('y')}, t.encode("x。y"));
    }

    @Test
    void addedTokens() throws IOException {
        Tokenizer t = write(false);
        assertArrayEquals(new int[] {1, 103, 108, b('.'), 2}, t.encode("<s>hello world.</s>"));
        assertArrayEquals(new int[] {b('<'), b('s'), b('>'), 103}, t.encodeOrdinary("<s>hello"));
        assertArrayEquals(new int[] {3, 3, 0}, t.encode("<pad><pad><unk>"));
        assertEquals("hello world.", t.decode(new int[] {103, 108, b('.')}));
        assertEquals("<s>hello</s>", t.decode(new int[] {1, 103, 2}));
        assertEquals("hello", t.decode(new int[] {1, 103, 2}, true));
        assertEquals(OptionalInt.of(1), t.bosId());
        assertEquals(OptionalInt.of(2), t.eosId());
        assertEquals(OptionalInt.of(3), t.padId());
        assertEquals(OptionalInt.of(0), t.unkId());
        assertEquals("Ġworld", t.idToToken(108));
    }

    @Test
    void pairMergesGiveTheSameIds() throws IOException {
        Tokenizer strings = write(false);
        Tokenizer pairs = write(true);
        Random rnd = new Random(3);
        for (int i = 0; i < 500; i++) {
            String s = RandomText.string(rnd, 1 + rnd.nextInt(30), false);
            assertArrayEquals(strings.encode(s), pairs.encode(s), () -> RandomText.escape(s));
        }
    }

    @Test
    void asciiRoundTrips() throws IOException {
        Tokenizer t = write(false);
        Random rnd = new Random(5);
        String alphabet = "hello world lll .,!?()|<>'\n\t";
        for (int i = 0; i < 500; i++) {
            StringBuilder sb = new StringBuilder();
            for (int k = rnd.nextInt(40); k > 0; k--) sb.append(alphabet.charAt(rnd.nextInt(alphabet.length())));
            String s = sb.toString().replace("\t", "");
            assertEquals(s, t.decode(t.encode(s)), () -> RandomText.escape(s));
            assertArrayEquals(s.getBytes(StandardCharsets.UTF_8), t.decodeBytes(t.encodeBytes(s.getBytes(StandardCharsets.UTF_8))));
        }
    }

    @Test
    void specialTokenConfigOverridesTheUsualNames() throws IOException {
        Files.writeString(dir.resolve("special_tokens_map.json"),
                "{\"bos_token\": \"<s>\", \"eos_token\": {\"content\": \"</s>\", \"special\": true}, \"pad_token\": null, \"unk_token\": \"<unk>\"}");
        Tokenizer t = write(false);
        assertEquals(OptionalInt.of(2), t.eosId());
        assertEquals(OptionalInt.empty(), t.padId());
    }

    @Test
    void splitBehaviours() {
        var p = PreTokenizer.compile("-");
        record C(PreTokenizer.Behavior b, boolean invert, List<String> want) {}
        for (C c : List.of(
                new C(PreTokenizer.Behavior.REMOVED, false, List.of("a", "b", "c")),
                new C(PreTokenizer.Behavior.ISOLATED, false, List.of("a", "-", "b", "-", "-", "c", "-")),
                new C(PreTokenizer.Behavior.MERGED_WITH_PREVIOUS, false, List.of("a-", "b-", "-", "c-")),
                new C(PreTokenizer.Behavior.MERGED_WITH_NEXT, false, List.of("a", "-b", "-", "-c", "-")),
                new C(PreTokenizer.Behavior.CONTIGUOUS, false, List.of("a", "-", "b", "--", "c", "-")),
                new C(PreTokenizer.Behavior.REMOVED, true, List.of("-", "-", "-", "-")))) {
            List<String> out = new java.util.ArrayList<>();
            new PreTokenizer.Split(p, c.b(), c.invert()).split("a-b--c-", out);
            assertEquals(c.want(), out, c.toString());
        }
    }
}
