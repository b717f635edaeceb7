package dev.qlora4j.lora.adapter;

import com.fasterxml.jackson.databind.JsonNode;
import dev.qlora4j.lora.params.ParamBuffer;
import dev.qlora4j.quant.weight.StoredWeight;
import dev.qlora4j.runtime.model.Architecture;
import dev.qlora4j.runtime.model.BlockWeights;
import dev.qlora4j.runtime.model.DecoderModel;
import dev.qlora4j.runtime.model.Linear;
import dev.qlora4j.runtime.model.LinearHook;

import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * A LoRA adapter attached to a {@link DecoderModel} (PEFT's {@code LoraModel} with one adapter, "default"): one
 * {@link LoraHook} per targeted linear, all parameters in one {@link ParamBuffer} whose slices carry PEFT's
 * state-dict names ({@code base_model.model.<module path>.lora_A.weight}, {@code ...lora_B.weight}).
 *
 * <p>The model knows nothing of the adapter: hooks are added to the targeted {@link Linear}s and removed by
 * {@link #detach()}. {@link #merge()} swaps merged copies of the targeted linears into the model (the stored base
 * weights are never written) and {@link #unmerge()} swaps the originals back, restoring the base bit for bit.
 *
 * <p>{@code modules_to_save} (LayerNorm modules only): trained fp32 copies of those LayerNorms, in the same buffer,
 * named {@code base_model.model.<module path>.weight} / {@code .bias}; the model computes with them while the
 * adapter is attached and enabled (merged too, as PEFT's {@code merge_and_unload} keeps the trained copy) and with
 * the base LayerNorms otherwise ({@link ModulesToSave}). After writing into {@link #params()} directly, call
 * {@link #paramsChanged()}.
 */
public final class LoraModel implements AutoCloseable {

    /** PEFT's state-dict prefix for a causal LM ({@code PeftModelForCausalLM.base_model.model}). */
    public static final String PREFIX = "base_model.model.";

    private final DecoderModel model;
    private final LoraConfig config;
    private final ParamBuffer params;
    private final List<LoraHook> hooks;
    private final List<Linear> linears;
    private final Map<String, Integer> matchCounts;
    private final ModulesToSave saved;
    private boolean attached = true;
    private boolean enabled = true;
    private BlockWeights[] unmergedBlocks; // non-null while merged
    private Arena mergeArena;

    private LoraModel(DecoderModel model, LoraConfig config, ParamBuffer params, List<LoraHook> hooks,
                      List<Linear> linears, Map<String, Integer> matchCounts, ModulesToSave saved) {
        this.model = model;
        this.config = config;
        this.params = params;
        this.hooks = List.copyOf(hooks);
        this.linears = List.copyOf(linears);
        this.matchCounts = Collections.unmodifiableMap(new LinkedHashMap<>(matchCounts));
        this.saved = saved;
    }

    /**
     * Adds a freshly initialized adapter (PEFT's {@code get_peft_model}): A as {@code init_lora_weights} says, B = 0.
     *
     * @param seed seeds the initialization (one stream per module, in model order) and the dropout masks
     */
    public static LoraModel attach(DecoderModel model, LoraConfig config, long seed) {
        LoraModel m = build(model, config, seed);
        m.initialize(seed);
        return m;
    }

    /**
     * As {@link #attach(DecoderModel, LoraConfig, long)} on a loaded model, recording its directory as
     * {@code base_model_name_or_path} when the config names none (PEFT records {@code model.name_or_path}).
     */
    public static LoraModel attach(dev.qlora4j.runtime.load.LoadedModel loaded, LoraConfig config, long seed) {
        LoraConfig c = config.baseModelNameOrPath() != null ? config
                : config.toBuilder().baseModelNameOrPath(loaded.dir().dir().toString()).build();
        return attach(loaded.model(), c, seed);
    }

    /** Loads a PEFT adapter directory ({@code adapter_config.json} + {@code adapter_model.safetensors}) onto the model. */
    public static LoraModel load(DecoderModel model, Path adapterDir, long seed) {
        return AdapterReader.load(model, adapterDir, seed);
    }

    /** Attaches hooks for {@code config} with all parameters zero. */
    static LoraModel build(DecoderModel model, LoraConfig config, long seed) {
        checkSupported(config);
        Architecture arch = model.spec().arch();
        List<Linear> all = model.weights().linears();
        List<String> paths = new ArrayList<>();
        for (Linear l : all) paths.add(l.path());
        TargetModules targets = config.effectiveTargets(arch);
        TargetMatcher.Result match = TargetMatcher.match(config, targets, paths);
        List<String> toSave = config.modulesToSave();
        ModulesToSave.Selection saveSel = toSave == null || toSave.isEmpty() ? null
                : ModulesToSave.select(model.weights(), toSave);

        // the config as PEFT stores it after injection: targets filled in, all-linear resolved, Conv1D ⇒ fan_in_fan_out
        LoraConfig.Builder stored = config.toBuilder();
        if (targets instanceof TargetModules.AllLinear) {
            LinkedHashSet<String> leaves = new LinkedHashSet<>();
            for (String p : match.matched()) leaves.add(p.substring(p.lastIndexOf('.') + 1));
            stored.targetModules(new TargetModules.Names(List.copyOf(leaves)));
        } else {
            stored.targetModules(targets);
        }
        if (arch == Architecture.GPT2) stored.fanInFanOut(true);
        LoraConfig effective = stored.build();

        ParamBuffer.Builder pb = ParamBuffer.builder();
        List<Linear> targeted = new ArrayList<>();
        List<ParamBuffer.Slice[]> slices = new ArrayList<>();
        for (Linear l : all) {
            if (!match.matched().contains(l.path())) continue;
            int r = TargetMatcher.rank(effective, l.path());
            ParamBuffer.Slice a = pb.add(PREFIX + l.path() + ".lora_A.weight", true, r, l.in());  // (r, in)
            ParamBuffer.Slice b = pb.add(PREFIX + l.path() + ".lora_B.weight", true, l.out(), r); // (out, r)
            targeted.add(l);
            slices.add(new ParamBuffer.Slice[]{a, b});
        }
        List<ParamBuffer.Slice[]> savedSlices = saveSel == null ? null
                : ModulesToSave.addSlices(pb, saveSel, model.weights());
        ParamBuffer buf = pb.build();
        ModulesToSave saved = saveSel == null ? ModulesToSave.none()
                : ModulesToSave.of(saveSel, savedSlices, model.weights(), buf);
        List<LoraHook> hooks = new ArrayList<>();
        // one compute + scratch for all hooks: the model runs its linears one at a time
        LoraHookJobs jobs = new LoraHookJobs(model.kernels() != null ? model.kernels()
                : dev.qlora4j.quant.kernel.KernelProvider.get());
        for (int i = 0; i < targeted.size(); i++) {
            Linear l = targeted.get(i);
            int r = slices.get(i)[0].shape()[0];
            LoraHook h = new LoraHook(l.path(), l.in(), l.out(), r, TargetMatcher.alpha(effective, l.path()),
                    effective.useRslora(), effective.loraDropout(), buf, slices.get(i)[0], slices.get(i)[1], seed, i,
                    jobs);
            hooks.add(h);
        }
        for (int i = 0; i < targeted.size(); i++) targeted.get(i).addHook(hooks.get(i));
        return new LoraModel(model, effective, buf, hooks, targeted, match.perTarget(), saved);
    }

    /**
     * How many modules each {@code modules_to_save} name selects on {@code model}, without attaching anything.
     *
     * @throws AdapterException for a name that matches no module or a module other than a LayerNorm
     */
    public static Map<String, Integer> matchModulesToSave(DecoderModel model, List<String> names) {
        return ModulesToSave.select(model.weights(), names).perName();
    }

    private static void checkSupported(LoraConfig c) {
        List<String> no = new ArrayList<>();
        if (c.useDora()) no.add("use_dora=true (DoRA)");
        if (c.loraBias()) no.add("lora_bias=true");
        if (c.bias() != LoraConfig.Bias.NONE) no.add("bias='" + c.bias().json + "' (trainable base biases)");
        for (String k : List.of("target_parameters", "layer_replication", "trainable_token_indices",
                "alora_invocation_tokens", "arrow_config", "use_bdlora")) {
            JsonNode v = c.extras().get(k);
            if (v != null && !v.isNull() && !(v.isBoolean() && !v.asBoolean())) no.add(k + "=" + v);
        }
        JsonNode q = c.extras().get("use_qalora");
        if (q != null && q.asBoolean(false)) no.add("use_qalora=true");
        if (!no.isEmpty()) {
            throw new AdapterException("adapter config uses features qlora4j does not support yet: " + String.join(", ", no));
        }
    }

    /** PEFT's {@code reset_lora_parameters}, with our own RNG (torch's streams are not reproduced). */
    private void initialize(long seed) {
        String init = config.initLoraWeights();
        if (!init.equals("true") && !init.equals("false") && !init.equalsIgnoreCase("gaussian")) {
            throw new AdapterException("init_lora_weights='" + init + "' is not supported for a new adapter"
                    + " (true, false, 'gaussian')");
        }
        SplittableRandom root = new SplittableRandom(seed);
        float[] p = params.params();
        for (LoraHook h : hooks) {
            SplittableRandom rnd = root.split();
            ParamBuffer.Slice a = h.sliceA(), b = h.sliceB();
            double boundA = 1.0 / Math.sqrt(h.in()); // kaiming_uniform_(a=√5) on fan_in = in
            for (int i = a.offset(); i < a.end(); i++) {
                p[i] = init.equalsIgnoreCase("gaussian")
                        ? (float) (gaussian(rnd) / h.r())
                        : (float) ((rnd.nextDouble() * 2 - 1) * boundA);
            }
            double boundB = 1.0 / Math.sqrt(h.r()); // nn.Linear(r, out) default init, only for init=False
            for (int i = b.offset(); i < b.end(); i++) {
                p[i] = init.equals("false") ? (float) ((rnd.nextDouble() * 2 - 1) * boundB) : 0f;
            }
        }
    }

    private static double gaussian(SplittableRandom rnd) {
        double u1 = 1.0 - rnd.nextDouble(), u2 = rnd.nextDouble();
        return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    }

    // ------------------------------------------------------------------------------------------ accessors

    public DecoderModel model() {
        return model;
    }

    /** The config as it would be saved: targets filled in, {@code fan_in_fan_out} set for GPT-2's Conv1D. */
    public LoraConfig config() {
        return config;
    }

    public ParamBuffer params() {
        return params;
    }

    public List<LoraHook> hooks() {
        return hooks;
    }

    public LoraHook hook(String modulePath) {
        for (LoraHook h : hooks) if (h.path().equals(modulePath)) return h;
        throw new IllegalArgumentException("no adapter on module '" + modulePath + "'");
    }

    /** How many modules each target matched (list entry, regex, or {@code all-linear}). */
    public Map<String, Integer> matchCounts() {
        return matchCounts;
    }

    /** The trained LayerNorm copies of {@code modules_to_save} (empty without). */
    public ModulesToSave modulesToSave() {
        return saved;
    }

    /** PEFT's {@code print_trainable_parameters} numerator (LoRA factors and {@code modules_to_save} copies). */
    public long trainableParameterCount() {
        return params.size();
    }

    /** Parameters of the base model (embeddings, LayerNorms, linear weights and biases; the LM head is tied). */
    public long baseParameterCount() {
        var w = model.weights();
        long n = w.wte().elementCount() + (w.wpe() == null ? 0 : w.wpe().elementCount());
        if (w.embLn() != null) n += 2L * w.embLn().gamma().length;
        for (var b : w.blocks()) {
            n += 2L * b.ln1().gamma().length + 2L * b.ln2().gamma().length;
            for (Linear l : List.of(b.qkv(), b.attnProj(), b.fc(), b.mlpProj())) {
                n += l.weight().elementCount() + (l.bias() == null ? 0 : l.bias().length);
            }
        }
        return n + 2L * w.lnF().gamma().length;
    }

    // ------------------------------------------------------------------------------------------ modes

    public boolean enabled() {
        return enabled;
    }

    /** With adapters disabled the model computes the base model exactly (PEFT's {@code disable_adapter()}). */
    public void setEnabled(boolean enabled) {
        this.enabled = enabled;
        for (LoraHook h : hooks) h.setEnabled(enabled && unmergedBlocks == null);
        paramsChanged();
    }

    /**
     * Makes the model see the current {@link #params()}: the {@code modules_to_save} copies are mirrored into the
     * model's LayerNorms (the LoRA factors are read in place and need nothing). Call after changing the parameters
     * (an optimizer step, loading); a disabled or detached adapter leaves the base LayerNorms.
     */
    public void paramsChanged() {
        if (attached && enabled) saved.activate();
        else saved.deactivate();
    }

    /** Training mode turns LoRA dropout on. */
    public void setTraining(boolean training) {
        for (LoraHook h : hooks) h.setTraining(training);
    }

    /** Selects the dropout masks of this micro-batch (same step ⇒ same masks in forward, recompute and backward). */
    public void setStep(long step) {
        for (LoraHook h : hooks) h.setStep(step);
    }

    // ------------------------------------------------------------------------------------------ merge

    public boolean merged() {
        return unmergedBlocks != null;
    }

    /** Merges into the model's linears (quantized bases become dense F32). */
    public void merge() {
        merge(false);
    }

    /**
     * Replaces each targeted linear by a copy whose weight is {@code W + s·B·A}; hooks are then inactive.
     *
     * @param requantize quantized bases are quantized again in their own format (lossy) instead of kept dense
     */
    public void merge(boolean requantize) {
        requireAttached();
        if (merged()) throw new IllegalStateException("adapter is already merged");
        BlockWeights[] blocks = model.weights().blocks();
        BlockWeights[] saved = blocks.clone();
        Arena arena = Arena.ofShared();
        try {
            for (int i = 0; i < blocks.length; i++) {
                BlockWeights b = blocks[i];
                blocks[i] = new BlockWeights(b.ln1(), mergedLinear(b.qkv(), requantize, arena),
                        mergedLinear(b.attnProj(), requantize, arena), b.ln2(), mergedLinear(b.fc(), requantize, arena),
                        mergedLinear(b.mlpProj(), requantize, arena));
            }
        } catch (RuntimeException e) {
            System.arraycopy(saved, 0, blocks, 0, blocks.length);
            arena.close();
            throw e;
        }
        unmergedBlocks = saved;
        mergeArena = arena;
        for (LoraHook h : hooks) h.setEnabled(false);
    }

    private Linear mergedLinear(Linear l, boolean requantize, Arena arena) {
        int idx = linears.indexOf(l);
        if (idx < 0) return l;
        LoraHook h = hooks.get(idx);
        StoredWeight w = Merger.merged(l.weight(), h, requantize, arena);
        Linear m = new Linear(l.path(), w, l.bias());
        for (LinearHook other : l.hooks()) if (other != h) m.addHook(other);
        return m;
    }

    /** Puts the original linears back (bit-exact base) and re-enables the hooks. */
    public void unmerge() {
        if (!merged()) throw new IllegalStateException("adapter is not merged");
        BlockWeights[] blocks = model.weights().blocks();
        System.arraycopy(unmergedBlocks, 0, blocks, 0, blocks.length);
        unmergedBlocks = null;
        mergeArena.close();
        mergeArena = null;
        for (LoraHook h : hooks) h.setEnabled(enabled);
    }

    // ------------------------------------------------------------------------------------------ lifecycle

    /** Writes {@code adapter_config.json} and {@code adapter_model.safetensors} into {@code dir}. */
    public void save(Path dir) {
        AdapterWriter.write(this, dir);
    }

    /** Removes the hooks (unmerging first); the model is the base model again. */
    public void detach() {
        if (!attached) return;
        if (merged()) unmerge();
        for (int i = 0; i < linears.size(); i++) linears.get(i).removeHook(hooks.get(i));
        attached = false;
        saved.deactivate();
    }

    public boolean attached() {
        return attached;
    }

    private void requireAttached() {
        if (!attached) throw new IllegalStateException("adapter is detached");
    }

    @Override
    public void close() {
        detach();
    }
}
