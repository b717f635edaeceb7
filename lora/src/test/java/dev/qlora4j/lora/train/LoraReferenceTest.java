package dev.qlora4j.lora.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.qlora4j.lora.adapter.LoraModel;
import dev.qlora4j.lora.data.PaddedExamples;
import dev.qlora4j.lora.optim.LrSchedule;
import dev.qlora4j.lora.params.ParamBuffer;
import dev.qlora4j.quant.kernel.KernelProvider;
import dev.qlora4j.quant.safetensors.DType;
import dev.qlora4j.quant.safetensors.SafetensorsFile;
import dev.qlora4j.quant.safetensors.TensorInfo;
import dev.qlora4j.runtime.load.LoadOptions;
import dev.qlora4j.runtime.load.LoadedModel;
import dev.qlora4j.runtime.load.ModelLoader;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The trainer against PyTorch + PEFT ({@code lora/src/test/python/lora_reference.py}, goldens in
 * {@code lora/src/test/resources/lora-reference/<model>-<base>/}): LoRA r=8, alpha 16, dropout 0, a given non-zero
 * initial adapter, one batch of B=2 × T=16 with some ignored targets. The loss (1e-4 relative), every LoRA gradient
 * ({@code |g - e| <= 1e-3 · max|e|} per tensor) and a 10-step AdamW trajectory on the same batch (lr 1e-3 constant,
 * no clipping; 1e-4 relative per loss) match, for an F32 base and for an NF4 + double-quant base (the reference runs
 * on the dequantized weights).
 */
class LoraReferenceTest {
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    static Path goldens() {
        return Path.of("src/test/resources/lora-reference").toAbsolutePath();
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-a-f32", "gpt2-a-nf4", "bloom-a-f32", "bloom-a-nf4"})
    void lossGradientsAndAdamWTrajectoryMatchPyTorch(String variant) throws Exception {
        Path dir = goldens().resolve(variant);
        JsonNode exp = new ObjectMapper().readTree(dir.resolve("expected.json").toFile());
        String quant = exp.get("base").asText().equals("nf4") ? "nf4" : "none";
        Path modelDir = TrainFixtures.referenceDir().resolve(exp.get("model").asText());
        int b = exp.at("/batch/B").asInt(), t = exp.at("/batch/T").asInt();
        JsonNode opt = exp.get("optimizer");
        assertEquals("constant", opt.get("schedule").asText());
        assertEquals(1, opt.get("grad_accumulation").asInt());
        assertTrue(opt.get("clipping").isNull());

        try (SafetensorsFile ref = SafetensorsFile.open(dir.resolve("expected.safetensors"));
             LoadedModel m = ModelLoader.load(modelDir, LoadOptions.parse(quant), KernelProvider.get());
             LoraModel lora = LoraModel.load(m.model(), dir.resolve("adapter"), 0)) {
            assertEquals(exp.at("/lora/n_matched_modules").asInt(), lora.hooks().size());
            int[][] inputs = rows(ref, "input_ids", b, t), targets = rows(ref, "targets", b, t);
            PaddedExamples ex = PaddedExamples.of(inputs, targets);
            TrainConfig cfg = new TrainConfig(b, t, 1, exp.get("trajectory_losses").size(), opt.get("lr").asDouble(),
                    LrSchedule.Kind.CONSTANT, 0, opt.get("weight_decay").asDouble(), opt.at("/betas/0").asDouble(),
                    opt.at("/betas/1").asDouble(), opt.get("eps").asDouble(), 0, 1, 0, 0, 0, 0, 1);
            Trainer trainer = new Trainer(lora, ex, ex, cfg);

            double[] traj = new double[cfg.steps()];
            double gradErr = 0;
            for (int k = 0; k < cfg.steps(); k++) {
                Trainer.StepStats s = trainer.step();
                traj[k] = s.loss;
                if (k == 0) {
                    assertEquals(exp.at("/batch/n_counted_targets").asLong(), s.targets);
                    double want = exp.get("loss").asDouble();
                    assertEquals(want, s.loss, 1e-4 * Math.abs(want), variant + ": loss");
                    gradErr = checkGrads(variant, lora.params(), ref);
                }
            }
            double finalLoss = trainer.evaluate();
            double worst = checkTrajectory(exp, traj, finalLoss, variant);
            System.out.printf(Locale.ROOT, "%s: loss %.8f (torch %.8f), worst grad err %.2e × max|grad|, trajectory worst rel err %.2e%n",
                    variant, traj[0], exp.get("loss").asDouble(), gradErr, worst);
        }
    }

    /** @return the worst {@code |g - e| / max|e|} over the tensors */
    private static double checkGrads(String variant, ParamBuffer pb, SafetensorsFile ref) {
        float[] g = pb.grads();
        double overall = 0;
        for (ParamBuffer.Slice s : pb.slices()) {
            float[] e = ref.readFloats(s.name() + ".grad");
            assertEquals(s.length(), e.length, s.name());
            double max = 0;
            for (float v : e) max = Math.max(max, Math.abs(v));
            double worst = 0;
            for (int i = 0; i < e.length; i++) worst = Math.max(worst, Math.abs(g[s.offset() + i] - e[i]));
            assertTrue(worst <= 1e-3 * max, variant + ": gradient of " + s.name() + " is off by " + worst
                    + " (max |grad| " + max + ")");
            overall = Math.max(overall, worst / max);
        }
        return overall;
    }

    /**
     * The losses before each AdamW step and after the last against {@code trajectory_losses} /
     * {@code trajectory_final_loss}, 1e-4 relative each; returns the worst relative error.
     */
    static double checkTrajectory(JsonNode exp, double[] traj, double finalLoss, String what) {
        double worst = 0;
        for (int k = 0; k < traj.length; k++) {
            double want = exp.get("trajectory_losses").get(k).asDouble();
            worst = Math.max(worst, Math.abs(traj[k] - want) / Math.abs(want));
            assertEquals(want, traj[k], 1e-4 * Math.abs(want), what + ": loss before AdamW step " + k);
        }
        double wantFinal = exp.get("trajectory_final_loss").asDouble();
        worst = Math.max(worst, Math.abs(finalLoss - wantFinal) / Math.abs(wantFinal));
        assertEquals(wantFinal, finalLoss, 1e-4 * Math.abs(wantFinal), what + ": loss after 10 AdamW steps");
        return worst;
    }

    /** An I64 (b, t) tensor of a golden file as ints. */
    static int[][] rows(SafetensorsFile f, String name, int b, int t) {
        TensorInfo ti = f.info(name);
        assertEquals(DType.I64, ti.dtype(), name);
        MemorySegment seg = f.segment(name);
        int[][] out = new int[b][t];
        for (int i = 0; i < b; i++) {
            for (int j = 0; j < t; j++) out[i][j] = Math.toIntExact(seg.get(I64, 8L * (i * t + j)));
        }
        return out;
    }
}
