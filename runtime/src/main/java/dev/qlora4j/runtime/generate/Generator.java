package dev.qlora4j.runtime.generate;

import dev.qlora4j.runtime.model.DecoderModel;
import dev.qlora4j.runtime.model.KvCache;
import dev.qlora4j.runtime.model.Workspace;

import java.util.function.IntPredicate;

/**
 * KV-cache generation for one sequence: prefill the prompt, then decode one token at a time, streaming each token
 * to a callback; stops at an EOS id or after maxNewTokens (or when the context is full).
 */
public final class Generator {
    private final DecoderModel model;
    private final KvCache cache;
    private final Workspace prefill; // (1, prompt chunk)
    private final Workspace decode;  // (1, 1)
    private final float[] logits;    // (V)

    /** @param maxContext prompt + generated tokens this generator can hold */
    public Generator(DecoderModel model, int maxContext, int prefillChunk) {
        this.model = model;
        var spec = model.spec();
        this.cache = new KvCache(spec, 1, maxContext);
        this.prefill = new Workspace(spec, 1, Math.min(prefillChunk, maxContext), maxContext, false, 1);
        this.decode = new Workspace(spec, 1, 1, maxContext, false, 1);
        this.logits = new float[spec.v()];
    }

    /**
     * @param onToken called with each new token; return false to stop early
     * @return the generated ids (without the prompt)
     */
    public int[] generate(int[] prompt, int maxNewTokens, SamplingParams params, int[] eosIds, IntPredicate onToken) {
        if (prompt.length == 0) throw new IllegalArgumentException("empty prompt");
        if (prompt.length >= cache.maxT) {
            throw new IllegalArgumentException("prompt of " + prompt.length + " tokens leaves no room in a context of "
                    + cache.maxT);
        }
        cache.clear();
        Sampler sampler = new Sampler(params, model.spec().v());
        for (int t : prompt) sampler.observe(t);
        int pos = 0;
        while (pos < prompt.length) { // prefill in chunks; keep the last row's hidden state
            int n = Math.min(prefill.t, prompt.length - pos);
            model.forward(prompt, pos, 1, n, pos, cache, prefill);
            pos += n;
            if (pos == prompt.length) model.logits(prefill, n - 1, 1, logits, 0);
        }
        int budget = Math.min(maxNewTokens, cache.maxT - prompt.length);
        int[] out = new int[budget];
        int count = 0;
        int[] one = new int[1];
        while (count < budget) {
            int next = sampler.next(logits, 0);
            out[count++] = next;
            sampler.observe(next);
            boolean stop = !onToken.test(next);
            for (int e : eosIds) stop |= next == e;
            if (stop || count == budget) break;
            one[0] = next;
            model.forward(one, 0, 1, 1, pos, cache, decode);
            pos++;
            model.logits(decode, 0, 1, logits, 0);
        }
        return java.util.Arrays.copyOf(out, count);
    }
}
