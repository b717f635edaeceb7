package dev.qlora4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.qlora4j.quant.weight.WeightFormat;
import dev.qlora4j.runtime.load.LoadOptions;
import dev.qlora4j.runtime.load.LoadedModel;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --embedding-dtype auto} (the default): generate and eval hold a quantized model's embeddings (and tied head)
 * in f16, as transformers loads a 4/8-bit model unless given a dtype; everything else, and train and merge, keep them
 * as stored; an explicit value always wins.
 */
class EmbeddingDtypeTest {

    @TempDir
    Path tmp;

    private static ModelOptions options(Path model, String quant, String dtype) {
        ModelOptions o = new ModelOptions();
        o.model = model;
        o.quant = quant;
        o.maxContext = 2048;
        o.embeddingDtype = dtype;
        return o;
    }

    private static WeightFormat wte(ModelOptions o, boolean inference) {
        try (LoadedModel lm = o.load("none", null, inference)) {
            return lm.model().weights().wte().format();
        }
    }

    @Test
    void autoIsF16ForQuantizedInferenceOnly() {
        Path tiny = QloraCommandTest.TINY; // F32 safetensors
        assertEquals(WeightFormat.F32, wte(options(tiny, null, "auto"), true), "plain model: as stored");
        assertEquals(WeightFormat.F16, wte(options(tiny, "nf4", "auto"), true), "quantized at load");
        assertEquals(WeightFormat.F16, wte(options(tiny, "int8", "auto"), true), "LLM.int8 at load");
        assertEquals(WeightFormat.F32, wte(options(tiny, "nf4", "auto"), false), "train/merge: as stored");
        assertEquals(WeightFormat.F32, wte(options(tiny, "nf4", "as-stored"), true), "explicit as-stored");
        assertEquals(WeightFormat.BF16, wte(options(tiny, null, "bf16"), true), "explicit bf16");

        Path q = tmp.resolve("q");
        assertEquals(0, QloraCommandTest.run("quantize", "--model", tiny.toString(), "--type", "nf4", "--out",
                q.toString()).code());
        assertTrue(LoadOptions.hasQuantizationConfig(q), "qlora quantize writes a quantization_config");
        assertFalse(LoadOptions.hasQuantizationConfig(tiny));
        assertEquals(WeightFormat.F16, wte(options(q, null, "auto"), true), "pre-quantized directory");
        assertEquals(WeightFormat.F32, wte(options(q, null, "f32"), true), "explicit f32");
    }

    @Test
    void badValueIsAOneLineErrorNamingTheFlag() throws java.io.IOException {
        Path text = java.nio.file.Files.writeString(tmp.resolve("t.txt"), "Hello there. ".repeat(10));
        QloraCommandTest.run("eval", "--model", QloraCommandTest.TINY.toString(), "--data", text.toString(),
                "--embedding-dtype", "f8").assertOneLineError(1, "--embedding-dtype", "auto, f32, f16, bf16 or as-stored", "'f8'");
    }
}
