package dev.qlora4j.runtime.tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Splits a stretch of text (no added tokens in it) into the words BPE runs on, as HF
 * {@code pre_tokenizers} do. Works on the original text; the byte-level mapping happens after.
 */
public sealed interface PreTokenizer {

    /** GPT-2's pattern (also in HF's ByteLevel pre-tokenizer and tiktoken's r50k_base). */
    String GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

    /**
     * Compiles a pattern from a tokenizer file with the flags that give Python {@code regex} /
     * Oniguruma semantics: {@code \s} is Unicode White_Space (not ASCII-only as Java's default),
     * {@code \w} and {@code \d} Unicode too. Java's regex engine walks code points, so surrogate
     * pairs (emoji) are one character to {@code [^...]} and {@code \p{..}} as they are there.
     */
    static Pattern compile(String regex) {
        return Pattern.compile(regex, Pattern.UNICODE_CHARACTER_CLASS);
    }

    /** Appends the pieces of {@code text} (never empty strings) to {@code out}. */
    void split(String text, List<String> out);

    /**
     * HF {@code ByteLevel}: optional prefix space, then (use_regex) the GPT-2 pattern; the byte
     * mapping itself is done by the tokenizer afterwards.
     */
    record ByteLevel(boolean addPrefixSpace, boolean useRegex) implements PreTokenizer {
        private static final Pattern GPT2 = compile(GPT2_PATTERN);

        @Override
        public void split(String text, List<String> out) {
            if (text.isEmpty()) return;
            if (addPrefixSpace && text.charAt(0) != ' ') text = " " + text;
            if (!useRegex) {
                out.add(text);
                return;
            }
            Matcher m = GPT2.matcher(text);
            // The alternatives cover every character, so matches tile the text with no gaps.
            while (m.find()) out.add(text.substring(m.start(), m.end()));
        }
    }

    /** HF {@code Split}'s {@code behavior}. */
    enum Behavior { REMOVED, ISOLATED, MERGED_WITH_PREVIOUS, MERGED_WITH_NEXT, CONTIGUOUS;

        static Behavior parse(String hf) {
            return switch (hf) {
                case "Removed" -> REMOVED;
                case "Isolated" -> ISOLATED;
                case "MergedWithPrevious" -> MERGED_WITH_PREVIOUS;
                case "MergedWithNext" -> MERGED_WITH_NEXT;
                case "Contiguous" -> CONTIGUOUS;
                default -> throw new IllegalArgumentException("unknown Split behavior '" + hf + "'");
            };
        }
    }

    /** HF {@code Split}: cut at the pattern's matches, then group pieces by {@code behavior}. */
    record Split(Pattern pattern, Behavior behavior, boolean invert) implements PreTokenizer {
        @Override
        public void split(String text, List<String> out) {
            if (text.isEmpty()) return;
            // (start, end, isMatch) triples tiling the text, as HF's Pattern::find_matches.
            List<int[]> pieces = new ArrayList<>();
            Matcher m = pattern.matcher(text);
            int prev = 0;
            while (m.find()) {
                if (m.start() == m.end()) continue; // empty matches cut nothing
                if (m.start() > prev) pieces.add(new int[] {prev, m.start(), 0});
                pieces.add(new int[] {m.start(), m.end(), 1});
                prev = m.end();
            }
            if (prev < text.length()) pieces.add(new int[] {prev, text.length(), 0});
            if (invert) for (int[] p : pieces) p[2] ^= 1;

            List<int[]> grouped = new ArrayList<>();
            switch (behavior) {
                case REMOVED -> { for (int[] p : pieces) if (p[2] == 0) grouped.add(p); }
                case ISOLATED -> grouped.addAll(pieces);
                case MERGED_WITH_PREVIOUS -> {
                    boolean prevMatch = false;
                    for (int[] p : pieces) {
                        if (p[2] == 1 && !prevMatch && !grouped.isEmpty()) grouped.getLast()[1] = p[1];
                        else grouped.add(p);
                        prevMatch = p[2] == 1;
                    }
                }
                case MERGED_WITH_NEXT -> {
                    boolean nextMatch = false;
                    for (int i = pieces.size() - 1; i >= 0; i--) {
                        int[] p = pieces.get(i);
                        if (p[2] == 1 && !nextMatch && !grouped.isEmpty()) grouped.getLast()[0] = p[0];
                        else grouped.add(p);
                        nextMatch = p[2] == 1;
                    }
                    java.util.Collections.reverse(grouped);
                }
                case CONTIGUOUS -> {
                    boolean prevMatch = false;
                    for (int[] p : pieces) {
                        if (p[2] == (prevMatch ? 1 : 0) && !grouped.isEmpty()) grouped.getLast()[1] = p[1];
                        else grouped.add(p);
                        prevMatch = p[2] == 1;
                    }
                }
            }
            for (int[] p : grouped) if (p[1] > p[0]) out.add(text.substring(p[0], p[1]));
        }
    }

    /** HF {@code Sequence}: each step splits every piece the previous step produced. */
    record Sequence(List<PreTokenizer> steps) implements PreTokenizer {
        public Sequence {
            steps = List.copyOf(steps);
        }

        @Override
        public void split(String text, List<String> out) {
            List<String> cur = List.of(text);
            for (PreTokenizer step : steps) {
                List<String> next = new ArrayList<>();
                for (String piece : cur) step.split(piece, next);
                cur = next;
            }
            out.addAll(cur);
        }
    }
}
