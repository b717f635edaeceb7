package dev.qlora4j.lora.data;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * The generated "number → English words" task of {@code qlora demo}: {@code "4711 ="} → {@code " four thousand seven
 * hundred eleven"}.
 *
 * <p>Spelling, for 0..999,999: American style without "and" and without hyphens: {@code 21} is
 * {@code "twenty one"}, {@code 101} is {@code "one hundred one"}, {@code 1010} is {@code "one thousand ten"},
 * {@code 100001} is {@code "one hundred thousand one"}; hundreds and thousands always take a count
 * ({@code "one hundred"}, never {@code "a hundred"}); {@code 0} is {@code "zero"}, and zero never appears inside a
 * longer number. Without hyphens every word is one GPT-2 token with its leading space ({@code " twenty"},
 * {@code " one"}), which keeps the task about numbers rather than about spelling.
 *
 * <p>Data: {@link #split} draws distinct numbers (digit count uniform in 1..maxDigits, then the value uniform among
 * the numbers of that many digits, so short numbers are common enough to learn from, not one in a thousand) and cuts
 * them into disjoint held-out and training sets; {@link #writeJsonl} writes one {@code {"prompt": "4711 =", "completion": " four thousand seven
 * hundred eleven"}} object per line, which {@link Dataset} reads as prompt/completion data (the EOS is appended
 * there, and the loss is on the completion and EOS only).
 */
public final class NumberWords {
    /** The largest number spelled. */
    public static final int MAX = 999_999;
    /** Digits of {@link #MAX}. */
    public static final int MAX_DIGITS = 6;

    private static final String[] ONES = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
            "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
            "nineteen"};
    private static final String[] TENS = {"", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty",
            "ninety"};

    private NumberWords() {
    }

    /** {@code n} in words (see the class comment); {@code n} in [0, 999,999]. */
    public static String words(int n) {
        if (n < 0 || n > MAX) throw new IllegalArgumentException("number " + n + " outside [0, " + MAX + "]");
        if (n == 0) return ONES[0];
        StringBuilder sb = new StringBuilder(64);
        if (n >= 1000) {
            belowThousand(n / 1000, sb);
            sb.append(" thousand");
        }
        belowThousand(n % 1000, sb);
        return sb.toString();
    }

    /** Appends 1..999 in words (nothing for 0), separated by a space from what is already there. */
    private static void belowThousand(int n, StringBuilder sb) {
        if (n >= 100) {
            word(ONES[n / 100], sb);
            word("hundred", sb);
            n %= 100;
        }
        if (n >= 20) {
            word(TENS[n / 10], sb);
            n %= 10;
        }
        if (n > 0) word(ONES[n], sb);
    }

    private static void word(String w, StringBuilder sb) {
        if (!sb.isEmpty()) sb.append(' ');
        sb.append(w);
    }

    /** The prompt of {@code n}: {@code "4711 ="}. */
    public static String prompt(int n) {
        return n + " =";
    }

    /**
     * The prompt of {@code n} with its digits apart, {@code "4 7 1 1 ="}: GPT-2's tokenizer then gives one token per
     * digit (10 tokens in all, every one seen in training) instead of chunks like {@code "47"}, {@code "11"} or
     * {@code "396"}, many of which a held-out number brings unseen.
     */
    public static String spacedPrompt(int n) {
        String d = Integer.toString(n);
        StringBuilder sb = new StringBuilder(2 * d.length() + 1);
        for (int i = 0; i < d.length(); i++) sb.append(d.charAt(i)).append(' ');
        return sb.append('=').toString();
    }

    /** The completion of {@code n}: a space and the words, {@code " four thousand seven hundred eleven"}. */
    public static String completion(int n) {
        return " " + words(n);
    }

    /** Disjoint number sets, each in the order drawn. */
    public record Split(List<Integer> train, List<Integer> heldOut) {
        public Split {
            train = List.copyOf(train);
            heldOut = List.copyOf(heldOut);
        }
    }

    /**
     * Draws {@code heldOut + train} distinct numbers of 1..maxDigits digits (a digit count whose numbers are all taken
     * is drawn no more), shuffles them and cuts them into the two sets. The same arguments give the same split.
     */
    public static Split split(long seed, int train, int heldOut, int maxDigits) {
        if (maxDigits < 1 || maxDigits > MAX_DIGITS) {
            throw new IllegalArgumentException("digits must be in [1, " + MAX_DIGITS + "], got " + maxDigits);
        }
        if (train < 0 || heldOut < 0) throw new IllegalArgumentException("negative example count");
        long available = pow10(maxDigits);
        if ((long) train + heldOut > available / 2) {
            throw new IllegalArgumentException((train + heldOut) + " distinct numbers of at most " + maxDigits
                    + " digits asked for; at most " + available / 2 + " (half of them) can be drawn");
        }
        SplittableRandom rng = new SplittableRandom(seed);
        Set<Integer> taken = new HashSet<>();
        int[] used = new int[maxDigits + 1]; // numbers taken per digit count
        List<Integer> drawn = new ArrayList<>(train + heldOut);
        while (drawn.size() < train + heldOut) {
            int d = 1 + rng.nextInt(maxDigits);
            int lo = d == 1 ? 0 : (int) pow10(d - 1), size = (int) pow10(d) - lo;
            if (used[d] == size) continue; // all numbers of d digits are taken
            int n = lo + rng.nextInt(size);
            if (taken.add(n)) {
                used[d]++;
                drawn.add(n);
            }
        }
        // short numbers run out first and so come early in the draw: shuffle, then cut, so both sets get their share
        for (int i = drawn.size() - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1);
            Integer t = drawn.get(i);
            drawn.set(i, drawn.get(j));
            drawn.set(j, t);
        }
        return new Split(drawn.subList(heldOut, drawn.size()), drawn.subList(0, heldOut));
    }

    private static long pow10(int d) {
        long p = 1;
        for (int i = 0; i < d; i++) p *= 10;
        return p;
    }

    /** Writes one {@code {"prompt", "completion"}} JSON object per number and line (UTF-8). */
    public static void writeJsonl(List<Integer> numbers, Path file) throws IOException {
        writeJsonl(numbers, file, false);
    }

    /** As {@link #writeJsonl(List, Path)}, with {@link #spacedPrompt} prompts when {@code spacedDigits}. */
    public static void writeJsonl(List<Integer> numbers, Path file, boolean spacedDigits) throws IOException {
        ObjectMapper json = new ObjectMapper();
        Path parent = file.toAbsolutePath().getParent();
        if (parent != null) Files.createDirectories(parent);
        try (BufferedWriter w = Files.newBufferedWriter(file, StandardCharsets.UTF_8)) {
            for (int n : numbers) {
                ObjectNode o = json.createObjectNode();
                o.put("prompt", spacedDigits ? spacedPrompt(n) : prompt(n));
                o.put("completion", completion(n));
                w.write(json.writeValueAsString(o));
                w.write('\n');
            }
        }
    }
}
