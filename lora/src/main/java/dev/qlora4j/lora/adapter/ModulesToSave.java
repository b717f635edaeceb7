package dev.qlora4j.lora.adapter;

import dev.qlora4j.lora.params.ParamBuffer;
import dev.qlora4j.runtime.model.Architecture;
import dev.qlora4j.runtime.model.DecoderBackward;
import dev.qlora4j.runtime.model.DecoderWeights;
import dev.qlora4j.runtime.model.LayerNormParams;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * PEFT's {@code modules_to_save} for LayerNorm modules: a full fp32 copy of each selected LayerNorm trains next to the
 * LoRA factors, is saved in the adapter and replaces the base module while the adapter is active (PEFT's
 * {@code ModulesToSaveWrapper}).
 *
 * <p><b>Selection</b>, as PEFT's {@code _set_trainable} (peft/utils/other.py): every module whose name in the PEFT
 * model ({@code base_model.model.<path>}) satisfies {@code key.endswith(name)} for one of the names: a plain string
 * suffix, so {@code "ln_f"} selects {@code transformer.ln_f} and {@code "layernorm"} every BLOOM LayerNorm. qlora4j
 * refuses a name that matches no module (PEFT silently ignores it) and one that matches anything but a LayerNorm.
 *
 * <p><b>Names in the adapter file</b>: PEFT's {@code get_peft_model_state_dict} (peft/utils/save_and_load.py, section
 * "ADDITIONAL TRAINING MODULES / MODULES_TO_SAVE") saves a wrapper at {@code name} as
 * {@code f"{name}.{k}"} for {@code k} in its copy's parameter names ({@code ModulesToSaveWrapper.adapter_state_dict}
 * reads {@code modules_to_save.default.<k>}), i.e. {@code base_model.model.transformer.ln_f.weight} and
 * {@code .bias}: the {@code modules_to_save.default.} part is not in the key (older PEFT reached the same key by
 * {@code key.replace("modules_to_save.", "")} and then removing {@code ".default"}).
 *
 * <p><b>In the model</b>: the model holds its LayerNorm parameters as small arrays that the forward and backward read
 * in place ({@link LayerNormParams}); while the adapter is active those arrays hold the trained copy, otherwise the
 * base values, which this class keeps ({@link #activate}, {@link #deactivate}) — the runtime needs no hook for it.
 *
 * <p><b>Gradients</b> come from the backward pass's own LayerNorm γ/β buffers
 * ({@link DecoderBackward#collectLayerNormGrads}, as a full fine-tune collects them), plus, for BLOOM's
 * {@code word_embeddings_layernorm}, {@link DecoderBackward#embeddingBackward} with no embedding gradient.
 * The slices have no weight decay (Hugging Face Trainer excludes LayerNorm weights and biases from it).
 */
public final class ModulesToSave {

    /** Where a LayerNorm sits in the model. */
    enum Site { EMBEDDING, LN1, LN2, FINAL }

    /** A module of the model as PEFT's {@code named_modules()} lists it; {@code site} null for anything but a LayerNorm. */
    record Module(String path, String type, Site site, int layer) {
    }

    /** One trained copy: the model's LayerNorm (read in place by the forward), its base values and its slices. */
    private record Copy(String path, Site site, int layer, LayerNormParams live, float[] baseGamma, float[] baseBeta,
                        ParamBuffer.Slice gamma, ParamBuffer.Slice beta) {
    }

    /**
     * The LayerNorms {@code names} select, in model order, and how many modules each name matched.
     */
    record Selection(List<Module> selected, Map<String, Integer> perName) {
    }

    private static final ModulesToSave NONE = new ModulesToSave(new Copy[0], null, Map.of());

    private final Copy[] copies;
    private final ParamBuffer params;
    private final Map<String, Integer> matchCounts;
    private final float[] dEmbGamma, dEmbBeta; // (C) BLOOM's word_embeddings_layernorm grads, or null

    private ModulesToSave(Copy[] copies, ParamBuffer params, Map<String, Integer> matchCounts) {
        this.copies = copies;
        this.params = params;
        this.matchCounts = Collections.unmodifiableMap(new LinkedHashMap<>(matchCounts));
        Copy emb = null;
        for (Copy c : copies) if (c.site == Site.EMBEDDING) emb = c;
        this.dEmbGamma = emb == null ? null : new float[emb.baseGamma.length];
        this.dEmbBeta = emb == null ? null : new float[emb.baseGamma.length];
    }

    static ModulesToSave none() {
        return NONE;
    }

    // ------------------------------------------------------------------------------------------ selection

    /**
     * The modules of a GPT-2 or BLOOM causal LM under PEFT's names ({@code base_model.model.<path>}, as
     * {@code PeftModel.named_modules()} lists them, the LoRA layers' own sub-modules left out), with their
     * transformers class names.
     */
    static List<Module> namedModules(DecoderWeights w) {
        boolean gpt2 = w.spec().arch() == Architecture.GPT2;
        List<Module> m = new ArrayList<>();
        String p = LoraModel.PREFIX;
        m.add(new Module("base_model", "LoraModel", null, -1));
        m.add(new Module("base_model.model", gpt2 ? "GPT2LMHeadModel" : "BloomForCausalLM", null, -1));
        m.add(new Module(p + "transformer", gpt2 ? "GPT2Model" : "BloomModel", null, -1));
        if (gpt2) {
            m.add(new Module(p + "transformer.wte", "Embedding", null, -1));
            m.add(new Module(p + "transformer.wpe", "Embedding", null, -1));
            m.add(new Module(p + "transformer.drop", "Dropout", null, -1));
        } else {
            m.add(new Module(p + "transformer.word_embeddings", "Embedding", null, -1));
            m.add(new Module(p + "transformer.word_embeddings_layernorm", "LayerNorm", Site.EMBEDDING, -1));
        }
        m.add(new Module(p + "transformer.h", "ModuleList", null, -1));
        for (int l = 0; l < w.blocks().length; l++) {
            String h = p + "transformer.h." + l;
            if (gpt2) {
                m.add(new Module(h, "GPT2Block", null, l));
                m.add(new Module(h + ".ln_1", "LayerNorm", Site.LN1, l));
                m.add(new Module(h + ".attn", "GPT2Attention", null, l));
                m.add(new Module(h + ".attn.c_attn", "Conv1D", null, l));
                m.add(new Module(h + ".attn.c_proj", "Conv1D", null, l));
                m.add(new Module(h + ".attn.attn_dropout", "Dropout", null, l));
                m.add(new Module(h + ".attn.resid_dropout", "Dropout", null, l));
                m.add(new Module(h + ".ln_2", "LayerNorm", Site.LN2, l));
                m.add(new Module(h + ".mlp", "GPT2MLP", null, l));
                m.add(new Module(h + ".mlp.c_fc", "Conv1D", null, l));
                m.add(new Module(h + ".mlp.c_proj", "Conv1D", null, l));
                m.add(new Module(h + ".mlp.act", "NewGELUActivation", null, l));
                m.add(new Module(h + ".mlp.dropout", "Dropout", null, l));
            } else {
                m.add(new Module(h, "BloomBlock", null, l));
                m.add(new Module(h + ".input_layernorm", "LayerNorm", Site.LN1, l));
                m.add(new Module(h + ".self_attention", "BloomAttention", null, l));
                m.add(new Module(h + ".self_attention.query_key_value", "Linear", null, l));
                m.add(new Module(h + ".self_attention.dense", "Linear", null, l));
                m.add(new Module(h + ".self_attention.attention_dropout", "Dropout", null, l));
                m.add(new Module(h + ".post_attention_layernorm", "LayerNorm", Site.LN2, l));
                m.add(new Module(h + ".mlp", "BloomMLP", null, l));
                m.add(new Module(h + ".mlp.dense_h_to_4h", "Linear", null, l));
                m.add(new Module(h + ".mlp.gelu_impl", "BloomGelu", null, l));
                m.add(new Module(h + ".mlp.dense_4h_to_h", "Linear", null, l));
            }
        }
        m.add(new Module(p + "transformer.ln_f", "LayerNorm", Site.FINAL, -1));
        m.add(new Module(p + "lm_head", "Linear", null, -1));
        return m;
    }

    /**
     * Which LayerNorms {@code names} select ({@code key.endswith(name)} over {@link #namedModules}).
     *
     * @throws AdapterException for a name that matches no module, or one that matches a module other than a LayerNorm
     */
    static Selection select(DecoderWeights w, List<String> names) {
        List<Module> all = namedModules(w);
        Map<String, Integer> per = new LinkedHashMap<>();
        List<String> unmatched = new ArrayList<>();
        for (String n : names) {
            if (n == null) throw new AdapterException("modules_to_save holds a null name");
            int count = 0;
            for (Module m : all) {
                if (!m.path().endsWith(n)) continue;
                if (m.site() == null) {
                    throw new AdapterException("modules_to_save '" + n + "' matches " + shortPath(m.path()) + " ("
                            + m.type() + "); qlora4j supports only LayerNorm modules for modules_to_save ("
                            + lnNames(w) + ")");
                }
                count++;
            }
            if (count == 0) unmatched.add(n);
            per.merge(n, count, Integer::sum);
        }
        if (!unmatched.isEmpty()) {
            throw new AdapterException("modules_to_save " + (unmatched.size() == 1 ? "'" + unmatched.getFirst() + "'"
                    + " matches" : unmatched + " match") + " no module of the base model. LayerNorm modules: "
                    + TargetMatcher.summarize(lnPaths(all)) + ". A name selects every module whose name ends with it "
                    + "(as PEFT), e.g. 'ln_f'.");
        }
        List<Module> selected = new ArrayList<>();
        for (Module m : all) {
            if (m.site() == null) continue;
            for (String n : names) {
                if (m.path().endsWith(n)) {
                    selected.add(m);
                    break;
                }
            }
        }
        return new Selection(List.copyOf(selected), per);
    }

    private static String shortPath(String peftPath) {
        return peftPath.startsWith(LoraModel.PREFIX) ? peftPath.substring(LoraModel.PREFIX.length()) : peftPath;
    }

    private static List<String> lnPaths(List<Module> all) {
        List<String> out = new ArrayList<>();
        for (Module m : all) if (m.site() != null) out.add(shortPath(m.path()));
        return out;
    }

    private static String lnNames(DecoderWeights w) {
        return w.spec().arch() == Architecture.GPT2 ? "GPT-2: ln_1, ln_2, ln_f"
                : "BLOOM: word_embeddings_layernorm, input_layernorm, post_attention_layernorm, ln_f";
    }

    // ------------------------------------------------------------------------------------------ building

    /** Adds a γ and a β slice (no weight decay) per selected LayerNorm, named as PEFT saves them. */
    static List<ParamBuffer.Slice[]> addSlices(ParamBuffer.Builder pb, Selection s, DecoderWeights w) {
        List<ParamBuffer.Slice[]> out = new ArrayList<>();
        for (Module m : s.selected()) {
            int c = live(w, m).gamma().length;
            out.add(new ParamBuffer.Slice[]{pb.add(m.path() + ".weight", false, c), pb.add(m.path() + ".bias", false, c)});
        }
        return out;
    }

    /**
     * The copies over the built buffer, initialized to the base values (PEFT deep-copies the original module).
     *
     * @param slices from {@link #addSlices}, same order as {@code s.selected()}
     */
    static ModulesToSave of(Selection s, List<ParamBuffer.Slice[]> slices, DecoderWeights w, ParamBuffer params) {
        if (s.selected().isEmpty()) return NONE;
        Copy[] copies = new Copy[s.selected().size()];
        float[] p = params.params();
        for (int i = 0; i < copies.length; i++) {
            Module m = s.selected().get(i);
            LayerNormParams live = live(w, m);
            ParamBuffer.Slice g = slices.get(i)[0], b = slices.get(i)[1];
            copies[i] = new Copy(shortPath(m.path()), m.site(), m.layer(), live, live.gamma().clone(),
                    live.beta().clone(), g, b);
            System.arraycopy(live.gamma(), 0, p, g.offset(), g.length());
            System.arraycopy(live.beta(), 0, p, b.offset(), b.length());
        }
        return new ModulesToSave(copies, params, s.perName());
    }

    private static LayerNormParams live(DecoderWeights w, Module m) {
        return switch (m.site()) {
            case EMBEDDING -> w.embLn();
            case LN1 -> w.blocks()[m.layer()].ln1();
            case LN2 -> w.blocks()[m.layer()].ln2();
            case FINAL -> w.lnF();
        };
    }

    // ------------------------------------------------------------------------------------------ accessors

    public boolean isEmpty() {
        return copies.length == 0;
    }

    /** The saved modules' paths ({@code transformer.ln_f}, ...), in model order. */
    public List<String> paths() {
        List<String> out = new ArrayList<>();
        for (Copy c : copies) out.add(c.path);
        return out;
    }

    /** How many modules each {@code modules_to_save} name selected. */
    public Map<String, Integer> matchCounts() {
        return matchCounts;
    }

    /** Trainable parameters of the copies (γ and β of each). */
    public long parameterCount() {
        long n = 0;
        for (Copy c : copies) n += 2L * c.baseGamma.length;
        return n;
    }

    /** The path of the module a slice belongs to, or null when it is not one of these copies. */
    public String moduleOf(String sliceName) {
        for (Copy c : copies) if (c.gamma.name().equals(sliceName) || c.beta.name().equals(sliceName)) return c.path;
        return null;
    }

    // ------------------------------------------------------------------------------------------ in the model

    /** The model's LayerNorms compute with the trained copies (after any change of the parameters). */
    void activate() {
        float[] p = params == null ? null : params.params();
        for (Copy c : copies) {
            System.arraycopy(p, c.gamma.offset(), c.live.gamma(), 0, c.gamma.length());
            System.arraycopy(p, c.beta.offset(), c.live.beta(), 0, c.beta.length());
        }
    }

    /** The model's LayerNorms are the base ones again, bit for bit. */
    void deactivate() {
        for (Copy c : copies) {
            System.arraycopy(c.baseGamma, 0, c.live.gamma(), 0, c.baseGamma.length);
            System.arraycopy(c.baseBeta, 0, c.live.beta(), 0, c.baseBeta.length);
        }
    }

    // ------------------------------------------------------------------------------------------ training

    /** Once, with the trainer's backward pass: it starts collecting LayerNorm γ/β gradients. */
    public void prepare(DecoderBackward backward) {
        if (copies.length > 0) backward.collectLayerNormGrads();
    }

    /** Before a step's first micro-batch: the backward's LayerNorm gradient buffers to zero. */
    public void beginStep(DecoderBackward backward) {
        if (copies.length == 0) return;
        backward.zeroLayerNormGrads();
        if (dEmbGamma != null) {
            Arrays.fill(dEmbGamma, 0f);
            Arrays.fill(dEmbBeta, 0f);
        }
    }

    /** After a micro-batch's backward: BLOOM's embedding LayerNorm gradient, when it is saved. */
    public void afterBackward(DecoderBackward backward, int[] inputs, int b, int t) {
        if (dEmbGamma != null) backward.embeddingBackward(inputs, 0, b, t, null, 0, null, 0, dEmbGamma, dEmbBeta);
    }

    /** After a step's micro-batches: the collected γ/β gradients into the copies' gradient slices. */
    public void endStep(DecoderBackward backward) {
        float[] g = params == null ? null : params.grads();
        for (Copy c : copies) {
            float[] dg, db;
            switch (c.site) {
                case EMBEDDING -> {
                    dg = dEmbGamma;
                    db = dEmbBeta;
                }
                case LN1 -> {
                    dg = backward.dLn1Gamma()[c.layer];
                    db = backward.dLn1Beta()[c.layer];
                }
                case LN2 -> {
                    dg = backward.dLn2Gamma()[c.layer];
                    db = backward.dLn2Beta()[c.layer];
                }
                default -> {
                    dg = backward.dLnFGamma();
                    db = backward.dLnFBeta();
                }
            }
            add(g, c.gamma.offset(), dg);
            add(g, c.beta.offset(), db);
        }
    }

    private static void add(float[] g, int off, float[] d) {
        for (int i = 0; i < d.length; i++) g[off + i] += d[i];
    }
}
