package dev.qlora4j.runtime.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.Arrays;
import java.util.OptionalInt;
import java.util.Random;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** GPT-2 behaviour beyond the test vectors: loaders agree, special tokens, exact round trips, speed. */
class Gpt2TokenizerTest {

    static final int EOT = 50256;

    @Test
    void vocabularyFacts() throws IOException {
        for (Gpt2Files.Source s : Gpt2Files.Source.values()) {
            ByteLevelBpeTokenizer t = Gpt2Files.load(s);
            assertEquals(50257, t.vocabSize(), s.name());
            assertEquals(50000, t.mergeCount(), s.name());
            assertEquals(OptionalInt.of(EOT), t.eosId(), s.name());
            assertEquals(OptionalInt.of(EOT), t.bosId(), s.name());
            assertEquals(OptionalInt.of(EOT), t.tokenToId("<|endoftext|>"), s.name());
            assertTrue(t.isSpecial(EOT), s.name());
            assertFalse(t.isSpecial(0), s.name());
            assertEquals("Ġthe", t.idToToken(262), s.name());
            assertEquals(OptionalInt.of(262), t.tokenToId("Ġthe"), s.name());
            assertEquals(" the", t.decode(new int[] {262}), s.name());
        }
        // tokenizer_config.json says pad_token: null, so there is none.
        assertEquals(OptionalInt.empty(), Gpt2Files.gpt2().padId());
        assertEquals(OptionalInt.empty(), Gpt2Files.load(Gpt2Files.Source.VOCAB_JSON_MERGES_TXT).padId());
        // Model directories pick tokenizer.json.
        assertEquals(OptionalInt.of(EOT), Tokenizers.load(Gpt2Files.tinyGpt2Dir()).eosId());
    }

    @Test
    void allLoadersGiveIdenticalIdsOnRealText() throws IOException {
        String text = Files.readString(Gpt2Files.shared().resolve("data/corpus/pg11-alice-in-wonderland.txt"), StandardCharsets.UTF_8)
                + Files.readString(Gpt2Files.shared().resolve("data/wikitext-2/wiki.valid.raw"), StandardCharsets.UTF_8).substring(0, 200_000);
        int[] ref = Gpt2Files.gpt2().encode(text);
        for (Gpt2Files.Source s : Gpt2Files.Source.values()) assertArrayEquals(ref, Gpt2Files.load(s).encode(text), s.name());
        assertEquals(text, Gpt2Files.gpt2().decode(ref));
    }

    @Test
    void endOfTextIsOneIdOnlyWhenSpecialTokensAreParsed() {
        Tokenizer t = Gpt2Files.gpt2();
        assertArrayEquals(new int[] {EOT}, t.encode("<|endoftext|>"));
        // Hello world<|endoftext|> Hello world: the special token splits the text before pre-tokenization.
        assertArrayEquals(new int[] {15496, 995, EOT, 18435, 995}, t.encode("Hello world<|endoftext|> Hello world"));
        assertArrayEquals(new int[] {EOT, EOT}, t.encode("<|endoftext|><|endoftext|>"));
        // As ordinary text it is the bytes '<' '|' 'end' 'of' 'text' '|' '>' (tiktoken: encode(..., disallowed_special=())).
        int[] ordinary = t.encodeOrdinary("<|endoftext|>");
        assertArrayEquals(new int[] {27, 91, 437, 1659, 5239, 91, 29}, ordinary);
        assertEquals("<|endoftext|>", t.decode(ordinary));
        assertFalse(Arrays.stream(t.encodeBytes("a<|endoftext|>b".getBytes(StandardCharsets.UTF_8))).anyMatch(i -> i == EOT));
        // Near misses stay text.
        assertFalse(Arrays.stream(t.encode("<|endoftext|")).anyMatch(i -> i == EOT));
        assertFalse(Arrays.stream(t.encode("<|endoftext |>")).anyMatch(i -> i == EOT));
        // decode
        int[] ids = t.encode("Hello world<|endoftext|>");
        assertEquals("Hello world<|endoftext|>", t.decode(ids));
        assertEquals("Hello world", t.decode(ids, true));
        assertArrayEquals("Hello world".getBytes(StandardCharsets.UTF_8), t.decodeBytes(ids, true));
    }

    @Test
    void unknownIdsAreRejected() {
        Tokenizer t = Gpt2Files.gpt2();
        assertThrows(IllegalArgumentException.class, () -> t.decode(new int[] {50257}));
        assertThrows(IllegalArgumentException.class, () -> t.decode(new int[] {-1}));
        assertEquals(null, t.idToToken(50257));
    }

