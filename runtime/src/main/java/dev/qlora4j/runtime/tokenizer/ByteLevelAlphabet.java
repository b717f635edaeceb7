package dev.qlora4j.runtime.tokenizer;

/**
 * GPT-2's {@code bytes_to_unicode}: every byte gets a printable character so BPE works on strings.
 * Printable Latin-1 bytes (! .. ~, ¡ .. ¬, ® .. ÿ) map to themselves, the other 68 bytes to
 * U+0100.. in byte order (space 0x20 → 'Ġ' U+0120, newline 0x0A → 'Ċ' U+010A).
 */
public final class ByteLevelAlphabet {

    private static final char[] BYTE_TO_CHAR = new char[256];
    private static final int[] CHAR_TO_BYTE = new int[512];

    static {
        java.util.Arrays.fill(CHAR_TO_BYTE, -1);
        int n = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            char c = printable ? (char) b : (char) (256 + n++);
            BYTE_TO_CHAR[b] = c;
            CHAR_TO_BYTE[c] = b;
        }
    }

    private ByteLevelAlphabet() {}

    public static char byteToChar(int b) {
        return BYTE_TO_CHAR[b & 0xFF];
    }

    /** The byte a byte-level character stands for, or -1 if c is not in the alphabet. */
    public static int charToByte(int c) {
        return c >= 0 && c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
    }

    /** Bytes → byte-level string, e.g. {@code " the"} → {@code "Ġthe"}. */
    public static String toByteLevel(byte[] bytes, int off, int len) {
        char[] cs = new char[len];
        for (int i = 0; i < len; i++) cs[i] = BYTE_TO_CHAR[bytes[off + i] & 0xFF];
        return new String(cs);
    }
}
