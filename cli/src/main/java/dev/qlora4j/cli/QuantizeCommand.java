package dev.qlora4j.cli;

import dev.qlora4j.quant.weight.WeightFormat;
import dev.qlora4j.runtime.quantize.CheckpointQuantizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/** {@code qlora quantize}: a Hugging Face model directory → a bitsandbytes-layout quantized checkpoint. */
@Command(name = "quantize", mixinStandardHelpOptions = true, usageHelpAutoWidth = true,
        header = "Quantize a model directory to nf4, fp4 or int8 in bitsandbytes' layout.",
        description = {"Quantize the linear weights of a Hugging Face GPT-2 or BLOOM model directory and write a "
                + "checkpoint in bitsandbytes' serialized layout (as transformers + bitsandbytes save it): GPT-2 Conv1D "
                + "weights transposed to [out, in] first, embeddings, LayerNorms and biases as stored, config.json with "
                + "a quantization_config, tokenizer files copied. Prints the sizes before and after."})
final class QuantizeCommand extends Subcommand {

    enum Type {
        nf4(WeightFormat.NF4), fp4(WeightFormat.FP4), int8(WeightFormat.INT8_ROWWISE);

        final WeightFormat format;

        Type(WeightFormat format) {
            this.format = format;
        }
    }

    @Option(names = "--model", required = true, paramLabel = "DIR",
            description = "Model directory: config.json plus model.safetensors, a sharded index or pytorch_model.bin.")
    Path model;

    @Option(names = "--type", paramLabel = "TYPE", defaultValue = "nf4",
            description = "nf4 (default, QLoRA's), fp4, or int8 (LLM.int8 row-wise).")
    Type type;

    @Option(names = "--blocksize", paramLabel = "N",
            description = "Elements per absmax block for nf4/fp4: a power of two from 32 to 4096 (default 64).")
    Integer blocksize;

    @Option(names = "--no-double-quant", description = "Keep the nf4/fp4 absmax scales in fp32 (4.5 instead of ~4.127 bits/param).")
    boolean noDoubleQuant;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output directory (must not exist unless --force).")
    Path outDir;

    @Option(names = "--force", description = "Replace an existing output directory.")
    boolean force;

    @Override
    int run() {
        boolean fourBit = type != Type.int8;
        if (!fourBit && blocksize != null) throw new CliError("--blocksize applies to nf4 and fp4; int8 scales whole rows");
        if (!fourBit && noDoubleQuant) throw new CliError("--no-double-quant applies to nf4 and fp4, not int8");
        int bs = blocksize == null ? 64 : blocksize;
        if (fourBit && (bs < 32 || bs > 4096 || Integer.bitCount(bs) != 1)) {
            throw new CliError("--blocksize " + bs + ": must be a power of two from 32 to 4096");
        }
        if (!Files.exists(model)) throw new CliError("--model " + model + ": no such directory");
        if (!Files.isDirectory(model)) throw new CliError("--model " + model + ": not a directory");
        if (!Files.isRegularFile(model.resolve("config.json"))) {
            throw new CliError("--model " + model + ": no config.json (expected a Hugging Face model directory)");
        }
        if (Files.exists(outDir) && !force) {
            throw new CliError("--out " + outDir + ": already exists (choose another directory or add --force)");
        }
        if (!Files.exists(outDir) || force) checkCreatable("--out", outDir);
        var options = new CheckpointQuantizer.Options(type.format, fourBit ? bs : 0, fourBit && !noDoubleQuant);
        Progress bar = Progress.of(out(), "quantize", "tensors").quiet(2 * Progress.SECOND);
        CheckpointQuantizer.Report r;
        try { // --verbose prints a line per tensor instead
            r = CheckpointQuantizer.quantize(model, outDir, options, force, this::note,
                    verbose() ? null : (done, total) -> bar.update(done, total, null));
        } finally {
            bar.close();
        }
        print(r);
        return QloraCommand.EXIT_OK;
    }

    private void print(CheckpointQuantizer.Report r) {
        PrintWriter out = out();
        String how = switch (type) {
            case int8 -> "int8 (LLM.int8 row-wise)";
            default -> type + ", blocksize " + r.options().blocksize()
                    + (r.options().doubleQuant() ? ", double-quantized scales" : ", fp32 scales");
        };
        out.printf(Locale.ROOT, "quantized %s (%s) -> %s as %s%n", model, r.modelType(), r.output(), how);
        out.printf(Locale.ROOT, "  linear weights: %d tensors, %,d parameters%n", r.linearWeights(), r.linearParams());
        out.printf(Locale.ROOT, "    before: %s, %.2f bits/param%n", Units.mib(r.linearBytesBefore()), r.linearBitsPerParamBefore());
        out.printf(Locale.ROOT, "    after:  %s, %.3f bits/param (%.3f without the per-tensor quant_map/quant_state tables)%n",
                Units.mib(r.linearBytesAfter()), r.linearBitsPerParamAfter(), r.linearBitsPerParamWithoutTables());
        out.printf(Locale.ROOT, "  checkpoint weights:%n");
        out.printf(Locale.ROOT, "    before: %s, %d tensors%n", Units.mib(r.bytesBefore()), r.tensorsIn());
        out.printf(Locale.ROOT, "    after:  %s, %d tensors (%.1f%% of before)%n", Units.mib(r.bytesAfter()), r.tensorsOut(),
                r.bytesBefore() == 0 ? 0.0 : 100.0 * r.bytesAfter() / r.bytesBefore());
        if (!r.dropped().isEmpty()) {
            out.println("  dropped: " + r.dropped().size() + " buffers/tied tensors (" + String.join(", ",
                    r.dropped().size() > 4 ? r.dropped().subList(0, 4) : r.dropped()) + (r.dropped().size() > 4 ? ", ..." : "") + ")");
        }
        out.println("  copied:  config.json (+ quantization_config)" + (r.copiedFiles().isEmpty() ? "" : ", "
                + String.join(", ", r.copiedFiles())));
        out.flush();
    }
}
