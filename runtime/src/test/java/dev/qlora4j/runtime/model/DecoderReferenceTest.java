package dev.qlora4j.runtime.model;

import dev.qlora4j.quant.kernel.KernelProvider;
import dev.qlora4j.quant.kernel.Kernels;
import dev.qlora4j.quant.kernel.ScalarKernels;
import dev.qlora4j.runtime.generate.Generator;
import dev.qlora4j.runtime.generate.SamplingParams;
import dev.qlora4j.runtime.load.LoadOptions;
import dev.qlora4j.runtime.load.LoadedModel;
import dev.qlora4j.runtime.load.ModelLoader;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * GPT-2 and BLOOM forward passes, greedy generation and loss against the independent PyTorch reference
 * (runtime/src/test/python/reference_models.py): logits to 1e-4 (absolute; relative where |logit| > 1), fp32. The
 * NF4+DQ and LLM.int8 variants compare with the reference run on the dequantized weights, so they test the quantized
 * kernels and the codecs, not quantization error.
 */
class DecoderReferenceTest {
    static final double TOL = 1e-4;

    static Stream<Arguments> cases() {
        Path ref = ReferenceFile.referenceDir();
        Path tiny = ReferenceFile.sharedDir().resolve("data/tiny-gpt2");
        return Stream.of(
                Arguments.of("tiny-gpt2", tiny, ref.resolve("tiny-gpt2/expected.safetensors"), "none"),
                Arguments.of("gpt2-a", ref.resolve("gpt2-a"), ref.resolve("gpt2-a/expected.safetensors"), "none"),
                Arguments.of("gpt2-b", ref.resolve("gpt2-b"), ref.resolve("gpt2-b/expected.safetensors"), "none"),
                Arguments.of("bloom-a", ref.resolve("bloom-a"), ref.resolve("bloom-a/expected.safetensors"), "none"),
                Arguments.of("bloom-b", ref.resolve("bloom-b"), ref.resolve("bloom-b/expected.safetensors"), "none"),
                Arguments.of("gpt2-a", ref.resolve("gpt2-a"), ref.resolve("gpt2-a/expected_nf4.safetensors"), "nf4"),
                Arguments.of("bloom-a", ref.resolve("bloom-a"), ref.resolve("bloom-a/expected_nf4.safetensors"), "nf4"),
                Arguments.of("gpt2-a", ref.resolve("gpt2-a"), ref.resolve("gpt2-a/expected_int8.safetensors"), "int8"),
                Arguments.of("bloom-a", ref.resolve("bloom-a"), ref.resolve("bloom-a/expected_int8.safetensors"), "int8"),
                // weights used as stored copied into private memory (--no-mmap): GPT-2's embeddings, all of BLOOM's
                Arguments.of("tiny-gpt2", tiny, ref.resolve("tiny-gpt2/expected.safetensors"), "none/no-mmap"),
                Arguments.of("bloom-a", ref.resolve("bloom-a"), ref.resolve("bloom-a/expected.safetensors"), "none/no-mmap"));
    }

    /** A case's quant label: {@code nf4}, {@code none}, ..., optionally followed by {@code /no-mmap}. */
    static LoadOptions options(String quant) {
        boolean noMmap = quant.endsWith("/no-mmap");
        return LoadOptions.parse(noMmap ? quant.substring(0, quant.indexOf('/')) : quant).withNoMmap(noMmap);
    }

    static Stream<Arguments> casesAllKernels() {
        return cases().flatMap(a -> Stream.of(
                Arguments.of(a.get()[0], a.get()[1], a.get()[2], a.get()[3], "scalar"),
                Arguments.of(a.get()[0], a.get()[1], a.get()[2], a.get()[3], "default")));
    }

    static Kernels kernels(String which) {
        return which.equals("scalar") ? new ScalarKernels() : KernelProvider.get();
    }

