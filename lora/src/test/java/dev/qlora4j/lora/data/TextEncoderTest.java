package dev.qlora4j.lora.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.qlora4j.runtime.tokenizer.Tokenizer;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Encoding in pieces gives exactly the ids of one encode call over the whole text. */
class TextEncoderTest {

    final Tokenizer tok = SharedData.gpt2();

    @Test
    void piecesEqualWholeOnTrickyWhitespaceAndSpecialTokens() {
        String[] atoms = {"word", " word", "\n", "\n\n", "\n\n\n", "  ", " \n", "\t", "\u00A0", "\u0085", "'s", "'ll", "123", " 4",
                "<|endoftext|>", "é", "\uD83D\uDE00", ".", ",", "\r\n", "Ünïcödé", "x"};
        SplittableRandom r = new SplittableRandom(11);
        for (int trial = 0; trial < 6; trial++) {
            StringBuilder sb = new StringBuilder();
            while (sb.length() < 5000) sb.append(atoms[r.nextInt(atoms.length)]);
            String text = sb.toString();
            for (boolean special : new boolean[] {true, false}) {
                int[] whole = tok.encode(text, special);
                for (int piece : new int[] {1, 7, 100}) {
                    TokenBuffer out = new TokenBuffer();
                    TextEncoder.encode(tok, text, special, out, piece);
                    assertArrayEquals(whole, out.toArray(), "trial " + trial + ", piece " + piece + ", special " + special);
                }
            }
        }
    }
}
