package dev.qlora4j.runtime.tokenizer;

import java.util.OptionalInt;

/**
 * Text ↔ token ids. Implementations are immutable and safe to share between threads.
 *
 * <p>{@link #encode(String)} splits out added/special tokens (e.g. {@code <|endoftext|>}) before
 * BPE, as Hugging Face {@code tokenizers} does; {@link #encodeOrdinary(String)} treats special
 * tokens as plain text (tiktoken's {@code encode_ordinary}). Neither adds BOS/EOS: callers append
 * {@link #eosId()} themselves where the model wants one.
 */
public interface Tokenizer {

    /** Encodes text, matching added and special tokens before BPE. */
    default int[] encode(String text) {
        return encode(text, true);
    }

    /**
     * Encodes text. With {@code parseSpecial == false} special tokens are ordinary text (they are
     * byte-level encoded like any other characters); non-special added tokens are still matched.
     */
    int[] encode(String text, boolean parseSpecial);

    /** {@code encode(text, false)}: special-token strings in user text cannot inject control ids. */
    default int[] encodeOrdinary(String text) {
        return encode(text, false);
    }

    /**
     * Encodes arbitrary bytes (invalid UTF-8 included) through the byte-level path only, never
     * matching added tokens: {@code decodeBytes(encodeBytes(b))} equals {@code b} for every b.
     * Valid UTF-8 stretches are pre-tokenized exactly as {@link #encodeOrdinary(String)} would.
     */
    int[] encodeBytes(byte[] bytes);

    /** Decodes to text; malformed UTF-8 becomes U+FFFD (as {@code errors="replace"}). */
    default String decode(int[] ids) {
        return decode(ids, false);
    }

    String decode(int[] ids, boolean skipSpecial);

    /** The exact bytes the ids stand for. Throws {@link IllegalArgumentException} on an unknown id. */
    default byte[] decodeBytes(int[] ids) {
        return decodeBytes(ids, false);
    }

    byte[] decodeBytes(int[] ids, boolean skipSpecial);

    /** One more than the largest id (vocab and added tokens). */
    int vocabSize();

    /** The id of a vocab or added token (its stored form, e.g. {@code "Ġthe"}), if any. */
    OptionalInt tokenToId(String token);

    /** The stored form of the token (e.g. {@code "Ġthe"}), or null for an id with no token. */
    String idToToken(int id);

    boolean isSpecial(int id);

    OptionalInt eosId();

    OptionalInt bosId();

    OptionalInt padId();

    OptionalInt unkId();
}
