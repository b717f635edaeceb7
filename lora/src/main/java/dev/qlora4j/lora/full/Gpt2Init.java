package dev.qlora4j.lora.full;

import dev.qlora4j.quant.safetensors.DType;
import dev.qlora4j.quant.safetensors.SafetensorsWriter;
import dev.qlora4j.runtime.checkpoint.HfModelDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.ThreadLocalRandom;

/**
 * A freshly initialized GPT-2 as transformers' {@code GPT2LMHeadModel(config).save_pretrained(dir)} writes it, for
 * pre-training from scratch: {@code config.json} (transformers' GPT-2 keys), {@code model.safetensors} (F32,
 * transformers' names, Conv1D weights {@code [in, out]}, the tied LM head not stored) and the tokenizer files copied
 * from a GPT-2 tokenizer directory.
 *
 * <p>Initialization is transformers' {@code GPT2PreTrainedModel._init_weights}: linear (Conv1D) weights and both
 * embeddings {@code N(0, initializer_range = 0.02)}, biases 0, LayerNorm γ = 1, β = 0, and the residual
 * projections ({@code attn.c_proj.weight}, {@code mlp.c_proj.weight}) {@code N(0, 0.02 / sqrt(2·n_layer))} (GPT-2
 * paper's scaling). Normal draws: Box–Muller over a seeded {@link SplittableRandom}, one stream per tensor.
 */
public final class Gpt2Init {

    /** The shape and regularization of the new model. */
    public record Shape(int layers, int embd, int heads, int positions, int vocab, double dropout) {
        public Shape {
            if (layers < 1 || embd < 1 || heads < 1 || positions < 1 || vocab < 1) {
                throw new IllegalArgumentException("every dimension must be >= 1: layers " + layers + ", n_embd " + embd
                        + ", heads " + heads + ", positions " + positions + ", vocab " + vocab);
            }
            if (embd % heads != 0) {
                throw new IllegalArgumentException("n_embd " + embd + " is not divisible by n_head " + heads);
            }
            if (!(dropout >= 0 && dropout < 1)) throw new IllegalArgumentException("dropout must be in [0, 1), got " + dropout);
        }

        /** Parameters as transformers counts them (the tied LM head once). */
        public long parameters() {
            long c = embd, perLayer = 2 * 2 * c + (c * 3 * c + 3 * c) + (c * c + c) + (c * 4 * c + 4 * c) + (4 * c * c + c);
            return (long) vocab * c + (long) positions * c + layers * perLayer + 2 * c;
        }
    }

