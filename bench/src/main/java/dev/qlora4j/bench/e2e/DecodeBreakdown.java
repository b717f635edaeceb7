package dev.qlora4j.bench.e2e;

import dev.qlora4j.quant.kernel.KernelProvider;
import dev.qlora4j.runtime.load.LoadedModel;
import dev.qlora4j.runtime.load.ModelLoader;
import dev.qlora4j.runtime.model.BlockWeights;
import dev.qlora4j.runtime.model.DecoderModel;
import dev.qlora4j.runtime.model.KvCache;
import dev.qlora4j.runtime.model.Linear;
import dev.qlora4j.runtime.model.Workspace;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Where a decode token's time goes: the whole tg decode (forward + logits per token, from an empty cache, as
 * {@link InferenceBench}'s tg) against the same weights' GEMVs alone, run in the same order on the same threads
 * (every layer's qkv, attn proj, fc, mlp proj, then the tied head), and the head alone. The difference between the
 * first two is everything that is not a weight GEMV (attention, norms, GELU, residual adds, embedding). Rounds
 * alternate the three so host drift hits each alike; prints the median per-token milliseconds of each.
 *
 * <pre>java --add-modules jdk.incubator.vector -cp bench/target/benchmarks.jar dev.qlora4j.bench.e2e.DecodeBreakdown
 *     MODEL_DIR [--decode 128] [--rounds 9] [--quant none|nf4|fp4|int8] [--embedding-dtype auto|f32|f16|bf16]</pre>
 */
public final class DecodeBreakdown {

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        int decode = 128, rounds = 9;
        String quant = "none", embeddings = "auto";
        for (int i = 1; i < args.length; i += 2) {
            switch (args[i]) {
                case "--decode" -> decode = Integer.parseInt(args[i + 1]);
                case "--rounds" -> rounds = Integer.parseInt(args[i + 1]);
                case "--quant" -> quant = args[i + 1];
                case "--embedding-dtype" -> embeddings = args[i + 1];
                default -> throw new IllegalArgumentException("unknown flag " + args[i]);
            }
        }
        try (LoadedModel lm = ModelLoader.load(dir, InferenceBench.options(dir, quant, embeddings),
                KernelProvider.get())) {
            DecoderModel m = lm.model();
            int v = m.spec().v(), c = m.spec().c();
            int[] ids = new SplittableRandom(7).ints(decode, 0, v).toArray();
            KvCache cache = new KvCache(m.spec(), 1, decode);
            Workspace one = new Workspace(m.spec(), 1, 1, decode, false, 1);
            float[] logits = new float[v]; // (V)
            float[] x = new float[4 * c], y = new float[4 * c]; // (4C) GEMV input and output, any values
            Arrays.fill(x, 0.01f);
            BlockWeights[] blocks = m.weights().blocks();
            double[][] kind = new double[4][rounds]; // (kind, rounds) ns summed over tokens and layers
            double[] full = new double[rounds], gemv = new double[rounds], head = new double[rounds];
            for (int r = -2; r < rounds; r++) { // two warm-up rounds
                cache.clear();
                long t0 = System.nanoTime();
                for (int i = 0; i < decode; i++) {
                    m.forward(ids, i, 1, 1, i, cache, one);
                    m.logits(one, 0, 1, logits, 0);
                }
                long t1 = System.nanoTime();
                for (int i = 0; i < decode; i++) {
                    for (BlockWeights bw : blocks) {
                        Linear[] lins = {bw.qkv(), bw.attnProj(), bw.fc(), bw.mlpProj()};
                        for (int j = 0; j < 4; j++) {
                            long s0 = System.nanoTime();
                            m.kernels().matmul(x, 0, lins[j].weight(), lins[j].bias(), y, 0, 1);
                            if (r >= 0) kind[j][r] += System.nanoTime() - s0;
                        }
                    }
                    m.kernels().matmul(x, 0, m.weights().wte(), null, logits, 0, 1);
                }
                long t2 = System.nanoTime();
                for (int i = 0; i < decode; i++) m.kernels().matmul(x, 0, m.weights().wte(), null, logits, 0, 1);
                long t3 = System.nanoTime();
                if (r >= 0) {
                    full[r] = (t1 - t0) / 1e6 / decode;
                    gemv[r] = (t2 - t1) / 1e6 / decode;
                    head[r] = (t3 - t2) / 1e6 / decode;
                }
            }
            double[] rest = new double[rounds];
            for (int r = 0; r < rounds; r++) rest[r] = full[r] - gemv[r];
            String[] names = {"qkv", "attn_proj", "fc", "mlp_proj"};
            StringBuilder kinds = new StringBuilder();
            for (int j = 0; j < 4; j++) {
                for (int r = 0; r < rounds; r++) kind[j][r] /= 1e6 * decode;
                Arrays.sort(kind[j]);
                kinds.append(String.format(",\"%s_ms\":%.3f", names[j], kind[j][rounds / 2]));
            }
            Arrays.sort(full);
            Arrays.sort(gemv);
            Arrays.sort(head);
            Arrays.sort(rest);
            int h = rounds / 2;
            System.out.printf("{\"model\":\"%s\",\"ms_per_token\":%.3f,\"tok_s\":%.1f,\"gemvs_ms\":%.3f,\"head_ms\":%.3f,"
                            + "\"block_gemvs_ms\":%.3f,\"rest_ms\":%.3f,\"rest_ms_min\":%.3f,\"rest_ms_max\":%.3f%s}%n",
                    dir.getFileName(), full[h], 1e3 / full[h], gemv[h], head[h], gemv[h] - head[h], rest[h], rest[0],
                    rest[rounds - 1], kinds);
        }
    }
}
