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
 * ({@link NumberWords}), written as JSONL, and exact-match scoring by greedy decoding on held-out numbers.
 */
final class NumbersTask {

    /** Greedy outputs on the scored numbers, and how many equal the expected words exactly. */
    record Score(List<String> outputs, int correct) {
        int total() {
            return outputs.size();
        }

        String percent() {
            return String.format(Locale.ROOT, "%.1f%%", total() == 0 ? 0.0 : 100.0 * correct / total());
        }

        String summary() {
            return correct + "/" + total() + " (" + percent() + ")";
        }
    }

    private final LoadedModel lm;
    private final DemoPlan plan;
    private final NumberWords.Split split;
    private final Path train, heldOut;
    private final int seqLen;

    NumbersTask(LoadedModel lm, DemoPlan plan, long seed, Path dataDir) throws IOException {
        this.lm = lm;
        this.plan = plan;
        this.split = NumberWords.split(seed, plan.trainCount(), plan.heldOutCount(), plan.maxDigits());
        this.train = dataDir.resolve("numbers-train.jsonl");
        this.heldOut = dataDir.resolve("numbers-heldout.jsonl");
        NumberWords.writeJsonl(split.train(), train);
        NumberWords.writeJsonl(split.heldOut(), heldOut);
        Tokenizer tok = lm.tokenizer();
        int longest = 0; // prompt + completion + EOS, in tokens
        for (List<Integer> l : List.of(split.train(), split.heldOut())) {
            for (int n : l) {
                longest = Math.max(longest, tok.encode(NumberWords.prompt(n)).length
                        + tok.encode(NumberWords.completion(n)).length + 1);
            }
        }
        this.seqLen = longest - 1; // inputs are all tokens but the last
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
                "one example", NumberWords.prompt(n), NumberWords.completion(n));
        o.printf(Locale.ROOT, "%-18s greedy decoding after \"N =\" on %d held-out numbers; a hit when the text "
                + "before EOS or newline is exactly the words%n", "exact match", scored().size());
    }

    private List<Integer> scored() {
        return split.heldOut().subList(0, Math.min(plan.scoreCount(), split.heldOut().size()));
    }

    /** Greedy outputs on the scored held-out numbers (the table's rows in full, the rest until they go wrong). */
    Score score() {
        Greedy g = new Greedy(lm, 64);
        List<String> outputs = new ArrayList<>();
        int correct = 0;
        List<Integer> nums = scored();
        for (int i = 0; i < nums.size(); i++) {
            int n = nums.get(i);
            String want = NumberWords.completion(n);
            String got = g.complete(NumberWords.prompt(n), plan.sampleTokens(), i < plan.samples() ? null : want).text();
            int nl = got.indexOf('\n');
            if (nl >= 0) got = got.substring(0, nl);
            outputs.add(got);
            if (got.strip().equals(want.strip())) correct++;
        }
        return new Score(outputs, correct);
    }

    /** The first rows of the scored set: expected words, output before and after, hit or miss. */
    void table(PrintWriter o, Score before, Score after) {
        List<Integer> nums = scored();
        int w = 0;
        for (int i = 0; i < Math.min(plan.samples(), nums.size()); i++) w = Math.max(w, NumberWords.prompt(nums.get(i)).length());
        for (int i = 0; i < Math.min(plan.samples(), nums.size()); i++) {
            int n = nums.get(i);
            String want = NumberWords.words(n);
            o.printf("  %-" + w + "s  expected  %s%n", NumberWords.prompt(n), want);
            row(o, w, "before", before.outputs().get(i), want);
            row(o, w, "after", after.outputs().get(i), want);
        }
        o.flush();
    }

    private static void row(PrintWriter o, int w, String label, String got, String want) {
        String t = Greedy.oneLine(got.strip(), 70);
        o.printf("  %-" + w + "s  %-8s  %-70s %s%n", "", label, t.isEmpty() ? "(nothing: EOS first)" : t,
                got.strip().equals(want) ? "✓" : "✗");
    }
}
