package dev.qlora4j.runtime.checkpoint;

import dev.qlora4j.quant.safetensors.ShardedSafetensors;
import dev.qlora4j.quant.safetensors.TensorInfo;
import dev.qlora4j.quant.safetensors.TensorStore;
import dev.qlora4j.quant.safetensors.TensorStores;
import dev.qlora4j.runtime.config.GenerationConfig;
import dev.qlora4j.runtime.config.ModelConfig;

import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * A Hugging Face model directory: {@code config.json}, optional {@code generation_config.json}, the weights and the
 * tokenizer files. Weights are taken from the first of {@value #SAFETENSORS}, {@value #SAFETENSORS_INDEX},
 * {@value #PYTORCH_BIN}, {@value #PYTORCH_BIN_INDEX} that exists.
 *
 * <p>Canonical tensor names are the stored names without the {@value #PREFIX} prefix that {@code GPT2LMHeadModel} and
 * {@code BloomForCausalLM} add ({@code wte.weight}, {@code h.0.attn.c_attn.weight}, {@code word_embeddings.weight},
 * {@code lm_head.weight}), so checkpoints saved from the bare model and from the LM-head model read alike.
 */
public final class HfModelDir implements AutoCloseable {

    public static final String CONFIG = "config.json";
    public static final String SAFETENSORS = TensorStores.SINGLE_FILE;
    public static final String SAFETENSORS_INDEX = ShardedSafetensors.INDEX_FILE;
    public static final String PYTORCH_BIN = "pytorch_model.bin";
    public static final String PYTORCH_BIN_INDEX = ShardedPytorchBin.INDEX_FILE;
    public static final String TOKENIZER_JSON = "tokenizer.json";
    public static final String VOCAB_JSON = "vocab.json";
    public static final String MERGES_TXT = "merges.txt";
    /** Prefix of the base model's tensors inside the causal-LM wrapper, for both GPT-2 and BLOOM. */
    public static final String PREFIX = "transformer.";
    public static final String LM_HEAD = "lm_head.weight";

    /** GPT-2's causal-mask buffers ({@code h.N.attn.bias}, {@code h.N.attn.masked_bias}): not weights. */
    private static final Pattern MASK_BUFFER = Pattern.compile("h\\.\\d+\\.attn\\.(bias|masked_bias)");

    /** Where the weights came from. */
    public enum WeightsFormat { SAFETENSORS, SHARDED_SAFETENSORS, PYTORCH_BIN, SHARDED_PYTORCH_BIN }

    private final Path dir;
    private final ModelConfig config;
    private final GenerationConfig generationConfig;
    private final TensorStore store;
    private final WeightsFormat format;
    private final Path weightsFile;
    private final Map<String, String> storedByCanonical;

    private HfModelDir(Path dir, ModelConfig config, GenerationConfig generationConfig, TensorStore store,
                       WeightsFormat format, Path weightsFile, Map<String, String> storedByCanonical) {
        this.dir = dir;
        this.config = config;
        this.generationConfig = generationConfig;
        this.store = store;
        this.format = format;
        this.weightsFile = weightsFile;
        this.storedByCanonical = storedByCanonical;
    }

    /**
     * Opens {@code dir}: reads the configs and maps the weights. Throws {@link ModelDirException} naming the directory
     * when it, its config.json or its weights are missing; config errors come as
     * {@link dev.qlora4j.runtime.config.ConfigException}, weight-file errors as
     * {@link dev.qlora4j.quant.safetensors.SafetensorsException}.
     */
    public static HfModelDir open(Path dir) {
        if (!Files.exists(dir)) throw new ModelDirException(dir + ": model directory does not exist");
        if (!Files.isDirectory(dir)) throw new ModelDirException(dir + ": not a directory (expected a model directory"
                + " holding " + CONFIG + " and weights)");
        Path configFile = dir.resolve(CONFIG);
        if (!Files.isRegularFile(configFile))
            throw new ModelDirException(dir + ": no " + CONFIG + " in the model directory");
        ModelConfig config = ModelConfig.load(configFile);
        Path genFile = dir.resolve(GenerationConfig.FILE);
        GenerationConfig gen = Files.isRegularFile(genFile) ? GenerationConfig.load(genFile) : null;

        WeightsFormat format = null;
        Path weights = null;
        for (WeightsFormat f : WeightsFormat.values()) {
            Path p = dir.resolve(fileName(f));
            if (Files.isRegularFile(p)) {
                format = f;
                weights = p;
                break;
            }
        }
        if (format == null)
            throw new ModelDirException(dir + ": no weights found (looked for " + SAFETENSORS + ", " + SAFETENSORS_INDEX
                    + ", " + PYTORCH_BIN + ", " + PYTORCH_BIN_INDEX + ")");
        TensorStore store = switch (format) {
            case SAFETENSORS, SHARDED_SAFETENSORS -> TensorStores.openSafetensors(weights);
            case PYTORCH_BIN -> PytorchBinStore.open(weights);
            case SHARDED_PYTORCH_BIN -> ShardedPytorchBin.open(weights);
        };
        try {
            return new HfModelDir(dir, config, gen, store, format, weights, canonicalMap(store));
        } catch (RuntimeException e) {
            store.close();
            throw e;
        }
    }

    private static String fileName(WeightsFormat f) {
        return switch (f) {
            case SAFETENSORS -> SAFETENSORS;
            case SHARDED_SAFETENSORS -> SAFETENSORS_INDEX;
            case PYTORCH_BIN -> PYTORCH_BIN;
            case SHARDED_PYTORCH_BIN -> PYTORCH_BIN_INDEX;
        };
    }

    private static Map<String, String> canonicalMap(TensorStore store) {
        Map<String, String> out = new LinkedHashMap<>();
        for (String stored : store.names()) {
            String c = canonical(stored);
            String other = out.putIfAbsent(c, stored);
            if (other != null)
                throw new ModelDirException(store.source() + ": tensors '" + other + "' and '" + stored
                        + "' both stand for '" + c + "'");
        }
        return Collections.unmodifiableMap(out);
    }

    /** {@code storedName} without the {@value #PREFIX} prefix. */
    public static String canonical(String storedName) {
        return storedName.startsWith(PREFIX) ? storedName.substring(PREFIX.length()) : storedName;
    }

    public Path dir() {
        return dir;
    }

    public ModelConfig config() {
        return config;
    }

    /** {@code generation_config.json} when the directory has one. */
    public Optional<GenerationConfig> generationConfig() {
        return Optional.ofNullable(generationConfig);
    }

    /** All stored tensors under their stored names (buffers and tied heads included). */
    public TensorStore store() {
        return store;
    }

    public WeightsFormat weightsFormat() {
        return format;
    }

    /** The weights file or index that was opened. */
    public Path weightsFile() {
        return weightsFile;
    }

    /** The stored name of canonical tensor {@code name} (which may also be given with the prefix), if present. */
    public Optional<String> find(String name) {
        return Optional.ofNullable(storedByCanonical.get(canonical(name)));
    }

    public boolean has(String name) {
        return storedByCanonical.containsKey(canonical(name));
    }

    /** The stored name of canonical tensor {@code name}; throws {@link ModelDirException} naming the weights. */
    public String resolve(String name) {
        String stored = storedByCanonical.get(canonical(name));
        if (stored == null)
            throw new ModelDirException(weightsFile + ": no tensor '" + canonical(name) + "' (nor '" + PREFIX
                    + canonical(name) + "') in the " + config.modelType() + " checkpoint of " + dir);
        return stored;
    }

    public TensorInfo info(String name) {
        return store.info(resolve(name));
    }

    public MemorySegment segment(String name) {
        return store.segment(resolve(name));
    }

    public float[] readFloats(String name) {
        return store.readFloats(resolve(name));
    }

    /**
     * Canonical names of the model's weights in storage order: GPT-2's attention mask buffers are left out, and so is
     * {@value #LM_HEAD} when the config ties it to the token embedding.
     */
    public List<String> canonicalNames() {
        List<String> out = new ArrayList<>(storedByCanonical.size());
        for (String c : storedByCanonical.keySet()) {
            if (MASK_BUFFER.matcher(c).matches()) continue;
            if (c.equals(LM_HEAD) && config.tieWordEmbeddings()) continue;
            out.add(c);
        }
        return out;
    }

    /** The directory that holds the tokenizer files (the model directory itself). */
    public Path tokenizerDir() {
        return dir;
    }

    /** Whether a {@value #TOKENIZER_JSON} (fast tokenizer) is present. */
    public boolean hasTokenizerJson() {
        return Files.isRegularFile(dir.resolve(TOKENIZER_JSON));
    }

    /** Whether GPT-2-style BPE files ({@value #VOCAB_JSON} + {@value #MERGES_TXT}) are present. */
    public boolean hasBpeFiles() {
        return Files.isRegularFile(dir.resolve(VOCAB_JSON)) && Files.isRegularFile(dir.resolve(MERGES_TXT));
    }

    @Override
    public void close() {
        store.close();
    }

    @Override
    public String toString() {
        return "HfModelDir[" + dir + ", " + config.modelType() + ", " + format + " " + weightsFile.getFileName() + ", "
                + storedByCanonical.size() + " tensors]";
    }
}
