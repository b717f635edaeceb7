package dev.qlora4j.lora.adapter;

import dev.qlora4j.quant.safetensors.DType;
import dev.qlora4j.quant.safetensors.SafetensorsFile;
import dev.qlora4j.quant.safetensors.SafetensorsWriter;
import dev.qlora4j.runtime.load.LoadedModel;
import dev.qlora4j.runtime.model.DecoderModel;
import dev.qlora4j.runtime.model.Linear;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;

import static dev.qlora4j.lora.adapter.TestModels.logits;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Adapter directories that are wrong in one way each fail with a message naming the file and tensor. */
class AdapterIoTest {
    static final String A0 = "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight";
    static final String B0 = "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight";
    static final String A1 = "base_model.model.transformer.h.1.attn.c_attn.lora_A.weight";
    static final String B1 = "base_model.model.transformer.h.1.attn.c_attn.lora_B.weight";

    /** gpt2-a (C = 64), r = 2 on c_attn: A [2, 64], B [192, 2]. */
    static void writeAdapter(Path dir, String configJson, Consumer<SafetensorsWriter> tensors) throws Exception {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("adapter_config.json"), configJson);
        SafetensorsWriter w = new SafetensorsWriter().metadata("format", "pt");
        tensors.accept(w);
        w.write(dir.resolve("adapter_model.safetensors"));
    }

    static final String CONFIG = "{\"peft_type\": \"LORA\", \"r\": 2, \"lora_alpha\": 4, \"target_modules\": [\"c_attn\"]}";

    static float[] filled(int n, float v) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = v * ((i % 7) - 3);
        return a;
    }

    static void good(SafetensorsWriter w, DType dt) {
        w.add(A0, dt, new long[]{2, 64}, filled(128, 0.01f));
        w.add(B0, dt, new long[]{192, 2}, filled(384, 0.02f));
        w.add(A1, dt, new long[]{2, 64}, filled(128, -0.01f));
        w.add(B1, dt, new long[]{192, 2}, filled(384, 0.03f));
    }

    @ParameterizedTest
    @ValueSource(strings = {"F32", "F16", "BF16"})
    void loadsHandWrittenPeftAdapterInAnyFloatDtype(String dtype, @TempDir Path tmp) throws Exception {
        DType dt = DType.valueOf(dtype);
        writeAdapter(tmp, CONFIG, w -> good(w, dt));
        try (LoadedModel base = TestModels.load("gpt2-a", "none")) {
            LoraModel lm = LoraModel.load(base.model(), tmp, 0);
            assertEquals(2, lm.hooks().size());
            assertEquals(2.0f, lm.hooks().getFirst().scale());
            float[] a0 = lm.params().copyOf(lm.params().slice(A0));
            try (SafetensorsFile f = SafetensorsFile.open(tmp.resolve("adapter_model.safetensors"))) {
                float[] want = f.readFloats(A0);
                for (int i = 0; i < want.length; i++) assertEquals(want[i], a0[i]);
            }
            lm.detach();
        }
    }

    @Test
    void independentMathCheckOnOneLinear(@TempDir Path tmp) throws Exception {
        // y = W x + b + s·B(A x) for the first c_attn, computed here in double from the tensors as written
        writeAdapter(tmp, CONFIG, w -> good(w, DType.F32));
        try (LoadedModel base = TestModels.load("gpt2-a", "none")) {
            DecoderModel m = base.model();
            Linear l = m.weights().blocks()[0].qkv();
            float[] x = new float[64];
            for (int i = 0; i < 64; i++) x[i] = (float) Math.sin(i);
            float[] yBase = new float[192];
            l.forward(m.kernels(), x, 0, yBase, 0, 1);
            LoraModel lm = LoraModel.load(m, tmp, 0);
            float[] y = new float[192];
            l.forward(m.kernels(), x, 0, y, 0, 1);
            float[] a = filled(128, 0.01f), b = filled(384, 0.02f);
            for (int o = 0; o < 192; o++) {
                double acc = 0;
                for (int k = 0; k < 2; k++) {
                    double u = 0;
                    for (int i = 0; i < 64; i++) u += a[k * 64 + i] * (double) x[i];
                    acc += b[o * 2 + k] * u;
                }
                assertEquals(yBase[o] + 2.0 * acc, y[o], 1e-5, "y[" + o + "]");
            }
            lm.detach();
        }
    }

    interface Breakage {
        void apply(Path dir) throws Exception;
    }

    static void expectFailure(Path dir, Breakage b, String... fragments) throws Exception {
        b.apply(dir);
        try (LoadedModel base = TestModels.load("gpt2-a", "none")) {
            DecoderModel m = base.model();
            int[] ids = TestModels.tokens(m, 5, 1);
            float[] ref = logits(m, ids, 1);
            AdapterException e = assertThrows(AdapterException.class, () -> LoraModel.load(m, dir, 0));
            for (String f : fragments) assertTrue(e.getMessage().contains(f), "'" + f + "' in: " + e.getMessage());
            for (Linear l : m.weights().linears()) assertEquals(0, l.hooks().length, "no hooks left after a failed load");
            TestModels.assertExactlyEqual(ref, logits(m, ids, 1), "model unchanged");
        }
    }

    @Test
    void wrongShape(@TempDir Path tmp) throws Exception {
        expectFailure(tmp, d -> writeAdapter(d, CONFIG, w -> {
            w.add(A0, DType.F32, new long[]{4, 64}, new float[256]);
            w.add(B0, DType.F32, new long[]{192, 2}, new float[384]);
            w.add(A1, DType.F32, new long[]{2, 64}, new float[128]);
            w.add(B1, DType.F32, new long[]{192, 2}, new float[384]);
        }), "adapter_model.safetensors", A0, "[4, 64]", "expected [2, 64]", "r=2");
    }

    @Test
    void missingTensor(@TempDir Path tmp) throws Exception {
        expectFailure(tmp, d -> writeAdapter(d, CONFIG, w -> {
            w.add(A0, DType.F32, new long[]{2, 64}, new float[128]);
            w.add(B0, DType.F32, new long[]{192, 2}, new float[384]);
            w.add(A1, DType.F32, new long[]{2, 64}, new float[128]);
        }), "adapter_model.safetensors", "missing 1 tensor", B1);
    }

    @Test
    void tensorForAnUntargetedModule(@TempDir Path tmp) throws Exception {
        expectFailure(tmp, d -> writeAdapter(d, CONFIG, w -> {
            good(w, DType.F32);
            w.add("base_model.model.transformer.h.0.mlp.c_fc.lora_A.weight", DType.F32, new long[]{2, 64}, new float[128]);
        }), "belong to no module", "h.0.mlp.c_fc.lora_A.weight");
    }

    @Test
    void integerDtype(@TempDir Path tmp) throws Exception {
        expectFailure(tmp, d -> writeAdapter(d, CONFIG, w -> {
            w.add(A0, DType.I8, new long[]{2, 64}, new byte[128]);
            w.add(B0, DType.F32, new long[]{192, 2}, new float[384]);
            w.add(A1, DType.F32, new long[]{2, 64}, new float[128]);
            w.add(B1, DType.F32, new long[]{192, 2}, new float[384]);
        }), "adapter_model.safetensors", A0, "I8");
    }

    @Test
    void badJson(@TempDir Path tmp) throws Exception {
        expectFailure(tmp, d -> writeAdapter(d, "{\"peft_type\": \"LORA\", \"r\": 2,,}", w -> good(w, DType.F32)),
                "adapter_config.json", "not valid JSON");
    }

    @Test
    void targetMatchingNothing(@TempDir Path tmp) throws Exception {
        expectFailure(tmp, d -> writeAdapter(d, "{\"peft_type\": \"LORA\", \"r\": 2, \"target_modules\": [\"q_proj\"]}",
                w -> good(w, DType.F32)), "adapter_config.json", "'q_proj'", "transformer.h.{0..1}.attn.c_attn");
    }

    @Test
    void missingFiles(@TempDir Path tmp) throws Exception {
        expectFailure(tmp.resolve("nope"), d -> { }, "does not exist");
        expectFailure(tmp.resolve("noconfig"), Files::createDirectories, "no adapter_config.json");
        expectFailure(tmp.resolve("bin"), d -> {
            Files.createDirectories(d);
            Files.writeString(d.resolve("adapter_config.json"), CONFIG);
            Files.write(d.resolve("adapter_model.bin"), new byte[]{1, 2});
        }, "no adapter_model.safetensors", "adapter_model.bin");
        expectFailure(tmp.resolve("trunc"), d -> {
            Files.createDirectories(d);
            Files.writeString(d.resolve("adapter_config.json"), CONFIG);
            Files.write(d.resolve("adapter_model.safetensors"), new byte[]{1, 2, 3});
        }, "adapter_model.safetensors");
    }
}
