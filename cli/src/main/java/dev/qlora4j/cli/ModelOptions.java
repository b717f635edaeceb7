package dev.qlora4j.cli;

import dev.qlora4j.lora.adapter.AdapterException;
import dev.qlora4j.lora.adapter.LoraModel;
import dev.qlora4j.quant.kernel.KernelProvider;
import dev.qlora4j.quant.weight.WeightFormat;
import dev.qlora4j.runtime.load.LoadOptions;
import dev.qlora4j.runtime.load.LoadedModel;
import dev.qlora4j.runtime.load.ModelLoader;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;

/** The flags every command that runs a model shares: which directory, and how to hold its linear weights. */
final class ModelOptions {
    @Option(names = "--model", required = true, paramLabel = "DIR",
            description = "Hugging Face model directory (GPT-2 or BLOOM), plain or written by 'qlora quantize'.")
    Path model;

    @Option(names = "--quant", paramLabel = "TYPE",
            description = "Quantize dense linear weights at load: nf4, fp4, int8 or none (as stored). Default: nf4 "
                    + "for train (QLoRA), none for the other commands; a quantized directory is always used as stored.")
    String quant;

    @Option(names = "--max-context", paramLabel = "N", defaultValue = "2048",
            description = "Positions to allow for models without a position limit (BLOOM), default 2048.")
    int maxContext;

    @Option(names = "--embedding-dtype", paramLabel = "DTYPE", defaultValue = "auto",
            description = "Hold the token embedding (and the tied LM head) as f32, f16, bf16 or as-stored. Default "
                    + "auto: for generate and eval, f16 when the linear weights are quantized (--quant, or a directory "
                    + "whose config.json has a quantization_config), as transformers loads a 4/8-bit model; as stored "
                    + "otherwise, and always for train and merge (PEFT trains with them in fp32). 16 bits halve the "
                    + "bytes the LM head reads per generated token.")
    String embeddingDtype;

    @Option(names = "--no-mmap",
            description = "Copy the weights used as stored into private memory instead of reading them from the mapped "
                    + "checkpoint (as llama.cpp's --no-mmap): more RAM that processes cannot share, faster decode where "
                    + "page-cache pages stream slower than anonymous memory.")
    boolean noMmap;

    LoadedModel load() {
        return load("none");
    }

    /** The --quant value in effect, {@code defaultQuant} when the flag was not given. */
    String quantOr(String defaultQuant) {
        return quant != null ? quant : defaultQuant;
    }

    /** Loads the model, quantizing as {@code --quant} says or else as {@code defaultQuant}. */
    LoadedModel load(String defaultQuant) {
        return load(defaultQuant, null);
    }

    /**
     * As {@link #load(String)}, with a progress line on {@code progressOut} (per transformer block) when loading takes
     * more than a moment; null for none.
     */
    LoadedModel load(String defaultQuant, java.io.PrintWriter progressOut) {
        return load(defaultQuant, progressOut, false);
    }

    /**
     * As {@link #load(String, java.io.PrintWriter)}; {@code inference} (generate, eval) lets {@code --embedding-dtype
     * auto} hold the embeddings of a quantized model in f16.
     */
    LoadedModel load(String defaultQuant, java.io.PrintWriter progressOut, boolean inference) {
        String quant = quantOr(defaultQuant);
        if (!Files.exists(model)) throw new CliError("--model " + model + ": no such directory");
        if (!Files.isDirectory(model)) throw new CliError("--model " + model + ": not a directory");
        LoadOptions o;
        try {
            o = LoadOptions.parse(quant);
        } catch (IllegalArgumentException e) {
            throw new CliError(e.getMessage());
        }
        if (maxContext < 2) throw new CliError("--max-context must be at least 2, got " + maxContext);
        try {
            o = o.withMaxContext(maxContext).withEmbeddings(embeddings(o, inference)).withNoMmap(noMmap);
        } catch (IllegalArgumentException e) {
            throw new CliError(e.getMessage());
        }
        if (progressOut == null) return ModelLoader.load(model, o, KernelProvider.get());
        Progress bar = Progress.of(progressOut, "load", "blocks").quiet(2 * Progress.SECOND);
        try {
            return ModelLoader.load(model, o, KernelProvider.get(), (done, total) -> bar.update(done, total, null));
        } finally {
            bar.close();
        }
    }

    /** The embedding dtype {@code --embedding-dtype} asks for; null: as stored. */
    private WeightFormat embeddings(LoadOptions o, boolean inference) {
        if (!embeddingDtype.equalsIgnoreCase("auto")) {
            try {
                return LoadOptions.parseEmbeddings(embeddingDtype);
            } catch (IllegalArgumentException e) {
                throw new CliError("--embedding-dtype must be auto, f32, f16, bf16 or as-stored; got '" + embeddingDtype
                        + "'");
            }
        }
        return inference ? LoadOptions.autoInferenceEmbeddings(model, o) : null;
    }

    /**
     * Loads a PEFT adapter onto the model for inference ({@code --adapter DIR} of generate and eval); adapter errors
     * become one-line user errors naming the file.
     */
    static LoraModel loadAdapter(LoadedModel lm, Path adapter) {
        if (!Files.exists(adapter)) throw new CliError("--adapter " + adapter + ": no such directory");
        if (!Files.isDirectory(adapter)) throw new CliError("--adapter " + adapter + ": not a directory");
        try {
            return LoraModel.load(lm.model(), adapter, 0);
        } catch (AdapterException e) {
            String m = e.getMessage() == null ? e.toString() : e.getMessage();
            throw new CliError("--adapter " + (m.startsWith(adapter.toString()) ? m : adapter + ": " + m), e);
        }
    }
}
