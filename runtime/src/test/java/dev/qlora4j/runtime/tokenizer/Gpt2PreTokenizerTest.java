package dev.qlora4j.runtime.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * java.util.regex with UNICODE_CHARACTER_CLASS against a hand-written scanner that spells out what
 * GPT-2's pattern means under Python {@code regex} / Oniguruma / fancy-regex: alternatives tried in
 * order, {@code \s} = Unicode White_Space, {@code \p{L}}/{@code \p{N}} by general category, code
 * points (not UTF-16 units) as characters.
 */
class Gpt2PreTokenizerTest {

    static List<String> javaRegex(String s) {
        List<String> out = new ArrayList<>();
        new PreTokenizer.ByteLevel(false, true).split(s, out);
        return out;
    }

    static boolean isL(int cp) {
        return switch (Character.getType(cp)) {
            case Character.UPPERCASE_LETTER, Character.LOWERCASE_LETTER, Character.TITLECASE_LETTER, Character.MODIFIER_LETTER,
                 Character.OTHER_LETTER -> true;
            default -> false;
        };
    }

    static boolean isN(int cp) {
        return switch (Character.getType(cp)) {
            case Character.DECIMAL_DIGIT_NUMBER, Character.LETTER_NUMBER, Character.OTHER_NUMBER -> true;
            default -> false;
        };
    }

    /** Unicode White_Space, listed from PropList.txt. */
    static boolean isS(int cp) {
        return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A)
                || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
    }

    static boolean isOther(int cp) {
        return !isS(cp) && !isL(cp) && !isN(cp);
    }

    interface Cls { boolean test(int cp); }

    /** End of a run of cls starting at i (code points). */
    static int run(int[] cps, int i, Cls cls) {
        while (i < cps.length && cls.test(cps[i])) i++;
        return i;
    }

    static List<String> reference(String s) {
        int[] cps = s.codePoints().toArray();
        List<String> out = new ArrayList<>();
        int i = 0;
        while (i < cps.length) {
            int end = -1;
            for (String c : new String[] {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"}) {
                if (end < 0 && matchesAt(cps, i, c)) end = i + c.length();
            }
            for (Cls cls : new Cls[] {Gpt2PreTokenizerTest::isL, Gpt2PreTokenizerTest::isN, Gpt2PreTokenizerTest::isOther}) {
                if (end >= 0) break;
                int j = cps[i] == ' ' ? i + 1 : i; // ' ?' then cls+ (without the space, ' ' itself is never in cls)
                int e = run(cps, j, cls);
                if (e > j) end = e;
            }
            if (end < 0) { // \s+(?!\S) | \s+
                int e = run(cps, i, Gpt2PreTokenizerTest::isS);
                if (e == cps.length || e - 1 == i) end = e; // all trailing whitespace, or a single one (second alternative)
                else end = e - 1; // leave the last space for the next word
            }
            out.add(new String(cps, i, end - i));
            i = end;
        }
        return out;
    }

    static boolean matchesAt(int[] cps, int i, String lit) {
        if (i + lit.length() > cps.length) return false;
        for (int k = 0; k < lit.length(); k++) if (cps[i + k] != lit.charAt(k)) return false;
        return true;
    }

    @Test
    void knownSplits() {
        assertEquals(List.of("Hello", ",", " world", "!"), javaRegex("Hello, world!"));
        // Contractions are case-sensitive in GPT-2: 'S is the quote then the letter.
        assertEquals(List.of("I", "'m", " here", "'", "S", "'ll"), javaRegex("I'm here'S'll"));
        assertEquals(List.of("a", "  ", " b"), javaRegex("a   b"));
        assertEquals(List.of("a", "\n\n", " b", "  "), javaRegex("a\n\n b  "));
        // NBSP and ideographic space are \s (Unicode), so they are not glued to words like punctuation would be.
        assertEquals(List.of("a", "\u00a0", "b"), javaRegex("a\u00a0b"));
        assertEquals(List.of("a", "\u3000", "b"), javaRegex("a\u3000b"));
        // U+001C..U+001F are not White_Space (Python's str.isspace says they are; regex engines do not).
        assertEquals(List.of("a", "\u001c", "b"), javaRegex("a\u001cb"));
        // An emoji is one code point of [^\s\p{L}\p{N}] (with the '.' after it), not two surrogates.
        assertEquals(List.of(" 🦙.", "cpp"), javaRegex(" 🦙.cpp"));
        assertEquals(List.of("a", "🦙", "b"), javaRegex("a🦙b"));
        assertEquals(List.of("e", "\u0301"), javaRegex("e\u0301")); // combining mark is Mn: not a letter
        assertEquals(List.of("ⅫⅩ", " ²³", " ٣٤"), javaRegex("ⅫⅩ ²³ ٣٤"));
    }

    @Test
    void javaRegexMatchesReferenceOnRandomText() {
        Random rnd = new Random(1234);
        for (int iter = 0; iter < 20_000; iter++) {
            String s = RandomText.string(rnd, 1 + rnd.nextInt(30), iter % 3 == 0);
            assertEquals(reference(s), javaRegex(s), () -> RandomText.escape(s));
        }
    }
}
