package dev.qlora4j.runtime.tokenizer;

/**
 * A token matched on the raw text before pre-tokenization and BPE (HF {@code added_tokens}).
 *
 * @param lstrip     absorb Unicode whitespace to the left of the match
 * @param rstrip     absorb Unicode whitespace to the right of the match
 * @param singleWord match only when not glued to a letter, digit or '_' on either side
 */
public record AddedToken(int id, String content, boolean special, boolean lstrip, boolean rstrip, boolean singleWord) {

    public AddedToken {
        if (content == null || content.isEmpty()) throw new IllegalArgumentException("added token " + id + " has empty content");
        if (id < 0) throw new IllegalArgumentException("added token '" + content + "' has negative id " + id);
    }

    public static AddedToken special(int id, String content) {
        return new AddedToken(id, content, true, false, false, false);
    }
}
