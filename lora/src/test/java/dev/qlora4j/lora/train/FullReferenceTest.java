package dev.qlora4j.lora.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.qlora4j.lora.data.PaddedExamples;
import dev.qlora4j.lora.optim.LrSchedule;
import dev.qlora4j.lora.params.ParamBuffer;
import dev.qlora4j.lora.full.FullModel;
import dev.qlora4j.quant.kernel.KernelProvider;
import dev.qlora4j.quant.safetensors.DType;
import dev.qlora4j.quant.safetensors.SafetensorsFile;
import dev.qlora4j.quant.safetensors.TensorInfo;
import dev.qlora4j.runtime.checkpoint.HfModelDir;
import dev.qlora4j.runtime.load.LoadOptions;
import dev.qlora4j.runtime.load.LoadedModel;
import dev.qlora4j.runtime.load.ModelLoader;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Locale;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Full-parameter training against PyTorch ({@code lora/src/test/python/full_reference.py}, goldens in
 * {@code lora/src/test/resources/full-reference/<model>/}): every weight trainable, one batch of B=2 × T=16 with
 * ignored targets. The loss (1e-4 relative), the gradient of every parameter ({@code |g - e| <= 1e-3 · max|e|} per
 * tensor, transformers' layouts; GPT-2's tied token embedding on the stored row subset, plus its full L2 norm) and a
 * 10-step AdamW trajectory with Hugging Face Trainer's weight-decay groups (0.1 on matrices, 0 on biases and
 * LayerNorm; lr 1e-3 constant; 1e-4 relative per loss) match, for GPT-2 and BLOOM.
 */
class FullReferenceTest {
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    static Path goldens() {
        return Path.of("src/test/resources/full-reference").toAbsolutePath();
    }

