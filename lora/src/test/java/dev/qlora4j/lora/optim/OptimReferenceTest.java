package dev.qlora4j.lora.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * AdamW + clip_grad_norm_ + HF schedules against {@code optim_reference.json}, written by
 * {@code lora/src/test/python/optim_reference.py} with torch 1.13 (torch.optim.AdamW, foreach=False).
 */
class OptimReferenceTest {

    static final double REL = 1e-6;

    static JsonNode reference() throws IOException {
        try (InputStream in = OptimReferenceTest.class.getResourceAsStream("/optim/optim_reference.json")) {
            if (in == null) throw new IOException("optim/optim_reference.json not on the test classpath");
            return new ObjectMapper().readTree(in);
        }
    }

    static Stream<JsonNode> runs() throws IOException {
        List<JsonNode> out = new ArrayList<>();
        reference().get("runs").forEach(out::add);
        return out.stream();
    }

    @Test
    void schedulesMatchHfLambdasThroughLambdaLR() throws IOException {
        int tables = 0;
        for (JsonNode t : reference().get("schedules")) {
            LrSchedule s = new LrSchedule(LrSchedule.Kind.parse(t.get("kind").asText()), t.get("base_lr").asDouble(),
                    t.get("warmup").asInt(), t.get("total").asInt());
            JsonNode lrs = t.get("lr");
            for (int step = 0; step < lrs.size(); step++) {
                double want = lrs.get(step).asDouble();
                assertEquals(want, s.lr(step), 1e-15 + 1e-12 * Math.abs(want), s + " step " + step);
            }
            tables++;
        }
        assertEquals(20, tables);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("runs")
    void adamwTrajectoryMatchesTorch(JsonNode run) {
        String name = run.get("name").asText();
        List<ParamSlice> slices = new ArrayList<>();
        int size = 0;
        for (int i = 0; i < run.get("shapes").size(); i++) {
            int n = 1;
            for (JsonNode d : run.get("shapes").get(i)) n *= d.asInt();
            slices.add(new ParamSlice("p" + i, size, n, run.get("decay").get(i).asBoolean()));
            size += n;
        }
        float[] params = concat(run.get("init"), size);
        AdamW opt = new AdamW(size, new AdamW.Hyper(run.get("beta1").asDouble(), run.get("beta2").asDouble(),
                run.get("eps").asDouble(), run.get("weight_decay").asDouble()), slices);
        LrSchedule sched = new LrSchedule(LrSchedule.Kind.parse(run.get("schedule").asText()), run.get("lr").asDouble(),
                run.get("warmup").asInt(), run.get("total").asInt());
        boolean clip = !run.get("max_norm").isNull();
        float maxRel = 0;
        JsonNode steps = run.get("steps");
        for (int k = 0; k < steps.size(); k++) {
            JsonNode st = steps.get(k);
            float[] grads = concat(st.get("grads"), size);
            double lr = sched.lr(opt.stepCount());
            assertEquals(st.get("lr").asDouble(), lr, 1e-15, name + " lr at step " + k);
            if (clip) {
                float norm = GradClip.clipGlobalNorm(grads, slices, run.get("max_norm").asDouble());
                assertClose(name + " total_norm step " + k, (float) st.get("total_norm").asDouble(), norm, REL, 0);
            }
            opt.step(params, grads, lr);
            maxRel = Math.max(maxRel, assertAllClose(name + " params after step " + (k + 1), concat(st.get("params"), size), params));
        }
        assertEquals(run.get("step").asLong(), opt.stepCount());
        assertAllClose(name + " exp_avg", concat(run.get("exp_avg"), size), opt.expAvg());
        assertAllClose(name + " exp_avg_sq", concat(run.get("exp_avg_sq"), size), opt.expAvgSq());
        System.out.printf("%s: max relative param error %.3g over %d steps%n", name, maxRel, steps.size());
    }

    static float[] concat(JsonNode tensors, int size) {
        float[] out = new float[size];
        int o = 0;
        for (JsonNode t : tensors) for (JsonNode x : t) out[o++] = (float) x.asDouble();
        assertEquals(size, o);
        return out;
    }

    /** Max relative error; fails beyond 1e-6 relative (with a floor of 1e-6 × the tensor's largest magnitude). */
    static float assertAllClose(String what, float[] want, float[] got) {
        float scale = 0;
        for (float w : want) scale = Math.max(scale, Math.abs(w));
        float worst = 0;
        for (int i = 0; i < want.length; i++) {
            assertClose(what + " [" + i + "]", want[i], got[i], REL, REL * scale);
            if (want[i] != 0) worst = Math.max(worst, Math.abs(got[i] - want[i]) / Math.abs(want[i]));
        }
        return worst;
    }

    static void assertClose(String what, float want, float got, double rel, double abs) {
        if (!(Math.abs(got - want) <= rel * Math.abs(want) + abs)) fail(what + ": expected " + want + ", got " + got);
    }

    @Test
    void clipIsANoOpBelowTheLimitAndScalesToMaxNormAbove() {
        float[] g = {3, 4};
        assertEquals(5f, GradClip.clipGlobalNorm(g, 10));
        assertEquals(3f, g[0]);
        assertEquals(5f, GradClip.clipGlobalNorm(g, 1));
        assertEquals(1.0, Math.hypot(g[0], g[1]), 1e-6);
        float[] nan = {Float.NaN, 1};
        assertTrue(Float.isNaN(GradClip.clipGlobalNorm(nan, 1)));
        assertTrue(Float.isNaN(nan[1]), "torch scales by a NaN coefficient too");
    }
}
