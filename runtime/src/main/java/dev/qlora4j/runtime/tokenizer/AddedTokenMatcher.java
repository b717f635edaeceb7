package dev.qlora4j.runtime.tokenizer;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Splits text around added tokens: leftmost match wins, the longest token among those starting
 * there (HF's leftmost-longest Aho-Corasick). Scans char by char with a first-char filter, which
 * is linear for the handful of added tokens real models have.
 */
final class AddedTokenMatcher {

    /** Receives the text between matches and the matches, in order. */
    interface Sink {
        void text(String text, int start, int end);

        void token(AddedToken token);
    }

    private final boolean[] firstChar = new boolean[65536];
    private final Map<Character, AddedToken[]> byFirstChar = new HashMap<>();
    private final boolean empty;

    AddedTokenMatcher(List<AddedToken> tokens) {
        Map<Character, List<AddedToken>> groups = new HashMap<>();
        for (AddedToken t : tokens) groups.computeIfAbsent(t.content().charAt(0), k -> new ArrayList<>()).add(t);
        groups.forEach((c, list) -> {
            list.sort(Comparator.comparingInt((AddedToken t) -> t.content().length()).reversed());
            byFirstChar.put(c, list.toArray(AddedToken[]::new));
            firstChar[c] = true;
        });
        empty = tokens.isEmpty();
    }

    void split(String text, boolean parseSpecial, Sink sink) {
        int n = text.length();
        int textStart = 0; // start of the pending plain-text stretch
        int i = 0;
        while (i < n && !empty) {
            char c = text.charAt(i);
            AddedToken hit = firstChar[c] ? match(text, i, parseSpecial) : null;
            if (hit == null) {
                i++;
                continue;
            }
            int start = i, end = i + hit.content().length();
            if (hit.lstrip()) while (start > textStart && isWhiteSpace(text.charAt(start - 1))) start--;
            if (hit.rstrip()) while (end < n && isWhiteSpace(text.charAt(end))) end++;
            if (start > textStart) sink.text(text, textStart, start);
            sink.token(hit);
            textStart = i = end;
        }
        if (textStart < n) sink.text(text, textStart, n);
    }

    private AddedToken match(String text, int i, boolean parseSpecial) {
        for (AddedToken t : byFirstChar.get(text.charAt(i))) {
            if (t.special() && !parseSpecial) continue;
            if (!text.startsWith(t.content(), i)) continue;
            if (t.singleWord()) {
                int end = i + t.content().length();
                if (i > 0 && isWordChar(text.codePointBefore(i))) continue;
                if (end < text.length() && isWordChar(text.codePointAt(end))) continue;
            }
            return t;
        }
        return null;
    }

    private static boolean isWordChar(int cp) {
        return cp == '_' || Character.isLetterOrDigit(cp);
    }

    /** Unicode White_Space (what Rust's char::is_whitespace and the regex engines' \s use). */
    static boolean isWhiteSpace(int cp) {
        return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680
                || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F
                || cp == 0x205F || cp == 0x3000;
    }
}
