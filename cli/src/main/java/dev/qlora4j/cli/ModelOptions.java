package dev.qlora4j.cli;

import dev.qlora4j.quant.kernel.KernelProvider;
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

    @Option(names = "--quant", paramLabel = "TYPE", defaultValue = "none",
            description = "Quantize dense linear weights at load: nf4, fp4, int8 or none (default: as stored; a "
                    + "quantized directory is always used as stored).")
    String quant;

    @Option(names = "--max-context", paramLabel = "N", defaultValue = "2048",
            description = "Positions to allow for models without a position limit (BLOOM), default 2048.")
    int maxContext;

    LoadedModel load() {
        if (!Files.exists(model)) throw new CliError("--model " + model + ": no such directory");
        if (!Files.isDirectory(model)) throw new CliError("--model " + model + ": not a directory");
        LoadOptions o;
        try {
            o = LoadOptions.parse(quant);
        } catch (IllegalArgumentException e) {
            throw new CliError(e.getMessage());
        }
        if (maxContext < 2) throw new CliError("--max-context must be at least 2, got " + maxContext);
        o = new LoadOptions(o.quant(), o.blocksize(), o.doubleQuant(), maxContext);
        return ModelLoader.load(model, o, KernelProvider.get());
    }
}
