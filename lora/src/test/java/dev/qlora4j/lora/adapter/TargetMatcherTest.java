package dev.qlora4j.lora.adapter;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** PEFT's check_target_module_exists / get_pattern_key cases on GPT-2's module paths (3 layers). */
class TargetMatcherTest {
    static final List<String> GPT2 = new ArrayList<>();

    static {
        for (int i = 0; i < 3; i++) {
            for (String s : List.of("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")) GPT2.add("transformer.h." + i + "." + s);
        }
    }

    static LoraConfig.Builder cfg() {
        return LoraConfig.builder();
    }

    static Stream<Arguments> cases() {
        return Stream.of(
                Arguments.of("leaf name", cfg().targetModules("c_attn"), List.of("h.0.attn.c_attn", "h.1.attn.c_attn", "h.2.attn.c_attn"), Map.of("c_attn", 3)),
                Arguments.of("shared leaf", cfg().targetModules("c_proj"), List.of("h.0.attn.c_proj", "h.0.mlp.c_proj", "h.1.attn.c_proj", "h.1.mlp.c_proj", "h.2.attn.c_proj", "h.2.mlp.c_proj"), Map.of("c_proj", 6)),
                Arguments.of("dotted suffix", cfg().targetModules("mlp.c_proj", "h.1.attn.c_attn"), List.of("h.0.mlp.c_proj", "h.1.attn.c_attn", "h.1.mlp.c_proj", "h.2.mlp.c_proj"), Map.of("mlp.c_proj", 3, "h.1.attn.c_attn", 1)),
                Arguments.of("partial leaf does not match", cfg().targetModules("c_fc", "attn"), null, null),
                Arguments.of("regex full match", cfg().targetModules(new TargetModules.Regex(".*\\.h\\.[02]\\.attn\\.c_(attn|proj)")), List.of("h.0.attn.c_attn", "h.0.attn.c_proj", "h.2.attn.c_attn", "h.2.attn.c_proj"), Map.of(".*\\.h\\.[02]\\.attn\\.c_(attn|proj)", 4)),
                Arguments.of("regex is not a search", cfg().targetModules(new TargetModules.Regex("c_attn")), null, null),
                Arguments.of("all-linear", cfg().targetModules(new TargetModules.AllLinear()), GPT2.stream().map(s -> s.substring("transformer.".length())).toList(), Map.of("all-linear", 12)),
                Arguments.of("layers_to_transform", cfg().targetModules("c_attn", "c_fc").layersToTransform(List.of(0, 2)), List.of("h.0.attn.c_attn", "h.0.mlp.c_fc", "h.2.attn.c_attn", "h.2.mlp.c_fc"), Map.of("c_attn", 2, "c_fc", 2)),
                Arguments.of("layers_pattern", cfg().targetModules("c_fc").layersToTransform(List.of(1)).layersPattern(List.of("h")), List.of("h.1.mlp.c_fc"), Map.of("c_fc", 1)),
                Arguments.of("layers_pattern absent from path", cfg().targetModules("c_fc").layersToTransform(List.of(1)).layersPattern(List.of("layers")), null, null),
                Arguments.of("exact name skips layer filter", cfg().targetModules("transformer.h.2.mlp.c_fc", "c_attn").layersToTransform(List.of(0)), List.of("h.0.attn.c_attn", "h.2.mlp.c_fc"), Map.of("transformer.h.2.mlp.c_fc", 1, "c_attn", 1)),
                Arguments.of("layer out of range", cfg().targetModules("c_attn").layersToTransform(List.of(7)), null, null),
                Arguments.of("exclude_modules list", cfg().targetModules("c_proj").excludeModules(TargetModules.names("mlp.c_proj")), List.of("h.0.attn.c_proj", "h.1.attn.c_proj", "h.2.attn.c_proj"), Map.of("c_proj", 3)),
                Arguments.of("exclude_modules regex", cfg().targetModules(new TargetModules.AllLinear()).excludeModules(new TargetModules.Regex(".*\\.h\\.[01]\\..*")), List.of("h.2.attn.c_attn", "h.2.attn.c_proj", "h.2.mlp.c_fc", "h.2.mlp.c_proj"), Map.of("all-linear", 4)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void matchesAsPeft(String name, LoraConfig.Builder b, List<String> expected, Map<String, Integer> counts) {
        LoraConfig c = b.build();
        if (expected == null) {
            AdapterException e = assertThrows(AdapterException.class, () -> TargetMatcher.match(c, c.targetModules(), GPT2));
            assertTrue(e.getMessage().contains("no module of the base model"), e.getMessage());
            assertTrue(e.getMessage().contains("transformer.h.{0..2}.attn.c_attn"), "lists the available modules: " + e.getMessage());
            return;
        }
        TargetMatcher.Result r = TargetMatcher.match(c, c.targetModules(), GPT2);
        assertEquals(expected.stream().map(s -> "transformer." + s).toList(), r.matched());
        assertEquals(counts, r.perTarget());
    }

    @Test
    void errorNamesEachMissingTarget() {
        LoraConfig c = cfg().targetModules("c_attn", "q_proj", "v_proj").build();
        AdapterException e = assertThrows(AdapterException.class, () -> TargetMatcher.match(c, c.targetModules(), GPT2));
        assertTrue(e.getMessage().contains("[q_proj, v_proj]"), e.getMessage());
    }

    @Test
    void layerIndexAsPeftReadsIt() {
        assertEquals(3, TargetMatcher.layerIndex("transformer.h.3.attn.c_attn", null));
        assertEquals(12, TargetMatcher.layerIndex("model.decoder.layers.12.self_attn.q_proj", null));
        assertEquals(-1, TargetMatcher.layerIndex("lm_head", null));
        assertEquals(5, TargetMatcher.layerIndex("transformer.h.5.mlp.c_fc", List.of("layers", "h")));
    }

    @Test
    void patternKeyFirstMatchInOrder() {
        Map<String, Integer> rp = new LinkedHashMap<>();
        rp.put("c_attn", 4);
        rp.put("h.1.attn.c_attn", 2); // never reached for h.1: "c_attn" comes first, as in PEFT
        rp.put("h\\.2\\.mlp\\..*", 16);
        LoraConfig c = cfg().r(8).rankPattern(rp).alphaPattern(Map.of("attn.c_proj", 32)).build();
        assertEquals(4, TargetMatcher.rank(c, "transformer.h.1.attn.c_attn"));
        assertEquals(16, TargetMatcher.rank(c, "transformer.h.2.mlp.c_fc"));
        assertEquals(8, TargetMatcher.rank(c, "transformer.h.1.mlp.c_fc"));
        assertEquals(8, TargetMatcher.rank(c, "transformer.h.0.attn.xc_attn"));
        assertEquals(32.0, TargetMatcher.alpha(c, "transformer.h.0.attn.c_proj"));
        assertEquals(8.0, TargetMatcher.alpha(c, "transformer.h.0.mlp.c_proj"));
        assertNull(TargetMatcher.patternKey(List.of("attn"), "transformer.h.0.attn.c_attn"));
    }
}
