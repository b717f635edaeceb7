package dev.qlora4j.lora.adapter;

import dev.qlora4j.runtime.config.PythonJson;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.qlora4j.quant.safetensors.DType;
import dev.qlora4j.quant.safetensors.FloatTensorCodec;
import dev.qlora4j.quant.safetensors.SafetensorsWriter;
import dev.qlora4j.quant.weight.DenseWeight;
import dev.qlora4j.quant.weight.WeightFormat;
import dev.qlora4j.runtime.checkpoint.HfModelDir;
import dev.qlora4j.runtime.load.LoadedModel;
import dev.qlora4j.runtime.model.Architecture;
import dev.qlora4j.runtime.model.BlockWeights;
import dev.qlora4j.runtime.model.DecoderWeights;
import dev.qlora4j.runtime.model.LayerNormParams;
import dev.qlora4j.runtime.model.Linear;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Writes a complete Hugging Face checkpoint of a base model with its LoRA adapter merged (PEFT's
 * {@code merge_and_unload()} then transformers' {@code save_pretrained}): {@code config.json} (source config,
 * {@code torch_dtype} set, {@code quantization_config} dropped), {@code model.safetensors} with transformers' names
 * ({@code transformer.*}; GPT-2's Conv1D weights back in {@code [in, out]}; the tied LM head not stored) in F32, F16
 * or BF16, and the tokenizer and generation files copied. Quantized bases are dequantized. Atomic: built in a hidden
 * sibling directory and renamed into place.
 */
public final class MergedCheckpointWriter {

    static final List<String> COPIED_FILES = List.of("generation_config.json", "tokenizer.json", "tokenizer_config.json",
            "special_tokens_map.json", "added_tokens.json", "vocab.json", "merges.txt", "tokenizer.model");
    private static final ObjectMapper JSON = new ObjectMapper();

    private MergedCheckpointWriter() {
    }

    /**
     * @param lora      the adapter to merge (attached to {@code base.model()}), or null to re-save the base as is
     * @param dtype     F32, F16 or BF16
     * @param overwrite replace an existing {@code out} that holds a config.json (or is empty)
     */
    public static void write(LoadedModel base, LoraModel lora, Path out, WeightFormat dtype, boolean overwrite) {
        if (dtype.isQuantized()) throw new IllegalArgumentException("merged checkpoints are F32, F16 or BF16, not " + dtype);
        if (lora != null && lora.model() != base.model()) {
            throw new IllegalArgumentException("the adapter is attached to a different model");
        }
        Path target = out.toAbsolutePath().normalize();
        Path source = base.dir().dir().toAbsolutePath().normalize();
        if (target.equals(source)) throw new AdapterException(target + ": the output directory is the base model's");
        if (Files.exists(target)) {
            if (!Files.isDirectory(target)) throw new AdapterException(target + ": exists and is not a directory");
            if (!overwrite) throw new AdapterException(target + ": exists (pass overwrite to replace it)");
            if (!Files.isRegularFile(target.resolve(HfModelDir.CONFIG)) && !isEmpty(target)) {
                throw new AdapterException(target + ": exists and is not a model directory; refusing to replace it");
            }
        }
        Path parent = target.getParent();
        if (parent == null) throw new AdapterException(target + ": cannot write to a file-system root");
        Path tmp = parent.resolve("." + target.getFileName() + ".tmp-" + Long.toHexString(ThreadLocalRandom.current().nextLong()));
        try {
            Files.createDirectories(parent);
            Files.createDirectory(tmp);
            writeFiles(base.model().weights(), lora, source, tmp, dtype);
            if (Files.exists(target)) {
                Path old = parent.resolve("." + target.getFileName() + ".old-" + Long.toHexString(ThreadLocalRandom.current().nextLong()));
                Files.move(target, old, StandardCopyOption.ATOMIC_MOVE);
                try {
                    Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
                } catch (IOException e) {
                    Files.move(old, target, StandardCopyOption.ATOMIC_MOVE);
                    throw e;
                }
                AdapterWriter.deleteTree(old, new IOException("cleanup"));
            } else {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
            }
        } catch (IOException | RuntimeException e) {
            AdapterWriter.deleteTree(tmp, e);
            if (e instanceof RuntimeException re) throw re;
            throw new AdapterException(target + ": cannot write the merged checkpoint: " + e, e);
        }
    }

    /**
     * Writes the checkpoint's files ({@code model.safetensors}, {@code config.json}, tokenizer and generation files
     * copied from {@code sourceDir}) into the existing directory {@code dir}, each file atomically (temporary file,
     * then rename); files of {@code dir} with other names are left alone. Used for a full model's checkpoints and
     * final output, whose directory also holds the run's metrics.
     *
     * @param w         the weights to write (e.g. a full fine-tune's live weights)
     * @param lora      an adapter attached to the model of {@code w} to merge on the way, or null
     * @param sourceDir the directory {@code config.json} and the tokenizer files come from
     */
    public static void writeFiles(DecoderWeights w, LoraModel lora, Path sourceDir, Path dir, WeightFormat dtype)
            throws IOException {
        if (dtype.isQuantized()) throw new IllegalArgumentException("checkpoints are F32, F16 or BF16, not " + dtype);
        try (Arena arena = Arena.ofConfined()) {
            weights(w, lora, dtype, arena).write(dir.resolve(HfModelDir.SAFETENSORS));
        }
        config(sourceDir.resolve(HfModelDir.CONFIG), dir.resolve(HfModelDir.CONFIG), dtype);
        for (String f : COPIED_FILES) {
            Path src = sourceDir.resolve(f), dst = dir.resolve(f);
            if (!Files.isRegularFile(src) || src.toAbsolutePath().normalize().equals(dst.toAbsolutePath().normalize())) {
                continue;
            }
            Path tmp = dir.resolve("." + f + ".tmp-" + Long.toHexString(ThreadLocalRandom.current().nextLong()));
            Files.copy(src, tmp, StandardCopyOption.REPLACE_EXISTING);
            Files.move(tmp, dst, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    private static SafetensorsWriter weights(DecoderWeights w, LoraModel lora, WeightFormat fmt, Arena arena) {
        boolean gpt2 = w.spec().arch() == Architecture.GPT2;
        DType dt = dtypeOf(fmt);
        Map<String, LoraHook> hooks = new HashMap<>();
        if (lora != null && !lora.merged() && lora.enabled()) for (LoraHook h : lora.hooks()) hooks.put(h.path(), h);
        if (!hooks.isEmpty() && lora.model().weights() != w) {
            throw new IllegalArgumentException("the adapter is attached to a different model");
        }
        SafetensorsWriter st = new SafetensorsWriter().metadata("format", "pt");
        String p = HfModelDir.PREFIX;
        dense(st, p + (gpt2 ? "wte.weight" : "word_embeddings.weight"), w.wte(), fmt, arena);
        if (w.wpe() != null) dense(st, p + "wpe.weight", w.wpe(), fmt, arena);
        if (w.embLn() != null) ln(st, p + "word_embeddings_layernorm", w.embLn(), dt);
        for (int i = 0; i < w.blocks().length; i++) {
            BlockWeights b = w.blocks()[i];
            String h = p + "h." + i + ".";
            ln(st, h + (gpt2 ? "ln_1" : "input_layernorm"), b.ln1(), dt);
            ln(st, h + (gpt2 ? "ln_2" : "post_attention_layernorm"), b.ln2(), dt);
            for (Linear l : List.of(b.qkv(), b.attnProj(), b.fc(), b.mlpProj())) {
                LoraHook hook = hooks.get(l.path());
                DenseWeight m = Merger.mergedDense(l.weight(), hook, fmt, gpt2, arena); // GPT-2: back to Conv1D [in, out]
                st.add(l.path() + ".weight", dt, new long[]{m.rows(), m.cols()}, m.data());
                if (l.bias() != null) st.add(l.path() + ".bias", dt, new long[]{l.bias().length}, l.bias());
            }
        }
        ln(st, p + "ln_f", w.lnF(), dt);
        return st;
    }

    private static void dense(SafetensorsWriter st, String name, DenseWeight d, WeightFormat fmt, Arena arena) {
        DenseWeight out = d.format() == fmt ? d : Merger.mergedDense(d, null, fmt, false, arena);
        st.add(name, dtypeOf(fmt), new long[]{out.rows(), out.cols()}, out.data());
    }

    private static void ln(SafetensorsWriter st, String prefix, LayerNormParams ln, DType dt) {
        st.add(prefix + ".weight", dt, new long[]{ln.gamma().length}, ln.gamma());
        st.add(prefix + ".bias", dt, new long[]{ln.beta().length}, ln.beta());
    }

    private static void config(Path src, Path dst, WeightFormat fmt) throws IOException {
        if (!Files.isRegularFile(src)) throw new AdapterException(src + ": missing; cannot write the model's config");
        JsonNode cfg = JSON.readTree(src.toFile());
        if (!(cfg instanceof ObjectNode o)) throw new AdapterException(src + ": not a JSON object");
        o.remove("quantization_config");
        o.put("torch_dtype", switch (fmt) {
            case F32 -> "float32";
            case F16 -> "float16";
            case BF16 -> "bfloat16";
            default -> throw new AssertionError(fmt);
        });
        Path tmp = dst.resolveSibling("." + dst.getFileName() + ".tmp-" + Long.toHexString(ThreadLocalRandom.current().nextLong()));
        Files.writeString(tmp, PythonJson.dumps(o) + "\n");
        Files.move(tmp, dst, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    static DType dtypeOf(WeightFormat f) {
        return switch (f) {
            case F32 -> DType.F32;
            case F16 -> DType.F16;
            case BF16 -> DType.BF16;
            default -> throw new IllegalArgumentException("not a dense format: " + f);
        };
    }

    /** Parses {@code f32|f16|bf16} (also float32/float16/bfloat16). */
    public static WeightFormat parseDtype(String s) {
        return switch (s.toLowerCase(Locale.ROOT)) {
            case "f32", "float32", "fp32" -> WeightFormat.F32;
            case "f16", "float16", "fp16" -> WeightFormat.F16;
            case "bf16", "bfloat16" -> WeightFormat.BF16;
            default -> throw new IllegalArgumentException("--dtype must be f32, f16 or bf16; got '" + s + "'");
        };
    }

    private static boolean isEmpty(Path dir) {
        try (var s = Files.list(dir)) {
            return s.findAny().isEmpty();
        } catch (IOException e) {
            return false;
        }
    }
}
