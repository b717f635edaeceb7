package dev.qlora4j.runtime.load;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.qlora4j.quant.weight.WeightFormat;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * How to load a model's linear weights.
 *
 * @param quant       null: use them as stored (dense, or pre-quantized by {@code qlora quantize}/bitsandbytes);
 *                    NF4/FP4/INT8_ROWWISE/INT8_BLOCKWISE: quantize dense weights at load
 * @param blocksize   block size for NF4/FP4 (and blockwise int8)
 * @param doubleQuant double-quantize NF4/FP4 scales (QLoRA's default)
 * @param maxContext  positions to allow for models without a position limit (BLOOM/ALiBi); GPT-2 uses n_positions
 * @param embeddings  null: embeddings (and the tied LM head) as stored; F32/F16/BF16: converted at load
 * @param noMmap      false: weights used as stored are zero-copy slices of the mapped checkpoint (page cache, shared
 *                    between processes); true: they are copied once into private off-heap memory (llama.cpp's
 *                    {@code --no-mmap}; see {@link dev.qlora4j.quant.safetensors.PrivateCopyStore})
 */
public record LoadOptions(WeightFormat quant, int blocksize, boolean doubleQuant, int maxContext,
                          WeightFormat embeddings, boolean noMmap) {

    public LoadOptions {
        if (embeddings != null && embeddings.isQuantized()) {
            throw new IllegalArgumentException("embeddings stay unquantized (F32, F16 or BF16), not " + embeddings);
        }
    }

    public LoadOptions(WeightFormat quant, int blocksize, boolean doubleQuant, int maxContext) {
        this(quant, blocksize, doubleQuant, maxContext, null, false);
    }

    public static LoadOptions asStored() {
        return new LoadOptions(null, 64, true, 2048);
    }

    public static LoadOptions quantized(WeightFormat format) {
        return new LoadOptions(format, format == WeightFormat.INT8_BLOCKWISE ? 4096 : 64,
                format == WeightFormat.NF4 || format == WeightFormat.FP4, 2048);
    }

    public LoadOptions withEmbeddings(WeightFormat format) {
        return new LoadOptions(quant, blocksize, doubleQuant, maxContext, format, noMmap);
    }

    public LoadOptions withMaxContext(int positions) {
        return new LoadOptions(quant, blocksize, doubleQuant, positions, embeddings, noMmap);
    }

    /** {@code true}: copy the weights used as stored into private memory instead of reading the mapped file. */
    public LoadOptions withNoMmap(boolean copy) {
        return new LoadOptions(quant, blocksize, doubleQuant, maxContext, embeddings, copy);
    }

    /**
     * The embedding dtype of {@code --embedding-dtype auto} for inference: F16 when the linear weights are quantized —
     * at load ({@code o.quant()}) or already in {@code dir} ({@link #hasQuantizationConfig}) — as transformers loads
     * a 4/8-bit model's other modules unless given a dtype; null (as stored) otherwise.
     */
    public static WeightFormat autoInferenceEmbeddings(Path dir, LoadOptions o) {
        return o.quant() != null || hasQuantizationConfig(dir) ? WeightFormat.F16 : null;
    }

    /**
     * Whether {@code dir}'s config.json has a {@code quantization_config} object: what makes transformers load a
     * model through its bitsandbytes quantizer. An unreadable config is left to the loader to report.
     */
    public static boolean hasQuantizationConfig(Path dir) {
        Path config = dir.resolve("config.json");
        if (!Files.isRegularFile(config)) return false;
        try {
            return new ObjectMapper().readTree(config.toFile()).get("quantization_config") instanceof ObjectNode;
        } catch (IOException e) {
            return false;
        }
    }

    /** Parses a command-line embedding dtype: f32, f16, bf16, or as-stored. */
    public static WeightFormat parseEmbeddings(String dtype) {
        return switch (dtype.toLowerCase(java.util.Locale.ROOT)) {
            case "as-stored", "none" -> null;
            case "f32", "float32" -> WeightFormat.F32;
            case "f16", "float16" -> WeightFormat.F16;
            case "bf16", "bfloat16" -> WeightFormat.BF16;
            default -> throw new IllegalArgumentException("--embedding-dtype must be f32, f16, bf16 or as-stored; got '"
                    + dtype + "'");
        };
    }

    /** Parses a command-line value: nf4, fp4, int8 (LLM.int8 row-wise), int8-blockwise, none. */
    public static LoadOptions parse(String quant) {
        return switch (quant.toLowerCase(java.util.Locale.ROOT)) {
            case "none", "as-stored" -> asStored();
            case "nf4" -> quantized(WeightFormat.NF4);
            case "fp4" -> quantized(WeightFormat.FP4);
            case "int8" -> quantized(WeightFormat.INT8_ROWWISE);
            case "int8-blockwise" -> quantized(WeightFormat.INT8_BLOCKWISE);
            default -> throw new IllegalArgumentException("--quant must be one of nf4, fp4, int8, int8-blockwise, none;"
                    + " got '" + quant + "'");
        };
    }
}
