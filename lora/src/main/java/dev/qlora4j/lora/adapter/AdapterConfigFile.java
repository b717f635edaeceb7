package dev.qlora4j.lora.adapter;

import dev.qlora4j.runtime.config.PythonJson;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * {@code adapter_config.json}: read as PEFT's {@code LoraConfig.from_pretrained} does (unknown keys ignored, i.e. kept
 * in {@link LoraConfig#extras}), written as {@code PeftConfigMixin.save_pretrained} does:
 * {@code json.dumps(asdict(cfg), indent=2, sort_keys=True)} with no trailing newline, every field of PEFT
 * {@value #PEFT_VERSION}'s {@code LoraConfig} present ({@code runtime_config} popped).
 */
public final class AdapterConfigFile {

    public static final String NAME = "adapter_config.json";

    /** The PEFT release whose LoraConfig field set (and {@code peft_version}) we write. */
    public static final String PEFT_VERSION = "0.19.1";

    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(DeserializationFeature.FAIL_ON_READING_DUP_TREE_KEY);
    private static final JsonNodeFactory F = JsonNodeFactory.instance;

    /** Keys of the LoraConfig record itself. */
    static final Set<String> MODELED = Set.of("r", "lora_alpha", "lora_dropout", "target_modules", "exclude_modules",
            "layers_to_transform", "layers_pattern", "bias", "use_rslora", "init_lora_weights", "rank_pattern",
            "alpha_pattern", "fan_in_fan_out", "task_type", "peft_type", "base_model_name_or_path", "revision",
            "inference_mode", "modules_to_save", "use_dora", "lora_bias");

    /** PEFT {@value #PEFT_VERSION} fields qlora4j does not act on, with their dataclass defaults. */
    static Map<String, JsonNode> unmodeledDefaults() {
        Map<String, JsonNode> m = new LinkedHashMap<>();
        m.put("alora_invocation_tokens", F.nullNode());
        m.put("arrow_config", F.nullNode());
        m.put("auto_mapping", F.nullNode());
        m.put("corda_config", F.nullNode());
        m.put("ensure_weight_tying", F.booleanNode(false));
        m.put("eva_config", F.nullNode());
        m.put("layer_replication", F.nullNode());
        m.put("loftq_config", F.objectNode());
        m.put("lora_ga_config", F.nullNode());
        m.put("megatron_config", F.nullNode());
        m.put("megatron_core", F.textNode("megatron.core"));
        m.put("peft_version", F.textNode(PEFT_VERSION));
        m.put("qalora_group_size", F.numberNode(16));
        m.put("target_parameters", F.nullNode());
        m.put("trainable_token_indices", F.nullNode());
        m.put("use_bdlora", F.nullNode());
        m.put("use_qalora", F.booleanNode(false));
        return m;
    }

    private AdapterConfigFile() {
    }

    // ------------------------------------------------------------------------------------------------ read

    public static LoraConfig read(Path file) {
        String text;
        try {
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new AdapterException(file + ": cannot read: " + e.getMessage(), e);
        }
        return parse(text, file.toString());
    }

    /** @param where the file name for error messages */
    public static LoraConfig parse(String text, String where) {
        JsonNode root;
        try {
            root = JSON.readTree(text);
        } catch (JsonProcessingException e) {
            throw new AdapterException(where + ": not valid JSON: " + e.getOriginalMessage(), e);
        }
        if (root == null || !root.isObject()) throw new AdapterException(where + ": expected a JSON object");
        try {
            return fromJson(root);
        } catch (IllegalArgumentException | ClassCastException e) {
            throw new AdapterException(where + ": " + e.getMessage(), e);
        }
    }

    static LoraConfig fromJson(JsonNode root) {
        JsonNode pt = root.get("peft_type");
        if (pt == null || !pt.isTextual()) {
            throw new IllegalArgumentException("missing \"peft_type\" (every PEFT adapter_config.json has one)");
        }
        if (!pt.asText().equals("LORA")) {
            throw new IllegalArgumentException("peft_type is \"" + pt.asText() + "\"; only LORA adapters are supported");
        }
        LoraConfig.Builder b = LoraConfig.builder();
        Map<String, JsonNode> defaults = unmodeledDefaults();
        for (var e : root.properties()) {
            String k = e.getKey();
            JsonNode v = e.getValue();
            switch (k) {
                case "r" -> b.r(intValue(k, v));
                case "lora_alpha" -> b.loraAlpha(number(k, v));
                case "lora_dropout" -> b.loraDropout(number(k, v).doubleValue());
                case "target_modules" -> b.targetModules(targets(k, v));
                case "exclude_modules" -> b.excludeModules(targets(k, v));
                case "layers_to_transform" -> b.layersToTransform(v.isNull() ? null
                        : v.isIntegralNumber() ? List.of(v.intValue()) : intList(k, v));
                case "layers_pattern" -> b.layersPattern(v.isNull() ? null
                        : v.isTextual() ? List.of(v.asText()) : stringList(k, v));
                case "bias" -> b.bias(LoraConfig.Bias.parse(text(k, v)));
                case "use_rslora" -> b.useRslora(bool(k, v));
                case "init_lora_weights" -> {
                    if (v.isBoolean()) b.initLoraWeights(v.asBoolean());
                    else b.initLoraWeights(text(k, v));
                }
                case "rank_pattern" -> b.rankPattern(v.isNull() ? Map.of() : intMap(k, v));
                case "alpha_pattern" -> b.alphaPattern(v.isNull() ? Map.of() : numberMap(k, v));
                case "fan_in_fan_out" -> b.fanInFanOut(bool(k, v));
                case "task_type" -> b.taskType(nullableText(k, v));
                case "peft_type" -> { }
                case "base_model_name_or_path" -> b.baseModelNameOrPath(nullableText(k, v));
                case "revision" -> b.revision(nullableText(k, v));
                case "inference_mode" -> b.inferenceMode(bool(k, v));
                case "modules_to_save" -> b.modulesToSave(v.isNull() ? null : stringList(k, v));
                case "use_dora" -> b.useDora(bool(k, v));
                case "lora_bias" -> b.loraBias(bool(k, v));
                case "runtime_config" -> { } // PEFT drops it on load as well
                default -> {
                    if (!v.equals(defaults.get(k))) b.extra(k, v); // defaults are written anyway
                }
            }
        }
        return b.build();
    }

    private static TargetModules targets(String k, JsonNode v) {
        if (v.isNull()) return null;
        if (v.isTextual()) return TargetModules.ofString(v.asText());
        return new TargetModules.Names(stringList(k, v));
    }

    private static int intValue(String k, JsonNode v) {
        if (!v.isIntegralNumber() || !v.canConvertToInt()) throw type(k, v, "an integer");
        return v.intValue();
    }

    private static Number number(String k, JsonNode v) {
        if (v.isIntegralNumber() && v.canConvertToInt()) return v.intValue();
        if (v.isNumber()) return v.doubleValue();
        throw type(k, v, "a number");
    }

    private static boolean bool(String k, JsonNode v) {
        if (!v.isBoolean()) throw type(k, v, "true or false");
        return v.asBoolean();
    }

    private static String text(String k, JsonNode v) {
        if (!v.isTextual()) throw type(k, v, "a string");
        return v.asText();
    }

    private static String nullableText(String k, JsonNode v) {
        return v.isNull() ? null : text(k, v);
    }

    private static List<String> stringList(String k, JsonNode v) {
        if (!v.isArray()) throw type(k, v, "a list of strings");
        List<String> out = new ArrayList<>();
        for (JsonNode e : v) out.add(text(k + "[]", e));
        return out;
    }

    private static List<Integer> intList(String k, JsonNode v) {
        if (!v.isArray()) throw type(k, v, "an integer or a list of integers");
        List<Integer> out = new ArrayList<>();
        for (JsonNode e : v) out.add(intValue(k + "[]", e));
        return out;
    }

    private static Map<String, Integer> intMap(String k, JsonNode v) {
        if (!v.isObject()) throw type(k, v, "an object of pattern → integer");
        Map<String, Integer> out = new LinkedHashMap<>();
        for (var e : v.properties()) out.put(e.getKey(), intValue(k + "['" + e.getKey() + "']", e.getValue()));
        return out;
    }

    private static Map<String, Number> numberMap(String k, JsonNode v) {
        if (!v.isObject()) throw type(k, v, "an object of pattern → number");
        Map<String, Number> out = new LinkedHashMap<>();
        for (var e : v.properties()) out.put(e.getKey(), number(k + "['" + e.getKey() + "']", e.getValue()));
        return out;
    }

    private static IllegalArgumentException type(String k, JsonNode v, String expected) {
        String shown = v.toString();
        if (shown.length() > 60) shown = shown.substring(0, 60) + "…";
        return new IllegalArgumentException("\"" + k + "\" must be " + expected + ", got " + shown);
    }

    // ----------------------------------------------------------------------------------------------- write

    /** The JSON text PEFT would write for {@code c} (no trailing newline). */
    public static String toJson(LoraConfig c) {
        return PythonJson.dumps(toTree(c));
    }

    static ObjectNode toTree(LoraConfig c) {
        ObjectNode o = F.objectNode();
        unmodeledDefaults().forEach(o::set);
        c.extras().forEach(o::set);
        o.set("alpha_pattern", numberMap(c.alphaPattern()));
        o.set("base_model_name_or_path", textOrNull(c.baseModelNameOrPath()));
        o.put("bias", c.bias().json);
        o.set("exclude_modules", targetsNode(c.excludeModules()));
        o.put("fan_in_fan_out", c.fanInFanOut());
        o.put("inference_mode", c.inferenceMode());
        switch (c.initLoraWeights()) {
            case "true" -> o.put("init_lora_weights", true);
            case "false" -> o.put("init_lora_weights", false);
            default -> o.put("init_lora_weights", c.initLoraWeights());
        }
        o.set("layers_pattern", c.layersPattern() == null ? F.nullNode() : strings(c.layersPattern()));
        if (c.layersToTransform() == null) {
            o.set("layers_to_transform", F.nullNode());
        } else {
            ArrayNode a = F.arrayNode();
            c.layersToTransform().forEach(a::add);
            o.set("layers_to_transform", a);
        }
        o.set("lora_alpha", number(c.loraAlpha()));
        o.put("lora_bias", c.loraBias());
        o.put("lora_dropout", c.loraDropout());
        o.set("modules_to_save", c.modulesToSave() == null ? F.nullNode() : strings(c.modulesToSave()));
        o.put("peft_type", c.peftType());
        o.put("r", c.r());
        ObjectNode rp = F.objectNode();
        c.rankPattern().forEach(rp::put);
        o.set("rank_pattern", rp);
        o.set("revision", textOrNull(c.revision()));
        o.set("target_modules", targetsNode(c.targetModules()));
        o.set("task_type", textOrNull(c.taskType()));
        o.put("use_dora", c.useDora());
        o.put("use_rslora", c.useRslora());
        return o;
    }

    private static JsonNode targetsNode(TargetModules t) {
        return switch (t) {
            case null -> F.nullNode();
            case TargetModules.Names n -> strings(n.names());
            case TargetModules.Regex r -> F.textNode(r.pattern());
            case TargetModules.AllLinear a -> F.textNode(TargetModules.ALL_LINEAR);
        };
    }

    private static JsonNode number(Number n) {
        return n instanceof Integer i ? F.numberNode(i) : F.numberNode(n.doubleValue());
    }

    private static ObjectNode numberMap(Map<String, Number> m) {
        ObjectNode o = F.objectNode();
        m.forEach((k, v) -> o.set(k, number(v)));
        return o;
    }

    private static ArrayNode strings(List<String> l) {
        ArrayNode a = F.arrayNode();
        l.forEach(a::add);
        return a;
    }

    private static JsonNode textOrNull(String s) {
        return s == null ? F.nullNode() : F.textNode(s);
    }
}
