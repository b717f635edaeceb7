package dev.qlora4j.lora.adapter;

import com.fasterxml.jackson.databind.JsonNode;
import dev.qlora4j.runtime.model.Architecture;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * PEFT's {@code LoraConfig} (the fields qlora4j acts on; everything else in an {@code adapter_config.json} is kept
 * verbatim in {@link #extras} so a read → write round trip loses nothing). Defaults are PEFT's: r=8, lora_alpha=8,
 * dropout 0.0, bias none, init_lora_weights true, targets chosen per architecture.
 *
 * @param loraAlpha          an {@link Integer} or a {@link Double}, written back as given ({@code 16} vs {@code 16.0})
 * @param targetModules      null: PEFT's default for the architecture ({@link #defaultTargets})
 * @param excludeModules     null or names/regex of modules to skip
 * @param layersToTransform  null or layer indices (only with a list of target names)
 * @param layersPattern      null or the name(s) of the layer list in the module path ({@code h})
 * @param initLoraWeights    {@code "true"} (A kaiming-uniform, B zero), {@code "gaussian"} (A ~ N(0, (1/r)²), B zero),
 *                           {@code "false"} (A and B as nn.Linear initializes them, so B ≠ 0), or another PEFT init
 *                           name (pissa, olora, loftq, ...: accepted when loading trained weights, not to initialize)
 * @param rankPattern        pattern → r, tried in order (PEFT's {@code get_pattern_key})
 * @param alphaPattern       pattern → alpha (Integer or Double), tried in order
 * @param inferenceMode      PEFT writes {@code true} into saved adapters
 * @param extras             keys of adapter_config.json qlora4j does not model, kept as read (written back sorted with
 *                           the rest)
 */
public record LoraConfig(int r, Number loraAlpha, double loraDropout, TargetModules targetModules,
                         TargetModules excludeModules, List<Integer> layersToTransform, List<String> layersPattern,
                         Bias bias, boolean useRslora, String initLoraWeights, Map<String, Integer> rankPattern,
                         Map<String, Number> alphaPattern, boolean fanInFanOut, String taskType, String peftType,
                         String baseModelNameOrPath, String revision, boolean inferenceMode,
                         List<String> modulesToSave, boolean useDora, boolean loraBias, Map<String, JsonNode> extras) {

    /** PEFT's {@code bias}: which biases train (and are saved) along with the adapter. */
    public enum Bias {
        NONE("none"), ALL("all"), LORA_ONLY("lora_only");

        public final String json;

        Bias(String json) {
            this.json = json;
        }

        public static Bias parse(String s) {
            for (Bias b : values()) if (b.json.equals(s)) return b;
            throw new IllegalArgumentException("bias must be one of none, all, lora_only; got '" + s + "'");
        }
    }

    public LoraConfig {
        if (r <= 0) throw new IllegalArgumentException("r must be a positive integer, got " + r);
        if (loraAlpha == null) throw new IllegalArgumentException("lora_alpha is null");
        if (!(loraDropout >= 0 && loraDropout <= 1)) {
            throw new IllegalArgumentException("lora_dropout must be in [0, 1], got " + loraDropout);
        }
        if (bias == null) bias = Bias.NONE;
        if (initLoraWeights == null) initLoraWeights = "true";
        if (peftType == null) peftType = "LORA";
        if (!peftType.equals("LORA")) {
            throw new IllegalArgumentException("peft_type is '" + peftType + "'; this reader handles LORA adapters");
        }
        if (targetModules instanceof TargetModules.Regex && layersToTransform != null) {
            throw new IllegalArgumentException("`layers_to_transform` cannot be used when `target_modules` is a str.");
        }
        if (targetModules instanceof TargetModules.Regex && layersPattern != null) {
            throw new IllegalArgumentException("`layers_pattern` cannot be used when `target_modules` is a str.");
        }
        if (layersPattern != null && !layersPattern.isEmpty() && (layersToTransform == null || layersToTransform.isEmpty())) {
            throw new IllegalArgumentException("When `layers_pattern` is specified, `layers_to_transform` must also be specified. ");
        }
        layersToTransform = layersToTransform == null ? null : List.copyOf(layersToTransform);
        layersPattern = layersPattern == null ? null : List.copyOf(layersPattern);
        modulesToSave = modulesToSave == null ? null : List.copyOf(modulesToSave);
        rankPattern = Collections.unmodifiableMap(new LinkedHashMap<>(rankPattern == null ? Map.of() : rankPattern));
        alphaPattern = Collections.unmodifiableMap(new LinkedHashMap<>(alphaPattern == null ? Map.of() : alphaPattern));
        extras = Collections.unmodifiableMap(new LinkedHashMap<>(extras == null ? Map.of() : extras));
        for (var e : rankPattern.entrySet()) {
            if (e.getValue() == null || e.getValue() <= 0) {
                throw new IllegalArgumentException("rank_pattern['" + e.getKey() + "'] must be a positive integer, got "
                        + e.getValue());
            }
        }
    }

    /** PEFT's defaults with PEFT's default targets left to the architecture. */
    public static LoraConfig defaults() {
        return builder().build();
    }

    public static Builder builder() {
        return new Builder();
    }

    public Builder toBuilder() {
        return new Builder(this);
    }

    /**
     * PEFT's {@code TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING} for the architectures qlora4j runs.
     */
    public static List<String> defaultTargets(Architecture arch) {
        return switch (arch) {
            case GPT2 -> List.of("c_attn");
            case BLOOM -> List.of("query_key_value");
        };
    }

    /** The targets in effect for {@code arch} (PEFT fills them in from the model type when none are given). */
    public TargetModules effectiveTargets(Architecture arch) {
        return targetModules != null ? targetModules : new TargetModules.Names(defaultTargets(arch));
    }

    public double alpha() {
        return loraAlpha.doubleValue();
    }

    /** {@code alpha / r}, or {@code alpha / √r} with rsLoRA. */
    public static double scaling(double alpha, int r, boolean rslora) {
        return rslora ? alpha / Math.sqrt(r) : alpha / r;
    }

    /** Mutable companion of {@link LoraConfig}, starting from PEFT's defaults. */
    public static final class Builder {
        private int r = 8;
        private Number loraAlpha = 8;
        private double loraDropout = 0.0;
        private TargetModules targetModules;
        private TargetModules excludeModules;
        private List<Integer> layersToTransform;
        private List<String> layersPattern;
        private Bias bias = Bias.NONE;
        private boolean useRslora;
        private String initLoraWeights = "true";
        private Map<String, Integer> rankPattern = new LinkedHashMap<>();
        private Map<String, Number> alphaPattern = new LinkedHashMap<>();
        private boolean fanInFanOut;
        private String taskType;
        private String baseModelNameOrPath;
        private String revision;
        private boolean inferenceMode;
        private List<String> modulesToSave;
        private boolean useDora;
        private boolean loraBias;
        private Map<String, JsonNode> extras = new LinkedHashMap<>();

        private Builder() {
        }

        private Builder(LoraConfig c) {
            r = c.r;
            loraAlpha = c.loraAlpha;
            loraDropout = c.loraDropout;
            targetModules = c.targetModules;
            excludeModules = c.excludeModules;
            layersToTransform = c.layersToTransform;
            layersPattern = c.layersPattern;
            bias = c.bias;
            useRslora = c.useRslora;
            initLoraWeights = c.initLoraWeights;
            rankPattern = new LinkedHashMap<>(c.rankPattern);
            alphaPattern = new LinkedHashMap<>(c.alphaPattern);
            fanInFanOut = c.fanInFanOut;
            taskType = c.taskType;
            baseModelNameOrPath = c.baseModelNameOrPath;
            revision = c.revision;
            inferenceMode = c.inferenceMode;
            modulesToSave = c.modulesToSave;
            useDora = c.useDora;
            loraBias = c.loraBias;
            extras = new LinkedHashMap<>(c.extras);
        }

        public Builder r(int v) { r = v; return this; }
        public Builder loraAlpha(Number v) { loraAlpha = v; return this; }
        public Builder loraDropout(double v) { loraDropout = v; return this; }
        public Builder targetModules(TargetModules v) { targetModules = v; return this; }
        public Builder targetModules(String... names) { targetModules = new TargetModules.Names(List.of(names)); return this; }
        public Builder excludeModules(TargetModules v) { excludeModules = v; return this; }
        public Builder layersToTransform(List<Integer> v) { layersToTransform = v; return this; }
        public Builder layersPattern(List<String> v) { layersPattern = v; return this; }
        public Builder bias(Bias v) { bias = v; return this; }
        public Builder useRslora(boolean v) { useRslora = v; return this; }
        public Builder initLoraWeights(String v) { initLoraWeights = v; return this; }
        public Builder initLoraWeights(boolean v) { initLoraWeights = Boolean.toString(v); return this; }
        public Builder rankPattern(Map<String, Integer> v) { rankPattern = new LinkedHashMap<>(v); return this; }
        public Builder alphaPattern(Map<String, ? extends Number> v) { alphaPattern = new LinkedHashMap<>(v); return this; }
        public Builder fanInFanOut(boolean v) { fanInFanOut = v; return this; }
        public Builder taskType(String v) { taskType = v; return this; }
        public Builder baseModelNameOrPath(String v) { baseModelNameOrPath = v; return this; }
        public Builder revision(String v) { revision = v; return this; }
        public Builder inferenceMode(boolean v) { inferenceMode = v; return this; }
        public Builder modulesToSave(List<String> v) { modulesToSave = v; return this; }
        public Builder useDora(boolean v) { useDora = v; return this; }
        public Builder loraBias(boolean v) { loraBias = v; return this; }
        public Builder extra(String key, JsonNode v) { extras.put(key, v); return this; }

        public LoraConfig build() {
            return new LoraConfig(r, loraAlpha, loraDropout, targetModules, excludeModules, layersToTransform,
                    layersPattern, bias, useRslora, initLoraWeights, rankPattern, alphaPattern, fanInFanOut, taskType,
                    "LORA", baseModelNameOrPath, revision, inferenceMode, modulesToSave, useDora, loraBias, extras);
        }
    }
}
