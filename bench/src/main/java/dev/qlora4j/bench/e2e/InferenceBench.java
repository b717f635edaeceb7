package dev.qlora4j.bench.e2e;

import dev.qlora4j.quant.kernel.KernelPool;
import dev.qlora4j.quant.kernel.KernelProvider;
import dev.qlora4j.runtime.load.LoadOptions;
import dev.qlora4j.runtime.load.LoadedModel;
import dev.qlora4j.runtime.load.ModelLoader;
import dev.qlora4j.runtime.model.DecoderModel;
import dev.qlora4j.runtime.model.KvCache;
import dev.qlora4j.runtime.model.Workspace;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * End-to-end inference benchmark, llama-bench style: prompt processing of P tokens (one forward pass over the whole
 * prompt, logits of the last position only; llama-bench {@code pp512}) and decode of D tokens one at a time with the
 * KV cache, logits every step, <b>starting from an empty cache</b> (llama-bench {@code tg128}: its generation test
 * runs with {@code n_prompt = 0}, so it decodes at contexts 0..D-1). A third figure decodes the same D tokens right
 * after the P-token prompt (contexts P..P+D-1), where reading the K/V cache costs more. Prints one JSON line with
 * medians over the repeats and the peak RSS of this process; each decode figure comes with its memory-bandwidth
 * bound ({@link DecodeBound}) at its mean context. {@code of_bound_paired} (median, min, max over 8 rounds) puts each
 * tg decode between two reads of the same weight bytes, so the host's drift between minutes does not enter.
 *
 * <pre>java --add-modules jdk.incubator.vector -cp bench/target/benchmarks.jar dev.qlora4j.bench.e2e.InferenceBench
 *     MODEL_DIR [--prompt 512] [--decode 128] [--repeats 3] [--quant none|nf4|fp4|int8] [--embedding-dtype auto|f32|f16|bf16|as-stored]
 *     [--no-mmap]</pre>
 * {@code --no-mmap}: weights used as stored are copied into private memory ({@link LoadOptions#noMmap()}).
 */
public final class InferenceBench {

    /** Load options from the benches' {@code --quant} and {@code --embedding-dtype} (auto: as qlora generate / eval). */
    static LoadOptions options(Path dir, String quant, String embeddings) {
        LoadOptions opts = LoadOptions.parse(quant);
        return opts.withEmbeddings(embeddings.equals("auto") ? LoadOptions.autoInferenceEmbeddings(dir, opts)
                : LoadOptions.parseEmbeddings(embeddings));
    }

    private static final int PAIRED_ROUNDS = 8;
    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        int prompt = 512, decode = 128, repeats = 3;
        String quant = "none", embeddings = "auto";
        boolean noMmap = false;
        for (int i = 1; i < args.length; i += 2) {
            switch (args[i]) {
                case "--no-mmap" -> {
                    noMmap = true;
                    i--; // no value
                }
                case "--prompt" -> prompt = Integer.parseInt(args[i + 1]);
                case "--decode" -> decode = Integer.parseInt(args[i + 1]);
                case "--repeats" -> repeats = Integer.parseInt(args[i + 1]);
                case "--quant" -> quant = args[i + 1];
                case "--embedding-dtype" -> embeddings = args[i + 1];
                default -> throw new IllegalArgumentException("unknown flag " + args[i]);
            }
        }
        try (LoadedModel lm = ModelLoader.load(dir, options(dir, quant, embeddings).withNoMmap(noMmap),
                KernelProvider.get())) {
            DecoderModel m = lm.model();
            int v = m.spec().v();
            int[] ids = new SplittableRandom(7).ints(prompt + decode, 0, v).toArray();
            KvCache cache = new KvCache(m.spec(), 1, prompt + decode);
            Workspace pp = new Workspace(m.spec(), 1, prompt, prompt + decode, false, 1);
            Workspace one = new Workspace(m.spec(), 1, 1, prompt + decode, false, 1);
            float[] logits = new float[v];
            double[] ppTps = new double[repeats], tgTps = new double[repeats], ctxTps = new double[repeats];
            for (int r = -1; r < repeats; r++) { // r = -1 warms up
                cache.clear(); // pp: the prompt in one forward pass
                long t0 = System.nanoTime();
                m.forward(ids, 0, 1, prompt, 0, cache, pp);
                m.logits(pp, prompt - 1, 1, logits, 0);
                long t1 = System.nanoTime();
                for (int i = 0; i < decode; i++) { // decode after the prompt: contexts prompt .. prompt + decode - 1
                    m.forward(ids, prompt + i, 1, 1, prompt + i, cache, one);
                    m.logits(one, 0, 1, logits, 0);
                }
                long t2 = System.nanoTime();
                cache.clear(); // tg: decode from an empty cache, as llama-bench's tg test
                for (int i = 0; i < decode; i++) {
                    m.forward(ids, prompt + i, 1, 1, i, cache, one);
                    m.logits(one, 0, 1, logits, 0);
                }
                long t3 = System.nanoTime();
                if (r >= 0) {
                    ppTps[r] = prompt / ((t1 - t0) / 1e9);
                    ctxTps[r] = decode / ((t2 - t1) / 1e9);
                    tgTps[r] = decode / ((t3 - t2) / 1e9);
                }
            }
            Arrays.sort(ppTps);
            Arrays.sort(tgTps);
            Arrays.sort(ctxTps);
            long bytes = DecodeBound.bytesPerToken(m, (decode - 1) / 2.0);
            // paired rounds: a tg decode between two reads of the same weight bytes, just before and just after it (1
            // and 4 streams per thread, the faster; the bound is their mean): the shared host's bandwidth moves
            // between minutes, so the ratio of the two taken back to back is the robust "of bound" figure
            var segs = DecodeBound.weightSegments(m);
            DecodeBound.readOnceBest(segs, KernelPool.shared()); // compiled
            double[] paired = new double[PAIRED_ROUNDS]; // (rounds) decode tok/s ÷ that moment's bound
            for (int r = 0; r < paired.length; r++) {
                cache.clear();
                double before = DecodeBound.readOnceBest(segs, KernelPool.shared());
                long t0 = System.nanoTime();
                for (int i = 0; i < decode; i++) {
                    m.forward(ids, prompt + i, 1, 1, i, cache, one);
                    m.logits(one, 0, 1, logits, 0);
                }
                double tps = decode / ((System.nanoTime() - t0) / 1e9);
                double after = DecodeBound.readOnceBest(segs, KernelPool.shared());
                paired[r] = tps / ((before + after) / 2 / bytes);
            }
            Arrays.sort(paired);
            var w = m.weights().blocks()[0].qkv().weight();
            double rss = PeakRss.mib(); // before the bound's 1 GiB read buffer
            long ctxBytes = DecodeBound.bytesPerToken(m, prompt + (decode - 1) / 2.0);
            double bufferBw = DecodeBound.readBandwidth(KernelPool.shared());
            double modelBw = DecodeBound.modelReadBandwidth(m, KernelPool.shared());
            double bw = Math.max(bufferBw, modelBw);
            double tg = tgTps[repeats / 2], ctx = ctxTps[repeats / 2];
            System.out.printf("{\"model\":\"%s\",\"quant\":\"%s\",\"embeddings\":\"%s\",\"linear_format\":\"%s\",\"kernels\":\"%s\",\"mmap\":%b,\"threads\":%d,"
                            + "\"prompt\":%d,\"pp_tok_s\":%.1f,\"decode\":%d,\"tg_tok_s\":%.1f,\"decode_mb_per_token\":%.1f,"
                            + "\"buffer_read_gb_s\":%.1f,\"model_read_gb_s\":%.1f,\"read_gb_s\":%.1f,\"bound_tok_s\":%.1f,\"of_bound\":%.2f,"
                            + "\"of_bound_paired\":%.2f,\"of_bound_paired_min\":%.2f,\"of_bound_paired_max\":%.2f,"
                            + "\"tg_after_prompt_tok_s\":%.1f,\"after_prompt_mb_per_token\":%.1f,\"after_prompt_of_bound\":%.2f,"
                            + "\"peak_rss_mib\":%.0f}%n",
                    dir.getFileName(), quant, m.weights().wte().format(), w.format(), m.kernels().name(), !noMmap,
                    KernelPool.shared().threads(), prompt, ppTps[repeats / 2], decode, tg, bytes / 1e6, bufferBw / 1e9, modelBw / 1e9, bw / 1e9,
                    bw / bytes, tg / (bw / bytes), paired[paired.length / 2], paired[0], paired[paired.length - 1], ctx, ctxBytes / 1e6, ctx / (bw / ctxBytes), rss);
        }
    }
}
