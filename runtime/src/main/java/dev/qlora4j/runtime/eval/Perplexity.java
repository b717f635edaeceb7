package dev.qlora4j.runtime.eval;

import dev.qlora4j.runtime.model.DecoderModel;
import dev.qlora4j.runtime.model.KvCache;
import dev.qlora4j.runtime.model.Workspace;

/**
 * Mean token loss and perplexity over a token stream with windows of {@code seq} tokens moved by {@code stride},
 * with the semantics of Hugging Face's perplexity guide: each window scores only its last
 * {@code end - prevEnd} tokens (all of them, minus the first which has no context, when stride = seq), each token
 * predicted from the tokens before it inside the window. The LM head runs in row chunks so the (T, V) logits are
 * never materialized.
 */
public final class Perplexity {

    /** @param tokens scored tokens; loss is the mean negative log-likelihood in nats */
    public record Result(double loss, double perplexity, long tokens, int windows) {
    }

    /** Progress callback: windows done, windows in all. */
    public interface Progress {
        void update(int done, int total);
    }

    private Perplexity() {
    }

    public static Result evaluate(DecoderModel model, int[] ids, int seq, int stride, int chunkRows,
                                  Progress progress) {
        if (seq < 2) throw new IllegalArgumentException("--seq must be at least 2, got " + seq);
        if (stride < 1 || stride > seq) throw new IllegalArgumentException("--stride must be in [1, seq], got " + stride);
        if (ids.length < 2) throw new IllegalArgumentException("need at least 2 tokens to evaluate, got " + ids.length);
        int v = model.spec().v();
        int window = Math.min(seq, ids.length);
        KvCache cache = new KvCache(model.spec(), 1, window);
        Workspace ws = new Workspace(model.spec(), 1, window, window, false, chunkRows);
        int total = 1;
        for (int begin = 0; Math.min(begin + seq, ids.length) < ids.length; begin += stride) total++;
        double nll = 0;
        long count = 0;
        int prevEnd = 0, done = 0;
        for (int begin = 0; ; begin += stride) {
            int end = Math.min(begin + seq, ids.length);
            int len = end - begin;
            int trg = end - prevEnd;
            cache.clear();
            model.forward(ids, begin, 1, len, 0, cache, ws);
            int firstScored = Math.max(1, len - trg); // window position whose token is the first scored
            // row r predicts token r+1: rows [firstScored-1, len-1)
            for (int r0 = firstScored - 1; r0 < len - 1; r0 += chunkRows) {
                int rows = Math.min(chunkRows, len - 1 - r0);
                model.logits(ws, r0, rows, ws.logits, 0);
                for (int r = 0; r < rows; r++) {
                    int target = ids[begin + r0 + r + 1];
                    nll += -logSoftmaxAt(ws.logits, r * v, v, target);
                    count++;
                }
            }
            prevEnd = end;
            done++;
            if (progress != null) progress.update(done, total);
            if (end == ids.length) break;
        }
        double loss = nll / count;
        return new Result(loss, Math.exp(loss), count, done);
    }

    /** {@code log softmax(x)[target]} over x (V) at off, in double for the sum. */
    static double logSoftmaxAt(float[] x, int off, int v, int target) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < v; i++) max = Math.max(max, x[off + i]);
        double sum = 0;
        for (int i = 0; i < v; i++) sum += Math.exp(x[off + i] - max);
        return x[off + target] - max - Math.log(sum);
    }
}
