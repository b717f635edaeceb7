package dev.qlora4j.cli;

import dev.qlora4j.lora.data.NumberWords;
import dev.qlora4j.runtime.load.LoadedModel;
import dev.qlora4j.runtime.tokenizer.Tokenizer;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The numbers task of {@code qlora demo}: generated "4711 =" → " four thousand seven hundred eleven" data
 * ({@link NumberWords}), written as JSONL, and scoring by greedy decoding on held-out numbers: exact match, and the
 * share of words right in their place (which moves before exact matches do).
 */
final class NumbersTask {

    /**
     * Greedy outputs on the scored numbers; how many equal the expected words exactly; and words in place: position
     * by position matches over {@code max(expected, produced)} words, summed over the numbers.
     */
    record Score(List<String> outputs, int correct, int wordsRight, int wordsCounted) {
        int total() {
            return outputs.size();
        }

        String summary() {
            return String.format(Locale.ROOT, "%d/%d (%.1f%%)", correct, total(),
                    total() == 0 ? 0.0 : 100.0 * correct / total());
        }

        String words() {
            return String.format(Locale.ROOT, "%.1f%%", wordsCounted == 0 ? 0.0 : 100.0 * wordsRight / wordsCounted);
        }
    }

    /** Position-by-position word matches between {@code want} and {@code got}, and the larger word count. */
    static int[] wordsInPlace(String want, String got) {
        String[] w = want.strip().split("\\s+"), g = got.strip().isEmpty() ? new String[0] : got.strip().split("\\s+");
        int right = 0;
        for (int i = 0; i < Math.min(w.length, g.length); i++) if (w[i].equals(g[i])) right++;
        return new int[]{right, Math.max(w.length, g.length)};
    }

    private final LoadedModel lm;
    private final DemoPlan plan;
    private final boolean spaced;
    private final NumberWords.Split split;
    private final Path train, heldOut;
    private final int seqLen;

    NumbersTask(LoadedModel lm, DemoPlan plan, long seed, boolean spacedDigits, Path dataDir) throws IOException {
        this.lm = lm;
        this.plan = plan;
        this.spaced = spacedDigits;
        this.split = NumberWords.split(seed, plan.trainCount(), plan.heldOutCount(), plan.maxDigits());
        this.train = dataDir.resolve("numbers-train.jsonl");
        this.heldOut = dataDir.resolve("numbers-heldout.jsonl");
        NumberWords.writeJsonl(split.train(), train, spaced);
        NumberWords.writeJsonl(split.heldOut(), heldOut, spaced);
        Tokenizer tok = lm.tokenizer();
        int longest = 0; // prompt + completion + EOS, in tokens
        for (List<Integer> l : List.of(split.train(), split.heldOut())) {
            for (int n : l) {
                longest = Math.max(longest, tok.encode(prompt(n)).length + tok.encode(NumberWords.completion(n)).length + 1);
            }
        }
        this.seqLen = longest - 1; // inputs are all tokens but the last
    }

    String prompt(int n) {
        return spaced ? NumberWords.spacedPrompt(n) : NumberWords.prompt(n);
    }

    Path train() {
        return train;
    }

    Path heldOut() {
        return heldOut;
    }

    /** Tokens per training example: the longest example, so nothing is truncated and little is padded. */
    int seqLen() {
        return seqLen;
    }

    /** A held-out number, for the commands printed at the end. */
    int example() {
        return split.heldOut().getFirst();
    }

    void describe(PrintWriter o) {
        o.printf(Locale.ROOT, "%-18s %,d training and %,d held-out numbers of 1 to %d digits (disjoint), written to "
                + "%s and %s%n", "data", split.train().size(), split.heldOut().size(), plan.maxDigits(), train,
                heldOut.getFileName());
        int n = split.train().getFirst();
        o.printf("%-18s {\"prompt\": \"%s\", \"completion\": \"%s\"} + EOS; the loss is on the completion only%n",
                "one example", prompt(n), NumberWords.completion(n));
        o.printf(Locale.ROOT, "%-18s greedy decoding on %d held-out numbers: exact match (the text before EOS or a "
                + "line break is exactly the words) and words in place%n", "score", scored().size());
        o.flush();
    }

    private List<Integer> scored() {
        return split.heldOut().subList(0, Math.min(plan.scoreCount(), split.heldOut().size()));
    }

    /** Greedy outputs on the scored held-out numbers, up to two words more than expected. */
    Score score() {
        Greedy g = new Greedy(lm, 64);
        List<String> outputs = new ArrayList<>();
        int correct = 0, right = 0, counted = 0;
        for (int n : scored()) {
            String want = NumberWords.words(n);
            int words = want.split(" ").length;
            String got = g.complete(prompt(n), Math.min(plan.sampleTokens(), words + 3), true).text();
            outputs.add(got);
            if (got.strip().equals(want)) correct++;
            int[] w = wordsInPlace(want, got);
            right += w[0];
            counted += w[1];
        }
        return new Score(outputs, correct, right, counted);
    }

    /** The first rows of the scored set: expected words, output before and after, hit or miss. */
    void table(PrintWriter o, Score before, Score after) {
        List<Integer> nums = scored().subList(0, Math.min(plan.samples(), scored().size()));
        int w = 0, width = 0;
        for (int i = 0; i < nums.size(); i++) {
            w = Math.max(w, prompt(nums.get(i)).length());
            for (Score s : List.of(before, after)) width = Math.max(width, Greedy.oneLine(s.outputs().get(i).strip(), 70).length());
        }
        width = Math.max(width, "(nothing: EOS first)".length());
        for (int i = 0; i < nums.size(); i++) {
            int n = nums.get(i);
            String want = NumberWords.words(n);
            o.printf("  %-" + w + "s  expected  %s%n", prompt(n), want);
            row(o, w, width, "before", before.outputs().get(i), want);
            row(o, w, width, "after", after.outputs().get(i), want);
        }
        o.flush();
    }

    private static void row(PrintWriter o, int w, int width, String label, String got, String want) {
        String t = Greedy.oneLine(got.strip(), 70);
        o.printf("  %-" + w + "s  %-8s  %-" + width + "s  %s%n", "", label, t.isEmpty() ? "(nothing: EOS first)" : t,
                got.strip().equals(want) ? "✓" : "✗");
    }
}
