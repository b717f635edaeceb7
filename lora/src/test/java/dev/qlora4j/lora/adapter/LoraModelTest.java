package dev.qlora4j.lora.adapter;

import dev.qlora4j.lora.params.ParamBuffer;
import dev.qlora4j.quant.kernel.KernelProvider;
import dev.qlora4j.quant.safetensors.SafetensorsFile;
import dev.qlora4j.quant.weight.WeightFormat;
import dev.qlora4j.runtime.load.LoadOptions;
import dev.qlora4j.runtime.load.LoadedModel;
import dev.qlora4j.runtime.load.ModelLoader;
import dev.qlora4j.runtime.model.DecoderModel;
import dev.qlora4j.runtime.model.Linear;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static dev.qlora4j.lora.adapter.TestModels.assertClose;
import static dev.qlora4j.lora.adapter.TestModels.assertExactlyEqual;
import static dev.qlora4j.lora.adapter.TestModels.logits;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * PEFT's invariants, table-driven over models, base formats and configs: B = 0 ⇒ logits equal the base exactly;
 * merged = unmerged within 1e-4; unmerge and detach restore the base exactly; save → load → identical logits; a
 * merged HF checkpoint reloads to the merged logits.
 */
class LoraModelTest {

    static Stream<Arguments> cases() {
        LoraConfig gptAll = LoraConfig.builder().targetModules("c_attn", "c_proj", "c_fc").loraAlpha(16).build();
        LoraConfig bloomAll = LoraConfig.builder().targetModules("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h")
                .loraAlpha(16).build();
        LoraConfig rsPatterns = LoraConfig.builder().targetModules(new TargetModules.AllLinear()).useRslora(true)
                .rankPattern(Map.of("h.1.mlp.c_fc", 3)).alphaPattern(Map.of("attn.c_proj", 5)).build();
        return Stream.of(
                Arguments.of("gpt2-a", "none", LoraConfig.defaults()),
                Arguments.of("gpt2-a", "none", gptAll),
                Arguments.of("gpt2-a", "none", rsPatterns),
                Arguments.of("gpt2-a", "nf4", gptAll),
                Arguments.of("bloom-a", "none", LoraConfig.defaults()),
                Arguments.of("bloom-a", "none", bloomAll),
                Arguments.of("bloom-a", "nf4", bloomAll),
                Arguments.of("bloom-a", "int8", LoraConfig.builder().targetModules(new TargetModules.AllLinear()).build()),
                Arguments.of("tiny-gpt2", "none", gptAll));
    }

