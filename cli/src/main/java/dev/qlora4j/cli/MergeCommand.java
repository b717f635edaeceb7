package dev.qlora4j.cli;

import dev.qlora4j.lora.adapter.AdapterException;
import dev.qlora4j.lora.adapter.LoraModel;
import dev.qlora4j.lora.adapter.MergedCheckpointWriter;
import dev.qlora4j.quant.weight.WeightFormat;
import dev.qlora4j.runtime.load.LoadedModel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/** {@code qlora merge}: fold a LoRA adapter into its base and write a complete Hugging Face checkpoint. */
@Command(name = "merge", mixinStandardHelpOptions = true, usageHelpAutoWidth = true,
        description = {"Merge a PEFT LoRA adapter into its base model (W + s·B·A, as PEFT's merge_and_unload) and write "
                + "a complete Hugging Face model directory (config.json, model.safetensors, tokenizer files) that "
                + "qlora and transformers load without the adapter. Quantized bases are dequantized. Without "
                + "--adapter, re-saves the model in --dtype."})
final class MergeCommand extends Subcommand {
    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--adapter", paramLabel = "DIR",
            description = "The PEFT adapter directory to merge. Without it, the model is re-saved as is in --dtype "
                    + "(e.g. a full fine-tune's F32 checkpoint as BF16).")
    Path adapter;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Where to write the merged model.")
    Path out;

    @Option(names = "--dtype", paramLabel = "TYPE", defaultValue = "f32",
            description = "Weight dtype of the merged checkpoint: f32, f16 or bf16 (default f32).")
    String dtype;

    @Option(names = "--force", description = "Replace an existing model directory at --out.")
    boolean force;

    @Override
    int run() {
        WeightFormat fmt;
        try {
            fmt = MergedCheckpointWriter.parseDtype(dtype);
        } catch (IllegalArgumentException e) {
            throw new CliError(e.getMessage());
        }
        if (Files.exists(out) && !force) {
            throw new CliError("--out " + out + ": already exists (pass --force to replace a model directory)");
        }
        try (LoadedModel lm = modelOptions.load()) {
            LoraModel lora = adapter == null ? null : ModelOptions.loadAdapter(lm, adapter);
            long t0 = System.nanoTime();
            try {
                MergedCheckpointWriter.write(lm, lora, out, fmt, force);
            } catch (AdapterException e) {
                throw new CliError("--out " + e.getMessage(), e);
            }
            long bytes = 0;
            try (var s = Files.list(out)) {
                for (Path p : s.toList()) bytes += Files.size(p);
            } catch (java.io.IOException e) {
                bytes = -1;
            }
            String what = lora == null ? "re-saved " + modelOptions.model + " as " + out
                    : String.format(Locale.ROOT, "merged %d LoRA modules (r=%d)%s of %s into %s", lora.hooks().size(),
                    lora.config().r(), lora.modulesToSave().isEmpty() ? ""
                            : " and " + lora.modulesToSave().paths().size() + " trained LayerNorms (modules_to_save "
                            + String.join(",", lora.config().modulesToSave()) + ")", adapter, out);
            out().printf(Locale.ROOT, "%s: %s, %s, %.1f s%n", what, dtype.toLowerCase(Locale.ROOT),
                    bytes < 0 ? "?" : Units.mib(bytes), (System.nanoTime() - t0) / 1e9);
            out().flush();
        }
        return QloraCommand.EXIT_OK;
    }
}
