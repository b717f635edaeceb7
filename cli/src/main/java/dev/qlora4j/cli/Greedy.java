package dev.qlora4j.cli;

import dev.qlora4j.runtime.generate.Generator;
import dev.qlora4j.runtime.generate.SamplingParams;
import dev.qlora4j.runtime.load.LoadedModel;
import dev.qlora4j.runtime.tokenizer.Tokenizer;

import java.util.Arrays;

/** Greedy completions of short prompts for {@code qlora demo}: one KV-cache generator reused for every prompt. */
final class Greedy {
    /** The text of the new tokens (EOS excluded) and how many tokens were generated. */
    record Answer(String text, int tokens) {
    }

    private final Tokenizer tok;
    private final Generator gen;
    private final int context;
    private final int[] eos;
    private final SamplingParams params;

    Greedy(LoadedModel lm, int context) {
        this(lm, context, 1f);
    }

    /** @param repetitionPenalty HF's CTRL-style penalty, 1 = off */
    Greedy(LoadedModel lm, int context, float repetitionPenalty) {
        this.tok = lm.tokenizer();
        this.context = Math.min(context, lm.model().spec().maxT());
        this.gen = new Generator(lm.model(), this.context, 64);
        this.eos = lm.dir().config().eosTokenIds().stream().mapToInt(Integer::intValue).toArray();
        this.params = new SamplingParams(true, 1f, 0, 1f, repetitionPenalty, 0);
    }

    /**
     * The greedy continuation of {@code prompt}: at most {@code maxNew} tokens, up to the EOS (and with
     * {@code oneLine}, up to the first line break, which is left out).
     */
    Answer complete(String prompt, int maxNew, boolean oneLine) {
        int[] ids = tok.encode(prompt);
        if (ids.length == 0) throw new IllegalArgumentException("prompt '" + prompt + "' encodes to no tokens");
        if (ids.length >= context) ids = Arrays.copyOfRange(ids, ids.length - context + 1, ids.length);
        int[] got = new int[maxNew];
        int[] n = {0};
        String[] text = {""};
        gen.generate(ids, maxNew, params, eos, id -> {
            for (int e : eos) if (id == e) return false;
            got[n[0]++] = id;
            text[0] = tok.decode(Arrays.copyOf(got, n[0]));
            int nl = oneLine ? text[0].indexOf('\n') : -1;
            if (nl >= 0) text[0] = text[0].substring(0, nl);
            return nl < 0;
        });
        return new Answer(text[0], n[0]);
    }

    /** On one line ({@code ⏎} for line breaks), at most {@code max} characters ({@code …} where cut). */
    static String oneLine(String s, int max) {
        String t = s.replace("\r\n", "⏎").replace('\n', '⏎').replace('\r', '⏎').replace('\t', ' ');
        return t.length() <= max ? t : t.substring(0, max - 1) + "…";
    }
}
