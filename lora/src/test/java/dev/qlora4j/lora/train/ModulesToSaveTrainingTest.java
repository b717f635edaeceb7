package dev.qlora4j.lora.train;

import dev.qlora4j.lora.adapter.LoraConfig;
import dev.qlora4j.lora.adapter.LoraModel;
import dev.qlora4j.lora.adapter.TargetModules;
import dev.qlora4j.lora.data.PaddedExamples;
import dev.qlora4j.lora.optim.ParamSlice;
import dev.qlora4j.lora.params.ParamBuffer;
import dev.qlora4j.quant.kernel.KernelProvider;
import dev.qlora4j.runtime.load.LoadOptions;
import dev.qlora4j.runtime.load.LoadedModel;
import dev.qlora4j.runtime.load.ModelLoader;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * LoRA training with {@code modules_to_save} LayerNorms: the gradient of every trainable LayerNorm copy (and of the
 * LoRA factors next to them) against central finite differences of the model's own loss, on the small reference
 * GPT-2 and BLOOM, as {@link FullTrainingTest} checks a full fine-tune.
 */
class ModulesToSaveTrainingTest {

    static LoadedModel load(String model, String quant) {
        return ModelLoader.load(TrainFixtures.referenceDir().resolve(model), LoadOptions.parse(quant), KernelProvider.get());
    }

    @ParameterizedTest(name = "{0} quant={1} modules_to_save={2}")
    @CsvSource(delimiter = ';', value = {"gpt2-a; none; ln_1,ln_2,ln_f", "bloom-a; none; layernorm,ln_f",
            "gpt2-a; nf4; ln_f"})
    void layerNormCopyGradientsMatchFiniteDifferences(String model, String quant, String names) throws Exception {
        try (LoadedModel m = load(model, quant)) {
            LoraConfig cfg = LoraConfig.builder().targetModules(new TargetModules.AllLinear()).r(4).loraAlpha(8)
                    .modulesToSave(List.of(names.split(","))).build();
            LoraModel lora = LoraModel.attach(m.model(), cfg, 3);
            // B ≠ 0 and LayerNorm copies away from the base, so every path carries gradient
            SplittableRandom r = new SplittableRandom(11);
            ParamBuffer pb = lora.params();
            float[] p = pb.params();
            for (ParamBuffer.Slice s : pb.slices()) {
                boolean ln = lora.modulesToSave().moduleOf(s.name()) != null;
                for (int i = s.offset(); i < s.end(); i++) {
                    double u = r.nextDouble() * 2 - 1;
                    if (!ln) p[i] = (float) (s.name().contains("lora_B") ? 0.05 * u : p[i]);
                    else p[i] = (float) (s.name().endsWith(".weight") ? 1 + 0.3 * u : 0.1 * u);
                }
            }
            lora.paramsChanged();
            PaddedExamples ex = FullTrainingTest.batch(m.model().spec().v(), 5);
            Trainer t = new Trainer(lora, ex, ex, TrainConfig.defaults(2, 8, 1, 0.0)
                    .withOptimizer(0.0, 0.0, 0.0), false); // lr 0, no clipping: the raw gradient, parameters unchanged
            for (ParamSlice s : t.paramSlices()) {
                boolean ln = lora.modulesToSave().moduleOf(s.name()) != null;
                assertEquals(!ln, s.decay(), s.name() + ": weight decay on LoRA factors, not on LayerNorm copies");
            }
            t.step();
            float[] grads = pb.grads().clone();
            int checked = 0, lnSlices = 0;
            for (ParamBuffer.Slice s : pb.slices()) {
                boolean ln = lora.modulesToSave().moduleOf(s.name()) != null;
                if (ln) lnSlices++;
                else if (!s.name().contains("h.1.")) continue; // LoRA factors: spot checks in the last layer
                double max = FullTrainingTest.checkSliceByFiniteDifferences(t, p, grads, s, lora::paramsChanged, model);
                if (ln) assertTrue(max > 0, s.name() + " gets a gradient");
                checked += 2;
            }
            assertEquals(2 * lora.modulesToSave().paths().size(), lnSlices);
            assertTrue(checked >= 2 * lnSlices);

            // one real step moves the copies (no weight decay), and the model computes with the new values
            float[] before = p.clone();
            Trainer t2 = new Trainer(lora, ex, ex, TrainConfig.defaults(2, 8, 1, 1e-2), false);
            double lossBefore = t2.evaluate();
            t2.step();
            boolean moved = false;
            for (ParamBuffer.Slice s : pb.slices()) {
                if (lora.modulesToSave().moduleOf(s.name()) == null) continue;
                for (int i = s.offset(); i < s.end(); i++) moved |= p[i] != before[i];
            }
            assertTrue(moved, "AdamW moved the LayerNorm copies");
            assertFalse(t2.evaluate() == lossBefore, "the model computes with the updated copies");
            lora.detach();
        }
    }
}
