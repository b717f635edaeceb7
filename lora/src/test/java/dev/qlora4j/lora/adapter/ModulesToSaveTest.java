package dev.qlora4j.lora.adapter;

import dev.qlora4j.lora.params.ParamBuffer;
import dev.qlora4j.quant.kernel.KernelProvider;
import dev.qlora4j.quant.safetensors.DType;
import dev.qlora4j.quant.safetensors.SafetensorsFile;
import dev.qlora4j.quant.safetensors.SafetensorsWriter;
import dev.qlora4j.quant.weight.WeightFormat;
import dev.qlora4j.runtime.load.LoadOptions;
import dev.qlora4j.runtime.load.LoadedModel;
import dev.qlora4j.runtime.load.ModelLoader;
import dev.qlora4j.runtime.model.DecoderModel;
import dev.qlora4j.runtime.model.LayerNormParams;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static dev.qlora4j.lora.adapter.TestModels.assertClose;
import static dev.qlora4j.lora.adapter.TestModels.assertExactlyEqual;
import static dev.qlora4j.lora.adapter.TestModels.logits;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * PEFT's {@code modules_to_save} for LayerNorm modules: which modules a name selects ({@code key.endswith(name)}), the
 * tensor names and config field PEFT writes (as literals), save → load → identical logits, disable / detach / merge /
 * unmerge, a merged checkpoint that the runtime loads with the adapted logits, and the errors.
 */
class ModulesToSaveTest {

    static LoraConfig config(String... toSave) {
        return LoraConfig.builder().targetModules(new TargetModules.AllLinear()).r(4).loraAlpha(8)
                .modulesToSave(List.of(toSave)).build();
    }