    static final List<String> TOKENIZER_FILES = List.of("vocab.json", "merges.txt", "tokenizer.json",
            "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "generation_config.json");
    static final double INIT_RANGE = 0.02;

    private Gpt2Init() {
    }

    /**
     * Writes the new model into {@code out} (created; must not hold a model yet).
     *
     * @param tokenizerDir a directory with GPT-2's {@code vocab.json} + {@code merges.txt} (and whichever of
     *                     tokenizer.json, tokenizer_config.json, special_tokens_map.json, generation_config.json it has)
     */
    public static void write(Path out, Shape s, Path tokenizerDir, long seed) throws IOException {
        if (!Files.isRegularFile(tokenizerDir.resolve("vocab.json")) || !Files.isRegularFile(tokenizerDir.resolve("merges.txt"))) {
            throw new IOException(tokenizerDir + ": not a GPT-2 tokenizer directory (needs vocab.json and merges.txt)");
        }
        if (Files.exists(out.resolve(HfModelDir.CONFIG))) throw new IOException(out + ": already holds a model (config.json)");
        Files.createDirectories(out);
        SplittableRandom root = new SplittableRandom(seed);
        int c = s.embd();
        double projStd = INIT_RANGE / Math.sqrt(2.0 * s.layers());
        SafetensorsWriter w = new SafetensorsWriter().metadata("format", "pt");
        String p = HfModelDir.PREFIX;
        w.add(p + "wte.weight", DType.F32, new long[]{s.vocab(), c}, normal(root.split(), s.vocab() * c, INIT_RANGE));
        w.add(p + "wpe.weight", DType.F32, new long[]{s.positions(), c}, normal(root.split(), s.positions() * c, INIT_RANGE));
        for (int i = 0; i < s.layers(); i++) {
            String h = p + "h." + i + ".";
            w.add(h + "ln_1.weight", DType.F32, new long[]{c}, ones(c));
            w.add(h + "ln_1.bias", DType.F32, new long[]{c}, new float[c]);
            w.add(h + "attn.c_attn.weight", DType.F32, new long[]{c, 3L * c}, normal(root.split(), 3 * c * c, INIT_RANGE));
            w.add(h + "attn.c_attn.bias", DType.F32, new long[]{3L * c}, new float[3 * c]);
            w.add(h + "attn.c_proj.weight", DType.F32, new long[]{c, c}, normal(root.split(), c * c, projStd));
            w.add(h + "attn.c_proj.bias", DType.F32, new long[]{c}, new float[c]);
            w.add(h + "ln_2.weight", DType.F32, new long[]{c}, ones(c));
            w.add(h + "ln_2.bias", DType.F32, new long[]{c}, new float[c]);
            w.add(h + "mlp.c_fc.weight", DType.F32, new long[]{c, 4L * c}, normal(root.split(), 4 * c * c, INIT_RANGE));
            w.add(h + "mlp.c_fc.bias", DType.F32, new long[]{4L * c}, new float[4 * c]);
            w.add(h + "mlp.c_proj.weight", DType.F32, new long[]{4L * c, c}, normal(root.split(), 4 * c * c, projStd));
            w.add(h + "mlp.c_proj.bias", DType.F32, new long[]{c}, new float[c]);
        }
        w.add(p + "ln_f.weight", DType.F32, new long[]{c}, ones(c));
        w.add(p + "ln_f.bias", DType.F32, new long[]{c}, new float[c]);
        w.write(out.resolve(HfModelDir.SAFETENSORS));
        for (String f : TOKENIZER_FILES) {
            if (Files.isRegularFile(tokenizerDir.resolve(f))) {
                Files.copy(tokenizerDir.resolve(f), out.resolve(f), StandardCopyOption.REPLACE_EXISTING);
            }
        }
        Path tmp = out.resolve(".config.json.tmp-" + Long.toHexString(ThreadLocalRandom.current().nextLong()));
        Files.writeString(tmp, config(s));
        Files.move(tmp, out.resolve(HfModelDir.CONFIG), StandardCopyOption.ATOMIC_MOVE);
    }

    /** transformers' GPT2Config.to_json_string() keys for this shape (indent 2, sorted). */
    static String config(Shape s) {
        String d = String.format(Locale.ROOT, "%s", s.dropout());
        return """
                {
                  "activation_function": "gelu_new",
                  "architectures": [
                    "GPT2LMHeadModel"
                  ],
                  "attn_pdrop": %s,
                  "bos_token_id": 50256,
                  "embd_pdrop": %s,
                  "eos_token_id": 50256,
                  "initializer_range": 0.02,
                  "layer_norm_epsilon": 1e-05,
                  "model_type": "gpt2",
                  "n_ctx": %d,
                  "n_embd": %d,
                  "n_head": %d,
                  "n_inner": null,
                  "n_layer": %d,
                  "n_positions": %d,
                  "reorder_and_upcast_attn": false,
                  "resid_pdrop": %s,
                  "scale_attn_by_inverse_layer_idx": false,
                  "scale_attn_weights": true,
                  "summary_activation": null,
                  "summary_first_dropout": 0.1,
                  "summary_proj_to_labels": true,
                  "summary_type": "cls_index",
                  "summary_use_proj": true,
                  "torch_dtype": "float32",
                  "use_cache": true,
                  "vocab_size": %d
                }
                """.formatted(d, d, s.positions(), s.embd(), s.heads(), s.layers(), s.positions(), d, s.vocab());
    }

    /** {@code n} draws of N(0, std²), Box–Muller two at a time. */
    public static float[] normal(SplittableRandom rng, int n, double std) {
        float[] x = new float[n];
        for (int i = 0; i < n; i += 2) {
            double u = 1.0 - rng.nextDouble(), v = rng.nextDouble();
            double r = Math.sqrt(-2 * Math.log(u)) * std;
            x[i] = (float) (r * Math.cos(2 * Math.PI * v));
            if (i + 1 < n) x[i + 1] = (float) (r * Math.sin(2 * Math.PI * v));
        }
        return x;
    }

    private static float[] ones(int n) {
        float[] x = new float[n];
        java.util.Arrays.fill(x, 1f);
        return x;
    }
}
