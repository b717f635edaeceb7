package dev.qlora4j.runtime.tokenizer;

import java.util.Arrays;

/** UTF-8 helpers with the exact rules the JDK decoder uses (no overlongs, no surrogates, ≤ U+10FFFF). */
final class Utf8 {

    private Utf8() {}

    /** UTF-8 of s; a lone surrogate (not valid in any UTF) becomes U+FFFD rather than the JDK's '?'. */
    static byte[] encode(String s) {
        int n = s.length();
        byte[] out = new byte[n * 3];
        int k = 0;
        for (int i = 0; i < n; i++) {
            char c = s.charAt(i);
            if (c < 0x80) {
                out[k++] = (byte) c;
            } else if (c < 0x800) {
                out[k++] = (byte) (0xC0 | (c >> 6));
                out[k++] = (byte) (0x80 | (c & 0x3F));
            } else if (Character.isHighSurrogate(c) && i + 1 < n && Character.isLowSurrogate(s.charAt(i + 1))) {
                int cp = Character.toCodePoint(c, s.charAt(++i));
                out[k++] = (byte) (0xF0 | (cp >> 18));
                out[k++] = (byte) (0x80 | ((cp >> 12) & 0x3F));
                out[k++] = (byte) (0x80 | ((cp >> 6) & 0x3F));
                out[k++] = (byte) (0x80 | (cp & 0x3F));
            } else {
                if (Character.isSurrogate(c)) c = '\uFFFD';
                out[k++] = (byte) (0xE0 | (c >> 12));
                out[k++] = (byte) (0x80 | ((c >> 6) & 0x3F));
                out[k++] = (byte) (0x80 | (c & 0x3F));
            }
        }
        return k == out.length ? out : Arrays.copyOf(out, k);
    }

    /** The end of the longest run of well-formed UTF-8 sequences in b[from, to) starting at from. */
    static int validPrefix(byte[] b, int from, int to) {
        int i = from;
        while (i < to) {
            int len = sequenceLength(b, i, to);
            if (len == 0) break;
            i += len;
        }
        return i;
    }

    /** Length of the well-formed sequence at b[i], or 0 if none starts there. */
    private static int sequenceLength(byte[] b, int i, int to) {
        int b0 = b[i] & 0xFF;
        if (b0 < 0x80) return 1;
        int len, lo = 0x80, hi = 0xBF; // bounds for the second byte (Unicode Table 3-7)
        if (b0 >= 0xC2 && b0 <= 0xDF) len = 2;
        else if (b0 >= 0xE0 && b0 <= 0xEF) {
            len = 3;
            if (b0 == 0xE0) lo = 0xA0;       // no overlongs
            else if (b0 == 0xED) hi = 0x9F;  // no surrogates
        } else if (b0 >= 0xF0 && b0 <= 0xF4) {
            len = 4;
            if (b0 == 0xF0) lo = 0x90;       // no overlongs
            else if (b0 == 0xF4) hi = 0x8F;  // ≤ U+10FFFF
        } else return 0;
        if (i + len > to) return 0;
        int b1 = b[i + 1] & 0xFF;
        if (b1 < lo || b1 > hi) return 0;
        for (int k = 2; k < len; k++) if ((b[i + k] & 0xC0) != 0x80) return 0;
        return len;
    }
}
