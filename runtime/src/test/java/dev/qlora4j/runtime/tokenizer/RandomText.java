package dev.qlora4j.runtime.tokenizer;

import java.util.Random;

/** Random strings biased towards the characters where pre-tokenizers disagree. */
final class RandomText {

    private static final int[] INTERESTING = {
        ' ', ' ', ' ', '\n', '\t', '\r', '\'', 's', 't', 'l', 'd', 'm', 'r', 'e', 'v', 'A', 'S', 'z', '0', '7', '.', ',', '!', '-', '_', '(', '|',
        0x00A0, 0x3000, 0x2028, 0x2029, 0x2000, 0x200A, 0x202F, 0x205F, 0x1680, 0x0085, 0x000B, 0x000C, 0x001C, 0x001F, 0x200B, 0xFEFF,
        0x0301, 0x0316, 0x094D, 0x093F, // combining marks (Mn/Mc)
        0x00E9, 0x00DF, 0x01C5, 0x02B0, 0x05D0, 0x0627, 0x4E2D, 0x65E5, 0xAC00, 0x3042, // letters incl. Lt, Lm, Lo
        0x0663, 0x2162, 0x00B2, 0x00BD, 0x0F33, 0xFF11, // numbers Nd, Nl, No
        0x2026, 0x3002, 0xFF0C, 0x3001, 0x0964, 0x06D4, 0x060C, 0x00AB, 0x2014, // punctuation incl. BLOOM's splitters
        0x1F600, 0x1F44D, 0x1F3FD, 0x200D, 0x1F469, 0xFE0F, 0x1F1EF, 0x10000, 0x10FFFF, 0x1D7D8, 0x20000, 0x1F999, // astral
    };

    private RandomText() {}

    /** n code points; {@code loneSurrogates} allows unpaired surrogates. */
    static String string(Random rnd, int n, boolean loneSurrogates) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < n; i++) {
            int r = rnd.nextInt(10);
            int cp;
            if (r < 6) cp = INTERESTING[rnd.nextInt(INTERESTING.length)];
            else if (r < 8) cp = 0x20 + rnd.nextInt(0x5F);
            else if (r < 9) cp = rnd.nextInt(0x10000);
            else cp = 0x10000 + rnd.nextInt(0x100000);
            if (!loneSurrogates && cp >= 0xD800 && cp <= 0xDFFF) cp = 'x';
            sb.appendCodePoint(cp);
        }
        return sb.toString();
    }

    static String escape(String s) {
        StringBuilder sb = new StringBuilder("\"");
        s.codePoints().forEach(cp -> {
            if (cp >= 0x20 && cp < 0x7F) sb.appendCodePoint(cp);
            else sb.append(String.format("\\u{%X}", cp));
        });
        return sb.append('"').toString();
    }
}
