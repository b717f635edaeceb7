package dev.qlora4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.qlora4j.quant.safetensors.DType;
import dev.qlora4j.quant.safetensors.SafetensorsFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static dev.qlora4j.cli.QloraCommandTest.TINY;
import static dev.qlora4j.cli.QloraCommandTest.run;
import static org.junit.jupiter.api.Assertions.*;

/** {@code qlora init} and {@code qlora train --full}: pre-training a new small GPT-2 from scratch, end to end. */
class FullTrainCommandTest {

    @TempDir
    Path tmp;

    private Path init(String name) {
        Path dir = tmp.resolve(name);
        QloraCommandTest.Run r = run("init", "--tokenizer", TINY.toString(), "--out", dir.toString(), "--n-layer", "1",
                "--n-embd", "16", "--n-head", "2", "--n-positions", "32", "--seed", "5");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("parameters"), r.out());
        return dir;
    }

    @Test
    void initWritesTransformersInitializedGpt2() throws IOException {
        Path dir = init("new");
        JsonNode cfg = new ObjectMapper().readTree(dir.resolve("config.json").toFile());
        assertEquals("gpt2", cfg.get("model_type").asText());
        assertEquals(16, cfg.get("n_embd").asInt());
        assertEquals(50257, cfg.get("vocab_size").asInt());
        assertTrue(Files.isRegularFile(dir.resolve("vocab.json")) && Files.isRegularFile(dir.resolve("merges.txt")));
        try (SafetensorsFile f = SafetensorsFile.open(dir.resolve("model.safetensors"))) {
            // 1 block: wte, wpe, ln_1 ×2, c_attn ×2, attn.c_proj ×2, ln_2 ×2, c_fc ×2, mlp.c_proj ×2, ln_f ×2
            assertEquals(16, f.names().size());
            assertStd(f.readFloats("transformer.wte.weight"), 0.02);
            assertStd(f.readFloats("transformer.h.0.attn.c_attn.weight"), 0.02);
            assertStd(f.readFloats("transformer.h.0.mlp.c_proj.weight"), 0.02 / Math.sqrt(2.0)); // 0.02/sqrt(2·n_layer)
            for (float v : f.readFloats("transformer.h.0.ln_1.weight")) assertEquals(1f, v);
            for (float v : f.readFloats("transformer.h.0.attn.c_attn.bias")) assertEquals(0f, v);
            assertArrayEquals(new long[] {16, 48}, f.info("transformer.h.0.attn.c_attn.weight").shape(), "Conv1D [in, out]");
        }
        run("init", "--tokenizer", TINY.toString(), "--out", dir.toString()).assertOneLineError(1, "--out", "already holds a model");
        run("init", "--tokenizer", TINY.toString(), "--out", tmp.resolve("x").toString(), "--n-embd", "10", "--n-head", "3")
                .assertOneLineError(1, "not divisible");
        run("init", "--tokenizer", tmp.resolve("none").toString(), "--out", tmp.resolve("y").toString())
                .assertOneLineError(1, "--tokenizer", "no such directory");
    }

    private static void assertStd(float[] v, double want) {
        double s = 0, m = 0;
        for (float x : v) m += x;
        m /= v.length;
        for (float x : v) s += (x - m) * (x - m);
        double std = Math.sqrt(s / v.length);
        assertEquals(want, std, 5 * want / Math.sqrt(2.0 * v.length), "std of " + v.length + " draws"); // 5 standard errors
        assertEquals(0, m, 4 * want / Math.sqrt(v.length), "mean");
    }

    @Test
    void fullTrainingLearnsAndWritesALoadableModel() throws IOException {
        Path model = init("base"), out = tmp.resolve("run");
        Path data = TrainCommandTest.numbers(tmp, 60);
        QloraCommandTest.Run r = run("train", "--full", "--model", model.toString(), "--data", data.toString(),
                "--out", out.toString(), "--batch", "4", "--seq", "12", "--steps", "12", "--lr", "1e-2", "--warmup", "2",
                "--weight-decay", "0.1", "--eval-every", "6", "--save-every", "6", "--save-dtype", "bf16");
        assertEquals(0, r.code(), r.err() + r.out());
        assertTrue(r.out().contains("full: every weight trainable"), r.out());
        assertTrue(r.out().contains("model: " + out), r.out());
        List<JsonNode> m = TrainCommandTest.metrics(out);
        assertEquals(12, m.size());
        double first = m.get(0).get("loss").asDouble(), last = m.get(11).get("loss").asDouble();
        assertTrue(last < first - 1.0, "training loss " + first + " → " + last);
        JsonNode cfg = new ObjectMapper().readTree(out.resolve("config.json").toFile());
        assertEquals("bfloat16", cfg.get("torch_dtype").asText());
        try (SafetensorsFile f = SafetensorsFile.open(out.resolve("model.safetensors"))) {
            assertEquals(DType.BF16, f.info("transformer.wte.weight").dtype());
        }
        try (SafetensorsFile f = SafetensorsFile.open(out.resolve("checkpoint-12").resolve("model.safetensors"))) {
            assertEquals(DType.F32, f.info("transformer.wte.weight").dtype(), "checkpoints stay F32");
        }
        QloraCommandTest.Run g = run("generate", "--model", out.toString(), "--prompt", "12 =", "--max-new-tokens", "3",
                "--greedy");
        assertEquals(0, g.code(), g.err());

        // a LoRA run cannot resume a full checkpoint, and --full refuses quantization and adapters
        run("train", "--model", model.toString(), "--quant", "none", "--data", data.toString(), "--out", out.toString(),
                "--steps", "12", "--resume", out.toString()).assertOneLineError(1, "--full");
        run("train", "--full", "--quant", "nf4", "--model", model.toString(), "--data", data.toString(), "--out",
                tmp.resolve("q").toString()).assertOneLineError(1, "--full", "--quant");
        run("train", "--full", "--model", model.toString(), "--data", data.toString(), "--out", tmp.resolve("a").toString(),
                "--init-adapter", tmp.toString()).assertOneLineError(1, "--init-adapter", "--full");
    }
}