    /** Random LoRA factors (scale 0.05) and LayerNorm copies γ = 1 ± 0.3, β = ±0.2 away from the base. */
    static void randomize(LoraModel lm, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] p = lm.params().params();
        for (ParamBuffer.Slice s : lm.params().slices()) {
            boolean ln = lm.modulesToSave().moduleOf(s.name()) != null;
            for (int i = s.offset(); i < s.end(); i++) {
                double u = r.nextDouble() * 2 - 1;
                p[i] = (float) (!ln ? 0.05 * u : s.name().endsWith(".weight") ? 1 + 0.3 * u : 0.2 * u);
            }
        }
        lm.paramsChanged();
    }

    @ParameterizedTest(name = "{0}: {1}")
    @CsvSource(delimiter = ';', value = {
            "gpt2-a; ln_f; transformer.ln_f",
            "gpt2-a; ln_1; transformer.h.0.ln_1 transformer.h.1.ln_1",
            "gpt2-a; h.1.ln_2,ln_f; transformer.h.1.ln_2 transformer.ln_f",
            "gpt2-a; _2; transformer.h.0.ln_2 transformer.h.1.ln_2", // a plain string suffix, as PEFT's endswith
            "gpt2-a; transformer.ln_f; transformer.ln_f",
            "gpt2-a; model.transformer.ln_f; transformer.ln_f",      // PEFT matches base_model.model.<path>
            "bloom-a; ln_f; transformer.ln_f",
            "bloom-a; layernorm; transformer.word_embeddings_layernorm transformer.h.0.input_layernorm "
                    + "transformer.h.0.post_attention_layernorm transformer.h.1.input_layernorm "
                    + "transformer.h.1.post_attention_layernorm",
            "bloom-a; word_embeddings_layernorm,input_layernorm; transformer.word_embeddings_layernorm "
                    + "transformer.h.0.input_layernorm transformer.h.1.input_layernorm"})
    void namesSelectModulesAsPeftsEndswith(String model, String names, String want) {
        try (LoadedModel base = TestModels.load(model, "none")) {
            LoraModel lm = LoraModel.attach(base.model(), config(names.split(",")), 1);
            assertEquals(List.of(want.split(" ")), lm.modulesToSave().paths());
            int c = base.model().spec().c();
            assertEquals(2L * c * want.split(" ").length, lm.modulesToSave().parameterCount());
            assertEquals(lm.hooks().stream().mapToLong(h -> (long) h.r() * (h.in() + h.out())).sum()
                    + lm.modulesToSave().parameterCount(), lm.trainableParameterCount());
            int total = lm.modulesToSave().matchCounts().values().stream().mapToInt(Integer::intValue).sum();
            assertTrue(total >= want.split(" ").length);
            lm.detach();
        }
    }

    @Test
    void savedKeysAndConfigAreWhatPeftWrites(@TempDir Path tmp) throws Exception {
        try (LoadedModel base = TestModels.load("gpt2-a", "none")) {
            LoraModel lm = LoraModel.attach(base.model(), config("ln_f"), 1);
            assertEquals(Map.of("ln_f", 1), lm.modulesToSave().matchCounts());
            randomize(lm, 3);
            lm.save(tmp.resolve("a"));
            lm.detach();
        }
        try (SafetensorsFile f = SafetensorsFile.open(tmp.resolve("a/adapter_model.safetensors"))) {
            // get_peft_model_state_dict: "<wrapper name>.<param>", the "modules_to_save.default." part not in the key
            assertTrue(f.contains("base_model.model.transformer.ln_f.weight"), f.names().toString());
            assertTrue(f.contains("base_model.model.transformer.ln_f.bias"), f.names().toString());
            assertEquals("[64]", f.info("base_model.model.transformer.ln_f.weight").shapeString());
            assertEquals(DType.F32, f.info("base_model.model.transformer.ln_f.bias").dtype());
            assertEquals(2 * 4 * 2 + 2, f.names().size(), "8 LoRA modules × (A, B) + the LayerNorm's weight and bias");
            for (String n : f.names()) assertFalse(n.contains("modules_to_save") || n.contains("default"), n);
        }
        String json = Files.readString(tmp.resolve("a/adapter_config.json"));
        assertTrue(json.contains("\"modules_to_save\": [\n    \"ln_f\"\n  ],"), json);
    }

    @ParameterizedTest(name = "{0} quant={1} modules_to_save={2}")
    @CsvSource(delimiter = ';', value = {"gpt2-a; none; ln_f", "gpt2-a; nf4; ln_1,ln_2,ln_f", "bloom-a; none; layernorm,ln_f",
            "bloom-a; nf4; word_embeddings_layernorm"})
    void invariantsAndSaveLoadRoundTrip(String model, String quant, String names, @TempDir Path tmp) {
        try (LoadedModel base = TestModels.load(model, quant)) {
            DecoderModel m = base.model();
            int[] ids = TestModels.tokens(m, 2 * 7, 42);
            float[] ref = logits(m, ids, 2);
            List<float[]> baseLn = lnValues(m);

            LoraModel lm = LoraModel.attach(m, config(names.split(",")), 1);
            assertExactlyEqual(ref, logits(m, ids, 2), "fresh copies (= base) and B = 0 ⇒ base logits");
            randomize(lm, 7);
            float[] adapted = logits(m, ids, 2);
            assertTrue(TestModels.maxAbsDiff(ref, adapted) > 1e-3, "the adapter changes the logits");

            // the LayerNorm copies alone change the model: zero B
            lm.setEnabled(false);
            assertExactlyEqual(ref, logits(m, ids, 2), "disabled adapter ⇒ base LayerNorms and logits");
            assertLnEqual(baseLn, lnValues(m), "disabled adapter ⇒ base LayerNorms");
            lm.setEnabled(true);
            assertExactlyEqual(adapted, logits(m, ids, 2), "enabled again");

            lm.merge();
            assertClose(adapted, logits(m, ids, 2), 1e-4, "merged = unmerged (the copies stay active)");
            lm.unmerge();
            assertExactlyEqual(adapted, logits(m, ids, 2), "unmerge restores the adapted model");

            Path dir = tmp.resolve("adapter");
            lm.save(dir);
            lm.detach();
            assertExactlyEqual(ref, logits(m, ids, 2), "detach ⇒ base logits");
            assertLnEqual(baseLn, lnValues(m), "detach ⇒ base LayerNorms bit for bit");

            LoraModel back = LoraModel.load(m, dir, 3);
            assertEquals(lm.modulesToSave().paths(), back.modulesToSave().paths());
            assertExactlyEqual(adapted, logits(m, ids, 2), "save → load ⇒ identical logits");
            assertEquals(lm.config(), back.config().toBuilder().inferenceMode(false).build());
            assertArrayEquals(lm.params().params(), back.params().params());
            back.close();
            assertExactlyEqual(ref, logits(m, ids, 2), "closing the loaded adapter ⇒ base logits");
        }
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({"gpt2-a", "bloom-a"})
    void mergedCheckpointHoldsTheTrainedLayerNorms(String model, @TempDir Path tmp) throws Exception {
        try (LoadedModel base = TestModels.load(model, "none")) {
            DecoderModel m = base.model();
            LoraModel lm = LoraModel.attach(m, config((model.equals("gpt2-a") ? "ln_f,ln_1" : "layernorm,ln_f").split(",")), 2);
            randomize(lm, 9);
            int[] ids = TestModels.tokens(m, 9, 4);
            float[] adapted = logits(m, ids, 1);
            Path out = tmp.resolve("merged");
            MergedCheckpointWriter.write(base, lm, out, WeightFormat.F32, false);
            try (LoadedModel merged = ModelLoader.load(out, LoadOptions.asStored(), KernelProvider.get())) {
                assertClose(adapted, logits(merged.model(), ids, 1), 1e-4, "merged checkpoint = base + adapter");
                float[] lnF = lm.params().copyOf(lm.params().slice("base_model.model.transformer.ln_f.weight"));
                assertArrayEquals(lnF, merged.model().weights().lnF().gamma(), "ln_f.weight is the trained copy");
            }
            lm.detach();
        }
    }

    @Test
    void namesThatAreNotLayerNormsOrMatchNothingAreErrors() {
        try (LoadedModel gpt = TestModels.load("gpt2-a", "none"); LoadedModel bloom = TestModels.load("bloom-a", "none")) {
            for (String n : List.of("lm_head", "wte", "wpe", "c_attn", "mlp.c_proj", "h.0", "transformer", "drop")) {
                AdapterException e = assertThrows(AdapterException.class,
                        () -> LoraModel.attach(gpt.model(), config(n), 0), n);
                assertTrue(e.getMessage().contains("modules_to_save '" + n + "'")
                        && e.getMessage().contains("supports only LayerNorm modules for modules_to_save"), e.getMessage());
            }
            AdapterException e = assertThrows(AdapterException.class,
                    () -> LoraModel.attach(gpt.model(), config("ln_f", "q_norm"), 0));
            assertTrue(e.getMessage().contains("modules_to_save 'q_norm' matches no module")
                    && e.getMessage().contains("transformer.h.{0..1}.ln_1"), e.getMessage());
            e = assertThrows(AdapterException.class, () -> LoraModel.attach(gpt.model(), config("input_layernorm"), 0));
            assertTrue(e.getMessage().contains("matches no module"), e.getMessage());
            e = assertThrows(AdapterException.class, () -> LoraModel.attach(bloom.model(), config("word_embeddings"), 0));
            assertTrue(e.getMessage().contains("transformer.word_embeddings (Embedding)"), e.getMessage());
            e = assertThrows(AdapterException.class, () -> LoraModel.attach(bloom.model(), config("dense"), 0));
            assertTrue(e.getMessage().contains("(Linear)"), e.getMessage());
            assertEquals(Map.of("ln_1", 2, "ln_f", 1), LoraModel.matchModulesToSave(gpt.model(), List.of("ln_1", "ln_f")));
            // nothing was left attached
            for (var l : gpt.model().weights().linears()) assertEquals(0, l.hooks().length);
        }
    }

    @Test
    void adapterFilesMissingOrMisshapingTheCopiesAreRejected(@TempDir Path tmp) throws Exception {
        try (LoadedModel base = TestModels.load("gpt2-a", "none")) {
            DecoderModel m = base.model();
            int[] ids = TestModels.tokens(m, 7, 1);
            float[] ref = logits(m, ids, 1);
            LoraModel lm = LoraModel.attach(m, config("ln_f"), 1);
            randomize(lm, 5);
            Path good = tmp.resolve("good");
            lm.save(good);
            lm.detach();

            // the same tensors without ln_f's bias, and with a wrong-sized ln_f weight
            for (String variant : List.of("missing", "shape")) {
                Path dir = Files.createDirectories(tmp.resolve(variant));
                Files.copy(good.resolve("adapter_config.json"), dir.resolve("adapter_config.json"));
                SafetensorsWriter w = new SafetensorsWriter().metadata("format", "pt");
                try (SafetensorsFile f = SafetensorsFile.open(good.resolve("adapter_model.safetensors"))) {
                    for (String n : f.names()) {
                        float[] v = f.readFloats(n);
                        long[] shape = f.info(n).shape();
                        if (n.endsWith("ln_f.bias") && variant.equals("missing")) continue;
                        if (n.endsWith("ln_f.weight") && variant.equals("shape")) {
                            v = java.util.Arrays.copyOf(v, v.length - 1);
                            shape = new long[]{v.length};
                        }
                        w.add(n, DType.F32, shape, v);
                    }
                }
                w.write(dir.resolve("adapter_model.safetensors"));
                AdapterException e = assertThrows(AdapterException.class, () -> LoraModel.load(m, dir, 0));
                assertTrue(variant.equals("missing")
                        ? e.getMessage().contains("base_model.model.transformer.ln_f.bias [64]")
                        && e.getMessage().contains("modules_to_save")
                        : e.getMessage().contains("expected [64] (LayerNorm transformer.ln_f of modules_to_save)"),
                        e.getMessage());
                assertExactlyEqual(ref, logits(m, ids, 1), variant + ": a failed load leaves the base model");
            }
        }
    }

    static List<float[]> lnValues(DecoderModel m) {
        List<float[]> out = new ArrayList<>();
        var w = m.weights();
        List<LayerNormParams> all = new ArrayList<>();
        if (w.embLn() != null) all.add(w.embLn());
        for (var b : w.blocks()) {
            all.add(b.ln1());
            all.add(b.ln2());
        }
        all.add(w.lnF());
        for (LayerNormParams p : all) {
            out.add(p.gamma().clone());
            out.add(p.beta().clone());
        }
        return out;
    }

    static void assertLnEqual(List<float[]> want, List<float[]> got, String what) {
        assertEquals(want.size(), got.size());
        for (int i = 0; i < want.size(); i++) assertArrayEquals(want.get(i), got.get(i), what + " #" + i);
    }
}
