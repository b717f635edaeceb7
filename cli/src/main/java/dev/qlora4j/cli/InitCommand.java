package dev.qlora4j.cli;

import dev.qlora4j.lora.full.Gpt2Init;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/** {@code qlora init}: a freshly initialized GPT-2 checkpoint to pre-train from scratch with {@code train --full}. */
@Command(name = "init", mixinStandardHelpOptions = true, usageHelpAutoWidth = true, sortOptions = false,
        description = {"Write a new GPT-2 model with transformers' initialization (N(0, 0.02), residual projections "
                + "scaled by 1/sqrt(2·n_layer), LayerNorm 1/0, biases 0) as a Hugging Face directory: config.json, "
                + "model.safetensors (F32) and the tokenizer files of --tokenizer. Pre-train it with "
                + "`qlora train --full`."})
final class InitCommand extends Subcommand {
    @Option(names = "--tokenizer", required = true, paramLabel = "DIR",
            description = "A GPT-2 tokenizer directory (vocab.json, merges.txt; e.g. any GPT-2 model directory).")
    Path tokenizer;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Where to write the new model.")
    Path out;

    @Option(names = "--n-layer", paramLabel = "L", defaultValue = "6", description = "Transformer blocks (default 6).")
    int layers;

    @Option(names = "--n-embd", paramLabel = "C", defaultValue = "256", description = "Hidden size (default 256).")
    int embd;

    @Option(names = "--n-head", paramLabel = "H", defaultValue = "8", description = "Attention heads (default 8).")
    int heads;

    @Option(names = "--n-positions", paramLabel = "T", defaultValue = "256", description = "Context length (default 256).")
    int positions;

    @Option(names = "--dropout", paramLabel = "P", defaultValue = "0.0",
            description = "embd/attn/resid_pdrop written to config.json (default 0.0).")
    double dropout;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "1234", description = "Initialization seed (default 1234).")
    long seed;

    @Override
    int run() throws IOException {
        if (!Files.isDirectory(tokenizer)) throw new CliError("--tokenizer " + tokenizer + ": no such directory");
        if (Files.exists(out.resolve("config.json"))) {
            throw new CliError("--out " + out + ": already holds a model (config.json); choose another directory");
        }
        Gpt2Init.Shape shape;
        try {
            shape = new Gpt2Init.Shape(layers, embd, heads, positions, 50257, dropout);
        } catch (IllegalArgumentException e) {
            throw new CliError(e.getMessage());
        }
        try {
            Gpt2Init.write(out, shape, tokenizer, seed);
        } catch (IOException e) {
            throw new CliError(e.getMessage(), e);
        }
        out().printf(Locale.ROOT, "wrote a new GPT-2 (L=%d, C=%d, heads=%d, context %d, vocab 50257): %s parameters, %s%n",
                layers, embd, heads, positions, Units.count(shape.parameters()), out);
        out().flush();
        return QloraCommand.EXIT_OK;
    }
}
