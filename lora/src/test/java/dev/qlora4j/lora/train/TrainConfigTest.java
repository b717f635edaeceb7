package dev.qlora4j.lora.train;

import dev.qlora4j.lora.optim.LrSchedule;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class TrainConfigTest {

    @Test
    void jsonRoundTripsAndNamesHfFields() {
        TrainConfig c = TrainConfig.defaults(4, 256, 100, 2e-4).withBatch(4, 8).withSchedule(LrSchedule.Kind.COSINE, 3)
                .withOptimizer(2e-4, 0.01, 0.3).withSeed(-5).withIntervals(10, 2, 20, 3, 5);
        var json = c.toJson();
        assertEquals(8, json.get("gradient_accumulation_steps").asInt());
        assertEquals("cosine", json.get("lr_scheduler_type").asText());
        assertEquals(0.3, json.get("max_grad_norm").asDouble());
        assertEquals(c, TrainConfig.fromJson(json, "x"));
        json.remove("learning_rate");
        TrainException e = assertThrows(TrainException.class, () -> TrainConfig.fromJson(json, "state.json"));
        assertTrue(e.getMessage().contains("state.json") && e.getMessage().contains("learning_rate"), e.getMessage());
    }

    @Test
    void constantWithWarmupBecomesConstantWithWarmup() {
        assertEquals(LrSchedule.Kind.CONSTANT_WITH_WARMUP,
                TrainConfig.defaults(1, 8, 10, 1e-3).withSchedule(LrSchedule.Kind.CONSTANT, 2).schedule());
        assertEquals(LrSchedule.Kind.CONSTANT, TrainConfig.defaults(1, 8, 10, 1e-3).withSchedule(LrSchedule.Kind.CONSTANT, 0).schedule());
    }

    @Test
    void differencesListOnlyWhatChangesTheNumbers() {
        TrainConfig c = TrainConfig.defaults(4, 64, 100, 1e-3);
        assertEquals(List.of(), c.withIntervals(5, 1, 7, 1, 1).differencesFrom(c));
        assertEquals(List.of("--steps 100 → 200"), c.withSteps(200).differencesFrom(c));
        TrainConfig constant = c.withSchedule(LrSchedule.Kind.CONSTANT, 0);
        assertEquals(List.of(), constant.withSteps(200).differencesFrom(constant), "a constant schedule may be extended");
        assertEquals(List.of("--grad-accum 1 → 2", "--seed 42 → 1"), c.withBatch(4, 2).withSeed(1).differencesFrom(c));
    }

    @Test
    void rejectsBadValuesAndSummarizes() {
        assertThrows(IllegalArgumentException.class, () -> TrainConfig.defaults(0, 8, 1, 1e-3));
        assertThrows(IllegalArgumentException.class, () -> TrainConfig.defaults(1, 8, 0, 1e-3));
        assertThrows(IllegalArgumentException.class, () -> TrainConfig.defaults(1, 8, 1, -1));
        assertThrows(IllegalArgumentException.class, () -> TrainConfig.defaults(1, 8, 1, 1e-3).withOptimizer(1e-3, 0, -1));
        assertEquals("200 steps × 4×256 tokens × accum 2, lr 2e-04 cosine (warmup 10), weight decay 0.01, clip 0.3, seed 42",
                TrainConfig.defaults(4, 256, 200, 2e-4).withBatch(4, 2).withSchedule(LrSchedule.Kind.COSINE, 10)
                        .withOptimizer(2e-4, 0.01, 0.3).summary());
        assertEquals("1.5e-05", TrainConfig.num(1.5e-5));
        assertEquals("0.003", TrainConfig.num(0.003));
        assertEquals("16", TrainConfig.num(16));
    }
}
