package dev.qlora4j.lora.adapter;

import dev.qlora4j.runtime.config.PythonJson;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AdapterConfigFileTest {
    static final Path FIXTURE = Path.of("src/test/resources/adapter/peft_0.19.1_gpt2_c_attn.json");

    @Test
    void writesFixtureByteForByte() throws Exception {
        LoraConfig c = LoraConfig.builder().taskType("CAUSAL_LM").r(8).loraAlpha(16).loraDropout(0.05)
                .targetModules("c_attn").rankPattern(Map.of("h.0.attn.c_attn", 4))
                .alphaPattern(Map.of("h.1.attn.c_attn", 32)).fanInFanOut(true).baseModelNameOrPath("gpt2")
                .inferenceMode(true).build();
        assertEquals(Files.readString(FIXTURE, StandardCharsets.UTF_8), AdapterConfigFile.toJson(c));
    }

    @Test
    void fixtureRoundTripsByteForByte() throws Exception {
        String text = Files.readString(FIXTURE, StandardCharsets.UTF_8);
        LoraConfig c = AdapterConfigFile.parse(text, FIXTURE.toString());
        assertEquals(8, c.r());
        assertEquals(16, c.loraAlpha());
        assertEquals(0.05, c.loraDropout());
        assertEquals(new TargetModules.Names(List.of("c_attn")), c.targetModules());
        assertEquals(Map.of("h.0.attn.c_attn", 4), c.rankPattern());
        assertEquals("CAUSAL_LM", c.taskType());
        assertTrue(c.fanInFanOut());
        assertEquals(text, AdapterConfigFile.toJson(c));
    }

    @Test
    void defaultsArePefts() {
        LoraConfig c = LoraConfig.defaults();
        assertEquals(8, c.r());
        assertEquals(8.0, c.alpha());
        assertEquals(0.0, c.loraDropout());
        assertEquals(LoraConfig.Bias.NONE, c.bias());
        assertEquals("true", c.initLoraWeights());
        assertNull(c.targetModules());
        assertEquals(List.of("c_attn"), LoraConfig.defaultTargets(dev.qlora4j.runtime.model.Architecture.GPT2));
        assertEquals(List.of("query_key_value"), LoraConfig.defaultTargets(dev.qlora4j.runtime.model.Architecture.BLOOM));
        // every key of PEFT 0.19.1's LoraConfig, nothing else
        var keys = new java.util.TreeSet<String>();
        AdapterConfigFile.toTree(c).fieldNames().forEachRemaining(keys::add);
        assertEquals(38, keys.size(), keys.toString());
    }

    @Test
    void minimalConfigGetsDefaultsAndKeepsUnknownKeys() throws Exception {
        LoraConfig c = AdapterConfigFile.parse("{\"peft_type\": \"LORA\", \"target_modules\": \"all-linear\","
                + " \"layers_to_transform\": null, \"some_future_key\": [1, 2], \"runtime_config\": {}}", "x.json");
        assertEquals(8, c.r());
        assertInstanceOf(TargetModules.AllLinear.class, c.targetModules());
        String out = AdapterConfigFile.toJson(c);
        var tree = new ObjectMapper().readTree(out);
        assertEquals("[1,2]", tree.get("some_future_key").toString());
        assertTrue(tree.get("runtime_config") == null, "runtime_config is popped as PEFT does");
        assertEquals("all-linear", tree.get("target_modules").asText());
    }

    @Test
    void regexTargetsIntLayersAndPatternOrder() {
        LoraConfig c = AdapterConfigFile.parse("{\"peft_type\": \"LORA\", \"target_modules\": [\"c_attn\", \"c_fc\"],"
                + " \"layers_to_transform\": 1, \"layers_pattern\": \"h\","
                + " \"rank_pattern\": {\"z\": 2, \"a\": 4}, \"alpha_pattern\": {\"c_fc\": 2.5},"
                + " \"init_lora_weights\": \"gaussian\", \"lora_alpha\": 32.0}", "x.json");
        assertEquals(List.of(1), c.layersToTransform());
        assertEquals(List.of("h"), c.layersPattern());
        assertEquals(List.of("z", "a"), List.copyOf(c.rankPattern().keySet()));
        assertEquals(2.5, c.alphaPattern().get("c_fc"));
        assertEquals("gaussian", c.initLoraWeights());
        assertTrue(AdapterConfigFile.toJson(c).contains("\"lora_alpha\": 32.0,"));
        LoraConfig re = AdapterConfigFile.parse("{\"peft_type\": \"LORA\", \"target_modules\": \".*\\\\.c_(attn|fc)\"}", "y");
        assertEquals(new TargetModules.Regex(".*\\.c_(attn|fc)"), re.targetModules());
    }

    @ParameterizedTest(name = "{1}")
    @CsvSource(delimiter = '|', value = {
            "{\"peft_type\": \"LORA\", \"r\": 8,|not valid JSON",
            "[1, 2]|expected a JSON object",
            "{\"r\": 8}|missing \"peft_type\"",
            "{\"peft_type\": \"IA3\"}|only LORA adapters",
            "{\"peft_type\": \"LORA\", \"r\": \"8\"}|\"r\" must be an integer",
            "{\"peft_type\": \"LORA\", \"r\": 0}|r must be a positive integer",
            "{\"peft_type\": \"LORA\", \"bias\": \"some\"}|bias must be one of none, all, lora_only",
            "{\"peft_type\": \"LORA\", \"lora_dropout\": 1.5}|lora_dropout must be in [0, 1]",
            "{\"peft_type\": \"LORA\", \"target_modules\": \"c_.*\", \"layers_to_transform\": [0]}|cannot be used when `target_modules` is a str",
            "{\"peft_type\": \"LORA\", \"target_modules\": [\"a\", 3]}|must be a string",
            "{\"peft_type\": \"LORA\", \"rank_pattern\": {\"a\": -1}}|must be a positive integer",
            "{\"peft_type\": \"LORA\", \"r\": 4, \"r\": 8}|not valid JSON",
    })
    void badConfigsFailNamingTheFile(String json, String expected) {
        AdapterException e = assertThrows(AdapterException.class, () -> AdapterConfigFile.parse(json, "dir/adapter_config.json"));
        assertTrue(e.getMessage().startsWith("dir/adapter_config.json: "), e.getMessage());
        assertTrue(e.getMessage().contains(expected), e.getMessage());
    }

    @Test
    void pythonJsonEscapesAsEnsureAscii() {
        StringBuilder sb = new StringBuilder();
        PythonJson.string(sb, "a\"b\\c\nd\u00e9\u007f\uD83D\uDE00/");
        assertEquals("\"a\\\"b\\\\c\\nd\\u00e9\\u007f\\ud83d\\ude00/\"", sb.toString());
    }
}