    static Path referenceModels() {
        return Path.of("../runtime/src/test/resources/reference").toAbsolutePath().normalize();
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-a", "bloom-a"})
    void lossEveryGradientAndAdamWTrajectoryMatchPyTorch(String model) throws Exception {
        Path dir = goldens().resolve(model);
        JsonNode exp = new ObjectMapper().readTree(dir.resolve("expected.json").toFile());
        int b = exp.at("/batch/B").asInt(), t = exp.at("/batch/T").asInt();
        JsonNode opt = exp.get("optimizer");
        assertEquals("constant", opt.get("schedule").asText());
        assertTrue(opt.get("clipping").isNull());
        double wd = opt.at("/param_groups/0/weight_decay").asDouble();
        assertEquals(0.0, opt.at("/param_groups/1/weight_decay").asDouble());
        Set<String> decays = new HashSet<>();
        for (JsonNode n : opt.at("/param_groups/0/names")) decays.add(n.asText());

        try (SafetensorsFile ref = SafetensorsFile.open(dir.resolve("expected.safetensors"));
             LoadedModel m = ModelLoader.load(referenceModels().resolve(model), LoadOptions.parse("none"),
                     KernelProvider.get())) {
            FullModel fm = FullModel.of(m);
            ParamBuffer pb = fm.params();
            assertEquals(exp.get("n_parameters").asInt(), pb.slices().size(), "parameter tensors");
            assertEquals(exp.get("n_weights").asLong(), fm.parameterCount(), "parameters");
            for (ParamBuffer.Slice s : pb.slices()) {
                assertEquals(decays.contains(refName(s.name())), s.decay(), s.name() + ": weight decay group");
            }
            int[][] inputs = LoraReferenceTest.rows(ref, "input_ids", b, t), targets = LoraReferenceTest.rows(ref, "targets", b, t);
            PaddedExamples ex = PaddedExamples.of(inputs, targets);
            TrainConfig cfg = new TrainConfig(b, t, 1, exp.get("trajectory_losses").size(), opt.get("lr").asDouble(),
                    LrSchedule.Kind.CONSTANT, 0, wd, opt.at("/betas/0").asDouble(), opt.at("/betas/1").asDouble(),
                    opt.get("eps").asDouble(), 0, 1, 0, 0, 0, 0, 1);
            Trainer trainer = new Trainer(fm, ex, ex, cfg, false);

            double[] traj = new double[cfg.steps()];
            double gradErr = 0;
            for (int k = 0; k < cfg.steps(); k++) {
                Trainer.StepStats s = trainer.step();
                traj[k] = s.loss;
                if (k == 0) {
                    assertEquals(exp.at("/batch/n_counted_targets").asLong(), s.targets);
                    double want = exp.get("loss").asDouble();
                    assertEquals(want, s.loss, 1e-4 * Math.abs(want), model + ": loss");
                    gradErr = checkGrads(model, fm, ref);
                }
            }
            double finalLoss = trainer.evaluate();
            double worst = LoraReferenceTest.checkTrajectory(exp, traj, finalLoss, model);
            double finalErr = checkFinals(model, fm, ref, m);
            System.out.printf(Locale.ROOT, "%s full: loss %.8f (torch %.8f), worst grad err %.2e × max|grad|, "
                            + "trajectory worst rel err %.2e, final tensors worst %.2e of their move%n",
                    model, traj[0], exp.get("loss").asDouble(), gradErr, worst, finalErr);
        }
    }

    /** The reference files name tensors as the reference model.safetensors does: without "transformer.". */
    private static String refName(String name) {
        return name.startsWith(HfModelDir.PREFIX) ? name.substring(HfModelDir.PREFIX.length()) : name;
    }

    /** @return the worst {@code |g - e| / max|e|} over the tensors */
    private static double checkGrads(String model, FullModel fm, SafetensorsFile ref) {
        double overall = 0;
        for (ParamBuffer.Slice s : fm.params().slices()) {
            String name = refName(s.name());
            float[] g = fm.hfGradient(s.name());
            float[] e;
            float[] got;
            if (ref.contains("grad." + name)) {
                e = ref.readFloats("grad." + name);
                got = g;
            } else { // GPT-2's token embedding: a row subset, and the full norm
                int c = s.shape()[1];
                long[] rowIds = ids(ref, "rows." + name);
                e = ref.readFloats("grad_rows." + name);
                got = new float[e.length];
                for (int r = 0; r < rowIds.length; r++) System.arraycopy(g, (int) rowIds[r] * c, got, r * c, c);
                double l2 = 0;
                for (float v : g) l2 += (double) v * v;
                double want = ref.readFloats("grad_l2." + name)[0];
                assertEquals(want, Math.sqrt(l2), 1e-4 * want, model + ": L2 norm of the gradient of " + name);
            }
            assertEquals(e.length, got.length, name);
            double max = 0;
            for (float v : e) max = Math.max(max, Math.abs(v));
            double worst = 0;
            for (int i = 0; i < e.length; i++) worst = Math.max(worst, Math.abs(got[i] - e[i]));
            assertTrue(worst <= 1e-3 * max, model + ": gradient of " + name + " is off by " + worst
                    + " (max |grad| " + max + ")");
            overall = Math.max(overall, worst / max);
        }
        return overall;
    }

    /** {@code ‖a - e‖₂ ≤ 1e-2 · ‖e - init‖₂} per final tensor (README: Adam amplifies near-zero gradient noise). */
    private static double checkFinals(String model, FullModel fm, SafetensorsFile ref, LoadedModel base) {
        double overall = 0;
        for (ParamBuffer.Slice s : fm.params().slices()) {
            String name = refName(s.name());
            boolean whole = ref.contains("final." + name), rows = ref.contains("final_rows." + name);
            if (!whole && !rows) continue;
            float[] a = fm.hfParam(s.name());
            float[] init = base.dir().readFloats(name);
            float[] e = ref.readFloats(whole ? "final." + name : "final_rows." + name);
            if (rows) {
                int c = s.shape()[1];
                long[] rowIds = ids(ref, "rows." + name);
                float[] ga = new float[e.length], gi = new float[e.length];
                for (int r = 0; r < rowIds.length; r++) {
                    System.arraycopy(a, (int) rowIds[r] * c, ga, r * c, c);
                    System.arraycopy(init, (int) rowIds[r] * c, gi, r * c, c);
                }
                a = ga;
                init = gi;
            }
            double diff = 0, moved = 0;
            for (int i = 0; i < e.length; i++) {
                diff += Math.pow(a[i] - e[i], 2);
                moved += Math.pow(e[i] - init[i], 2);
            }
            double rel = Math.sqrt(diff / moved);
            assertTrue(rel <= 1e-2, model + ": " + name + " after 10 steps is off by " + rel + " of how far it moved");
            overall = Math.max(overall, rel);
        }
        return overall;
    }

    private static long[] ids(SafetensorsFile f, String name) {
        TensorInfo ti = f.info(name);
        assertEquals(DType.I64, ti.dtype(), name);
        MemorySegment seg = f.segment(name);
        long[] out = new long[(int) (seg.byteSize() / 8)];
        for (int i = 0; i < out.length; i++) out[i] = seg.get(I64, 8L * i);
        return out;
    }
}
