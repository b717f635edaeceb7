package dev.qlora4j.bench.e2e;

import dev.qlora4j.quant.safetensors.DType;
import dev.qlora4j.quant.safetensors.SafetensorsWriter;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;

/**
 * Writes a GPT-2-architecture Hugging Face directory with random weights (N(0, 0.02), LayerNorm γ = 1, β = 0,
 * zero biases) — the shape of GPT-2 124M by default — for benchmarks: no pretrained weights can be downloaded here.
 */
public final class RandomGpt2Checkpoint {
    private RandomGpt2Checkpoint() {
    }

    /** Writes {@code dir/config.json} and {@code dir/model.safetensors} unless they exist; returns dir. */
    public static Path ensure(Path dir, int layers, int c, int heads, int vocab, int positions, DType dtype, long seed)
            throws IOException {
        if (Files.exists(dir.resolve("model.safetensors")) && Files.exists(dir.resolve("config.json"))) return dir;
        Files.createDirectories(dir);
        SplittableRandom rng = new SplittableRandom(seed);
        SafetensorsWriter w = new SafetensorsWriter();
        w.metadata("format", "pt");
        w.add("wte.weight", dtype, new long[]{vocab, c}, normal(rng, vocab * c));
        w.add("wpe.weight", dtype, new long[]{positions, c}, normal(rng, positions * c));
        for (int i = 0; i < layers; i++) {
            String p = "h." + i + ".";
            w.add(p + "ln_1.weight", dtype, new long[]{c}, ones(c));
            w.add(p + "ln_1.bias", dtype, new long[]{c}, new float[c]);
            w.add(p + "attn.c_attn.weight", dtype, new long[]{c, 3L * c}, normal(rng, c * 3 * c));
            w.add(p + "attn.c_attn.bias", dtype, new long[]{3L * c}, new float[3 * c]);
            w.add(p + "attn.c_proj.weight", dtype, new long[]{c, c}, normal(rng, c * c));
            w.add(p + "attn.c_proj.bias", dtype, new long[]{c}, new float[c]);
            w.add(p + "ln_2.weight", dtype, new long[]{c}, ones(c));
            w.add(p + "ln_2.bias", dtype, new long[]{c}, new float[c]);
            w.add(p + "mlp.c_fc.weight", dtype, new long[]{c, 4L * c}, normal(rng, c * 4 * c));
            w.add(p + "mlp.c_fc.bias", dtype, new long[]{4L * c}, new float[4 * c]);
            w.add(p + "mlp.c_proj.weight", dtype, new long[]{4L * c, c}, normal(rng, 4 * c * c));
            w.add(p + "mlp.c_proj.bias", dtype, new long[]{c}, new float[c]);
        }
        w.add("ln_f.weight", dtype, new long[]{c}, ones(c));
        w.add("ln_f.bias", dtype, new long[]{c}, new float[c]);
        w.write(dir.resolve("model.safetensors"));
        Files.writeString(dir.resolve("config.json"), """
                {
                  "activation_function": "gelu_new",
                  "architectures": ["GPT2LMHeadModel"],
                  "bos_token_id": 50256,
                  "eos_token_id": 50256,
                  "layer_norm_epsilon": 1e-05,
                  "model_type": "gpt2",
                  "n_embd": %d,
                  "n_head": %d,
                  "n_layer": %d,
                  "n_positions": %d,
                  "torch_dtype": "%s",
                  "vocab_size": %d
                }
                """.formatted(c, heads, layers, positions, dtype == DType.BF16 ? "bfloat16" : "float32", vocab));
        return dir;
    }

    private static float[] normal(SplittableRandom rng, int n) {
        return dev.qlora4j.lora.full.Gpt2Init.normal(rng, n, 0.02);
    }

    private static float[] ones(int n) {
        float[] x = new float[n];
        java.util.Arrays.fill(x, 1f);
        return x;
    }
}
