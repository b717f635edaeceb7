package dev.qlora4j.lora.data;

import dev.qlora4j.runtime.tokenizer.Tokenizer;

/**
 * Encodes long texts in pieces so a whole book never becomes one huge tokenizer call. Pieces are cut before a
 * space that sits between two letters or digits: byte-level BPE pre-tokenizers (GPT-2's regex, BLOOM's split)
 * always end a pre-token there and begin the next with the space, and no special token is cut, so the ids are
 * exactly those of encoding the whole text at once (tested, with whitespace runs, CRLF and special tokens).
 */
final class TextEncoder {

    static final int PIECE_CHARS = 1 << 16;

    private TextEncoder() {}

    static void encode(Tokenizer tok, String text, boolean parseSpecial, TokenBuffer out) {
        encode(tok, text, parseSpecial, out, PIECE_CHARS);
    }

    static void encode(Tokenizer tok, String text, boolean parseSpecial, TokenBuffer out, int pieceChars) {
        int n = text.length(), start = 0;
        while (n - start > pieceChars) {
            int cut = safeCut(text, start + pieceChars);
            if (cut < 0) break;
            out.addAll(tok.encode(text.substring(start, cut), parseSpecial));
            start = cut;
        }
        out.addAll(tok.encode(start == 0 ? text : text.substring(start), parseSpecial));
    }

    /**
     * The first index i ≥ from where text[i] is an ASCII space between two letters/digits ({@code "abc def"} cut
     * before {@code " def"}): every byte-level pre-tokenizer (GPT-2's {@code ?\p{L}+}, BLOOM's split) ends a
     * pre-token at such a space and starts the next one with it; -1 if none.
     */
    static int safeCut(String text, int from) {
        for (int i = Math.max(from, 1), n = text.length() - 1; i < n; i++) {
            if (text.charAt(i) == ' ' && Character.isLetterOrDigit(text.charAt(i - 1)) && Character.isLetterOrDigit(text.charAt(i + 1))) return i;
        }
        return -1;
    }
}