    /** Fills B (and A) with random values so the adapter changes the output. */
    static void randomize(LoraModel lm, long seed, double scale) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] p = lm.params().params();
        for (int i = 0; i < p.length; i++) p[i] = (float) ((r.nextDouble() * 2 - 1) * scale);
    }

    @ParameterizedTest(name = "{0} quant={1} {2}")
    @MethodSource("cases")
    void peftInvariants(String name, String quant, LoraConfig cfg, @TempDir Path tmp) {
        try (LoadedModel base = TestModels.load(name, quant)) {
            DecoderModel m = base.model();
            int[] ids = TestModels.tokens(m, 2 * 7, 42);
            float[] ref = logits(m, ids, 2);

            LoraModel lm = LoraModel.attach(m, cfg, 1);
            // every targeted module has B = 0, A ≠ 0
            for (LoraHook h : lm.hooks()) {
                assertTrue(allZero(lm.params(), h.sliceB()), h.path() + " B = 0");
                assertFalse(allZero(lm.params(), h.sliceA()), h.path() + " A initialized");
            }
            assertExactlyEqual(ref, logits(m, ids, 2), "B = 0 ⇒ base logits");

            randomize(lm, 7, 0.05);
            float[] adapted = logits(m, ids, 2);
            assertTrue(TestModels.maxAbsDiff(ref, adapted) > 1e-3, "a random adapter changes the logits");

            lm.setEnabled(false);
            assertExactlyEqual(ref, logits(m, ids, 2), "disabled adapter ⇒ base logits");
            lm.setEnabled(true);

            lm.merge();
            assertTrue(lm.merged());
            assertClose(adapted, logits(m, ids, 2), 1e-4, "merged = unmerged");
            lm.unmerge();
            assertExactlyEqual(adapted, logits(m, ids, 2), "unmerge restores the adapted model");

            Path dir = tmp.resolve("adapter");
            lm.save(dir);
            lm.detach();
            assertExactlyEqual(ref, logits(m, ids, 2), "detach ⇒ base logits");
            for (Linear l : m.weights().linears()) assertEquals(0, l.hooks().length, l.path() + " has no hooks left");

            LoraModel back = LoraModel.load(m, dir, 3);
            assertExactlyEqual(adapted, logits(m, ids, 2), "save → load ⇒ identical logits");
            assertEquals(lm.config(), back.config().toBuilder().inferenceMode(false).build());
            assertEquals(lm.trainableParameterCount(), back.trainableParameterCount());
            back.detach();
        }
    }

    static boolean allZero(ParamBuffer b, ParamBuffer.Slice s) {
        for (int i = s.offset(); i < s.end(); i++) if (b.params()[i] != 0f) return false;
        return true;
    }

    @Test
    void shapesCountsAndPatternsFollowTheConfig(@TempDir Path tmp) throws Exception {
        try (LoadedModel base = TestModels.load("gpt2-a", "none")) {
            LoraConfig cfg = LoraConfig.builder().targetModules("c_attn", "c_fc").r(8).loraAlpha(16)
                    .rankPattern(Map.of("h.1.attn.c_attn", 4)).alphaPattern(Map.of("c_fc", 4)).build();
            LoraModel lm = LoraModel.attach(base.model(), cfg, 0);
            assertEquals(Map.of("c_attn", 2, "c_fc", 2), lm.matchCounts());
            // C = 64: c_attn [192, 64], c_fc [256, 64]
            assertEquals(8 * (64 + 192) + 4 * (64 + 192) + 2 * 8 * (64 + 256), lm.trainableParameterCount());
            LoraHook h1 = lm.hook("transformer.h.1.attn.c_attn");
            assertEquals(4, h1.r());
            assertEquals(16 / 4.0, h1.scale(), 1e-7);
            assertEquals(4 / 8.0, lm.hook("transformer.h.0.mlp.c_fc").scale(), 1e-7);
            assertEquals(2.0, lm.hook("transformer.h.0.attn.c_attn").scale(), 1e-7);
            assertTrue(lm.config().fanInFanOut(), "PEFT sets fan_in_fan_out for GPT-2's Conv1D");
            // A ~ U(-1/√in, 1/√in)
            float bound = (float) (1 / Math.sqrt(64));
            for (int i = h1.sliceA().offset(); i < h1.sliceA().end(); i++) {
                assertTrue(Math.abs(lm.params().params()[i]) <= bound);
            }
            lm.save(tmp.resolve("a"));
            try (SafetensorsFile f = SafetensorsFile.open(tmp.resolve("a/adapter_model.safetensors"))) {
                assertEquals(Map.of("format", "pt"), f.metadata());
                assertEquals(8, f.names().size());
                assertEquals("[4, 64]", f.info("base_model.model.transformer.h.1.attn.c_attn.lora_A.weight").shapeString());
                assertEquals("[192, 4]", f.info("base_model.model.transformer.h.1.attn.c_attn.lora_B.weight").shapeString());
                assertEquals("[8, 64]", f.info("base_model.model.transformer.h.0.mlp.c_fc.lora_A.weight").shapeString());
                assertEquals("F32", f.info("base_model.model.transformer.h.0.mlp.c_fc.lora_B.weight").dtype().name());
            }
            String json = Files.readString(tmp.resolve("a/adapter_config.json"));
            assertTrue(json.contains("\"inference_mode\": true"), json);
            assertTrue(json.contains("\"target_modules\": [\n    \"c_attn\",\n    \"c_fc\"\n  ]"), json);
            // saving into an existing directory replaces the files atomically
            lm.save(tmp.resolve("a"));
            try (var s = Files.list(tmp.resolve("a"))) {
                assertEquals(List.of("adapter_config.json", "adapter_model.safetensors"), s.map(p -> p.getFileName().toString()).sorted().toList());
            }
            lm.detach();
        }
    }

    @Test
    void gaussianAndRandomInit() {
        try (LoadedModel base = TestModels.load("bloom-a", "none")) {
            LoraModel g = LoraModel.attach(base.model(), LoraConfig.builder().initLoraWeights("gaussian").r(4).build(), 5);
            LoraHook h = g.hooks().getFirst();
            double sum2 = 0;
            int n = h.sliceA().length();
            for (int i = h.sliceA().offset(); i < h.sliceA().end(); i++) sum2 += g.params().params()[i] * (double) g.params().params()[i];
            assertEquals(1.0 / 4, Math.sqrt(sum2 / n), 0.03, "A ~ N(0, std = 1/r)");
            assertTrue(allZero(g.params(), h.sliceB()));
            g.detach();
            LoraModel f = LoraModel.attach(base.model(), LoraConfig.builder().initLoraWeights(false).build(), 5);
            assertFalse(allZero(f.params(), f.hooks().getFirst().sliceB()), "init_lora_weights=False: B random");
            f.detach();
        }
    }

    @Test
    void unsupportedFeaturesAreRejected() {
        try (LoadedModel base = TestModels.load("gpt2-a", "none")) {
            for (LoraConfig c : List.of(LoraConfig.builder().useDora(true).build(),
                    LoraConfig.builder().bias(LoraConfig.Bias.ALL).build(),
                    LoraConfig.builder().initLoraWeights("pissa").build())) {
                AdapterException e = org.junit.jupiter.api.Assertions.assertThrows(AdapterException.class,
                        () -> LoraModel.attach(base.model(), c, 0));
                assertTrue(e.getMessage().contains("not support"), e.getMessage());
            }
            // modules_to_save: LayerNorms only (ModulesToSaveTest); the tied LM head is refused
            AdapterException e = org.junit.jupiter.api.Assertions.assertThrows(AdapterException.class,
                    () -> LoraModel.attach(base.model(), LoraConfig.builder().modulesToSave(List.of("lm_head")).build(), 0));
            assertTrue(e.getMessage().contains("modules_to_save 'lm_head' matches lm_head (Linear); qlora4j supports "
                    + "only LayerNorm modules for modules_to_save"), e.getMessage());
        }
    }

    static Stream<Arguments> mergedCheckpoints() {
        return Stream.of(Arguments.of("gpt2-a", "none", WeightFormat.F32, 1e-4),
                Arguments.of("bloom-a", "none", WeightFormat.F32, 1e-4),
                Arguments.of("gpt2-a", "nf4", WeightFormat.F32, 1e-4),
                Arguments.of("tiny-gpt2", "none", WeightFormat.BF16, 5e-2),
                Arguments.of("bloom-a", "none", WeightFormat.F16, 2e-2));
    }

    @ParameterizedTest(name = "{0} quant={1} → {2}")
    @MethodSource("mergedCheckpoints")
    void mergedCheckpointReloads(String name, String quant, WeightFormat dtype, double tol, @TempDir Path tmp) throws Exception {
        try (LoadedModel base = TestModels.load(name, quant)) {
            DecoderModel m = base.model();
            LoraModel lm = LoraModel.attach(m, LoraConfig.builder().targetModules(new TargetModules.AllLinear()).build(), 2);
            randomize(lm, 9, 0.05);
            int[] ids = TestModels.tokens(m, 9, 4);
            float[] adapted = logits(m, ids, 1);
            Path out = tmp.resolve("merged");
            MergedCheckpointWriter.write(base, lm, out, dtype, false);
            try (LoadedModel merged = ModelLoader.load(out, LoadOptions.asStored(), KernelProvider.get())) {
                assertClose(adapted, logits(merged.model(), ids, 1), tol, "merged checkpoint");
            }
            String cfg = Files.readString(out.resolve("config.json"));
            String want = switch (dtype) { case F32 -> "float32"; case F16 -> "float16"; default -> "bfloat16"; };
            assertTrue(cfg.contains("\"torch_dtype\": \"" + want + "\""), cfg);
            assertFalse(cfg.contains("quantization_config"));
            if (name.equals("tiny-gpt2")) assertTrue(Files.isRegularFile(out.resolve("vocab.json")), "tokenizer files copied");
            try (SafetensorsFile f = SafetensorsFile.open(out.resolve("model.safetensors"))) {
                boolean gpt2 = name.contains("gpt2");
                String qkv = gpt2 ? "transformer.h.0.attn.c_attn.weight" : "transformer.h.0.self_attention.query_key_value.weight";
                int c = m.spec().c();
                assertEquals(gpt2 ? "[" + c + ", " + 3 * c + "]" : "[" + 3 * c + ", " + c + "]", f.info(qkv).shapeString(),
                        "GPT-2 Conv1D weights are stored [in, out]");
                assertEquals(dtype.name(), f.info(qkv).dtype().name());
                assertFalse(f.contains("lm_head.weight"));
            }
            org.junit.jupiter.api.Assertions.assertThrows(AdapterException.class,
                    () -> MergedCheckpointWriter.write(base, lm, out, dtype, false), "refuses to overwrite");
            MergedCheckpointWriter.write(base, lm, out, dtype, true);
            lm.detach();
        }
    }

    @Test
    void requantizedMergeStaysQuantized() {
        try (LoadedModel base = TestModels.load("gpt2-a", "nf4")) {
            DecoderModel m = base.model();
            LoraModel lm = LoraModel.attach(m, LoraConfig.builder().targetModules("c_attn").build(), 2);
            randomize(lm, 9, 0.05);
            int[] ids = TestModels.tokens(m, 9, 4);
            float[] adapted = logits(m, ids, 1);
            lm.merge(true);
            assertEquals(WeightFormat.NF4, m.weights().blocks()[0].qkv().weight().format());
            float[] requant = logits(m, ids, 1);
            double d = TestModels.maxAbsDiff(adapted, requant);
            assertTrue(d > 0 && d < 0.5, "re-quantized merge is close but lossy: " + d);
            lm.unmerge();
            assertExactlyEqual(adapted, logits(m, ids, 1), "unmerge after a re-quantized merge");
            lm.detach();
        }
    }
}