    @Test
    void textRoundTrips() {
        Tokenizer t = Gpt2Files.gpt2();
        String[] texts = {
            "😀👍🏽 👩‍👩‍👧‍👦 🏳️‍🌈 🇯🇵", // emoji, skin tone, ZWJ sequences, flags
            "日本語のテキスト、中文文本。한국어 텍스트", // CJK
            "e\u0301 a\u0300\u0316 Z\u0351\u0364\u0307\u0303 \u0915\u094d\u0937", // combining marks, Devanagari virama
            "\u0000\u0001\u0007\b\u000b\f\r\u001b\u001c\u007f\u0085\u00a0\u2028\u2029\u200b\ufeff", // controls, odd spaces
            "   leading and trailing   \n\n\t \r\n", "'s'S'll'LL don't I'M", "٣٤٥ ⅫⅩ ²³ 12345678901234567890",
            "\ud800\udc00 \udbff\udfff", // U+10000, U+10FFFF
            "a".repeat(5000), " ".repeat(3000) + "x", "\n".repeat(1000),
        };
        for (String s : texts) {
            assertEquals(s, t.decode(t.encode(s)));
            assertArrayEquals(s.getBytes(StandardCharsets.UTF_8), t.decodeBytes(t.encodeOrdinary(s)));
        }
    }

    @Test
    void randomStringsRoundTrip() {
        Tokenizer t = Gpt2Files.gpt2();
        Random rnd = new Random(42);
        for (int iter = 0; iter < 2000; iter++) {
            String s = RandomText.string(rnd, 1 + rnd.nextInt(60), false);
            int[] ids = t.encode(s);
            assertEquals(s, t.decode(ids), () -> "round trip of " + RandomText.escape(s));
            assertArrayEquals(ids, t.encodeBytes(s.getBytes(StandardCharsets.UTF_8)), () -> "encodeBytes of " + RandomText.escape(s));
        }
    }

    @Test
    void loneSurrogatesBecomeReplacementCharacter() {
        Tokenizer t = Gpt2Files.gpt2();
        assertEquals("a\ufffdb\ufffd", t.decode(t.encode("a\ud800b\udc00")));
        assertArrayEquals(t.encode("\ufffd"), t.encode("\udfff"));
    }

    @Test
    void arbitraryBytesRoundTripExactly() {
        Tokenizer t = Gpt2Files.gpt2();
        byte[][] fixed = {
            {}, {(byte) 0x80}, {(byte) 0xFF, (byte) 0xFE}, {(byte) 0xC0, (byte) 0xAF}, // lone continuation, BOM-ish, overlong '/'
            {(byte) 0xED, (byte) 0xA0, (byte) 0x80}, // UTF-8-encoded surrogate (invalid)
            {(byte) 0xF4, (byte) 0x90, (byte) 0x80, (byte) 0x80}, // > U+10FFFF
            {'a', (byte) 0xE2, (byte) 0x82, ' ', 'b'}, // truncated euro sign inside text
            {(byte) 0xF0, (byte) 0x9F, (byte) 0x98}, // truncated emoji at the end
            IntStream.range(0, 256).collect(java.io.ByteArrayOutputStream::new, (o, i) -> o.write(i), (a, b) -> {}).toByteArray(),
        };
        for (byte[] b : fixed) assertArrayEquals(b, t.decodeBytes(t.encodeBytes(b)), () -> Arrays.toString(b));
        Random rnd = new Random(7);
        for (int iter = 0; iter < 2000; iter++) {
            byte[] b = new byte[rnd.nextInt(80)];
            if (iter % 2 == 0) rnd.nextBytes(b);
            else { // mostly text with some broken bytes spliced in
                byte[] text = RandomText.string(rnd, b.length, false).getBytes(StandardCharsets.UTF_8);
                for (int k = 0; k < text.length / 10; k++) text[rnd.nextInt(text.length)] = (byte) rnd.nextInt(256);
                b = text;
            }
            int[] ids = t.encodeBytes(b);
            for (int id : ids) assertTrue(id >= 0 && id < EOT);
            byte[] fb = b;
            assertArrayEquals(b, t.decodeBytes(ids), () -> Arrays.toString(fb));
        }
    }

    @Test
    void encodesWikiText2TestQuickly() throws IOException {
        String wiki = Files.readString(Gpt2Files.shared().resolve("data/wikitext-2/wiki.test.raw"), StandardCharsets.UTF_8);
        ByteLevelBpeTokenizer cold = Tokenizers.fromVocabAndMerges(Gpt2Files.gpt2Dir().resolve("encoder.json"), Gpt2Files.gpt2Dir().resolve("vocab.bpe"));
        long t0 = System.nanoTime();
        int[] ids = cold.encode(wiki);
        long t1 = System.nanoTime();
        int[] again = cold.encode(wiki);
        long t2 = System.nanoTime();
        assertArrayEquals(ids, again);
        assertEquals(wiki, cold.decode(ids));
        System.out.printf("WikiText-2 test (%d chars) -> %d GPT-2 tokens: first encode %.0f ms (empty word cache), second %.0f ms%n",
                wiki.length(), ids.length, (t1 - t0) / 1e6, (t2 - t1) / 1e6);
        // Generous bound: the test machine is shared; the point is "seconds, not minutes".
        assertTrue((t1 - t0) / 1e9 < 10, "first encode took " + (t1 - t0) / 1e9 + " s");
    }
}