    @ParameterizedTest(name = "{0} quant={3} kernels={4}")
    @MethodSource("casesAllKernels")
    void logitsMatchReference(String name, Path modelDir, Path expected, String quant, String kern) {
        assertTrue(Files.isRegularFile(expected), "missing reference " + expected);
        try (LoadedModel lm = ModelLoader.load(modelDir, options(quant), kernels(kern));
             ReferenceFile ref = new ReferenceFile(expected)) {
            DecoderModel m = lm.model();
            int v = m.spec().v();
            int[] sel = ref.ints("vocab_sel");
            for (int k = 0; ref.has("ids_" + k); k++) {
                int[] ids = ref.ints("ids_" + k);
                int t = ids.length;
                KvCache cache = new KvCache(m.spec(), 1, t);
                Workspace ws = new Workspace(m.spec(), 1, t, t, false, t);
                m.forward(ids, 0, 1, t, 0, cache, ws);
                float[] logits = new float[t * v]; // (T, V)
                m.logits(ws, 0, t, logits, 0);
                String where = name + "/" + quant + " sequence " + k;
                // hidden state after ln_f
                float[] hs = ref.floats("hs_" + k); // (L+2, T, C)
                int c = m.spec().c();
                int lastOff = (m.spec().l() + 1) * t * c;
                for (int i = 0; i < t * c; i++) close(hs[lastOff + i], ws.lnf[i], where + " ln_f output [" + i + "]");
                // full rows
                int[] pos = ref.ints("logits_pos_" + k);
                float[] full = ref.floats("logits_" + k);
                for (int r = 0; r < pos.length; r++) {
                    for (int j = 0; j < v; j++) {
                        close(full[r * v + j], logits[pos[r] * v + j], where + " pos " + pos[r] + " logit " + j);
                    }
                }
                float[] selected = ref.floats("logits_sel_" + k); // (T, S)
                float[] lse = ref.floats("lse_" + k), maxval = ref.floats("maxval_" + k), gap = ref.floats("gap_" + k);
                int[] argmax = ref.ints("argmax_" + k);
                for (int p = 0; p < t; p++) {
                    for (int s = 0; s < sel.length; s++) {
                        close(selected[p * sel.length + s], logits[p * v + sel[s]], where + " pos " + p + " logit " + sel[s]);
                    }
                    double max = Double.NEGATIVE_INFINITY;
                    int am = 0;
                    for (int j = 0; j < v; j++) if (logits[p * v + j] > max) { max = logits[p * v + j]; am = j; }
                    double sum = 0;
                    for (int j = 0; j < v; j++) sum += Math.exp(logits[p * v + j] - max);
                    close(lse[p], max + Math.log(sum), where + " pos " + p + " logsumexp");
                    close(maxval[p], max, where + " pos " + p + " max logit");
                    if (gap[p] > 10 * TOL) assertEquals(argmax[p], am, where + " pos " + p + " argmax");
                }
            }
        }
    }

    @ParameterizedTest(name = "{0} quant={3}")
    @MethodSource("cases")
    void greedyGenerationMatchesReference(String name, Path modelDir, Path expected, String quant) {
        try (LoadedModel lm = ModelLoader.load(modelDir, options(quant), KernelProvider.get());
             ReferenceFile ref = new ReferenceFile(expected)) {
            for (int g = 0; ref.has("greedy_prompt_" + g); g++) {
                int[] prompt = ref.ints("greedy_prompt_" + g);
                int[] want = ref.ints("greedy_out_" + g);
                float[] margin = ref.floats("greedy_margin_" + g);
                Generator gen = new Generator(lm.model(), prompt.length + want.length, 64);
                int[] got = gen.generate(prompt, want.length, SamplingParams.greedyDecoding(), new int[0], id -> true);
                int sure = 0; // steps whose top-2 margin is far above the tolerance must agree exactly
                while (sure < want.length && margin[sure] > 10 * TOL) sure++;
                assertArrayEquals(java.util.Arrays.copyOf(want, sure), java.util.Arrays.copyOf(got, sure),
                        name + "/" + quant + " greedy continuation of prompt " + g);
                assertEquals(want.length, got.length);
            }
        }
    }

    @ParameterizedTest(name = "{0} quant={3}")
    @MethodSource("cases")
    void lossMatchesReference(String name, Path modelDir, Path expected, String quant) {
        try (LoadedModel lm = ModelLoader.load(modelDir, options(quant), KernelProvider.get());
             ReferenceFile ref = new ReferenceFile(expected)) {
            DecoderModel m = lm.model();
            int[] ids = ref.ints("loss_ids");
            float[] perPos = ref.floats("loss_per_pos");
            int t = ids.length, v = m.spec().v();
            KvCache cache = new KvCache(m.spec(), 1, t);
            Workspace ws = new Workspace(m.spec(), 1, t, t, false, 1);
            m.forward(ids, 0, 1, t, 0, cache, ws);
            double total = 0;
            for (int p = 0; p < t - 1; p++) {
                m.logits(ws, p, 1, ws.logits, 0);
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < v; j++) max = Math.max(max, ws.logits[j]);
                double sum = 0;
                for (int j = 0; j < v; j++) sum += Math.exp(ws.logits[j] - max);
                double ce = max + Math.log(sum) - ws.logits[ids[p + 1]];
                close(perPos[p], ce, name + "/" + quant + " loss at " + p);
                total += ce;
            }
            close(ref.floats("loss_mean")[0], total / (t - 1), name + "/" + quant + " mean loss");
        }
    }

    static void close(double want, double got, String what) {
        double err = Math.abs(want - got);
        double bound = Math.abs(want) > 1 ? TOL * Math.abs(want) : TOL;
        if (!(err <= bound)) fail(what + ": expected " + want + ", got " + got + " (|err| " + err + " > " + bound + ")");
    }
}
