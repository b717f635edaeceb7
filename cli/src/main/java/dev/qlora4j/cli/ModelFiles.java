package dev.qlora4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.qlora4j.quant.safetensors.ShardedSafetensors;
import dev.qlora4j.quant.safetensors.TensorStore;
import dev.qlora4j.quant.safetensors.TensorStores;
import dev.qlora4j.runtime.checkpoint.PytorchBinStore;
import dev.qlora4j.runtime.checkpoint.ShardedPytorchBin;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The tensor file(s) behind a path given on the command line: a safetensors file, a sharded index, a
 * {@code pytorch_model.bin}, or a model directory holding one of those (safetensors preferred, as transformers does).
 *
 * @param configLine a one-line summary of the directory's config.json, or null
 */
record ModelFiles(Path path, TensorStore store, String description, String configLine) {

    /** Opens {@code path}; {@code flag} names the option or parameter in error messages. */
    static ModelFiles open(Path path, String flag) {
        if (!Files.exists(path)) throw new CliError(flag + " " + path + ": no such file or directory");
        if (!Files.isReadable(path)) throw new CliError(flag + " " + path + ": permission denied");
        if (Files.isDirectory(path)) {
            TensorStore store;
            if (Files.isRegularFile(path.resolve(TensorStores.SINGLE_FILE))
                    || Files.isRegularFile(path.resolve(ShardedSafetensors.INDEX_FILE))) {
                store = TensorStores.openSafetensors(path);
            } else if (Files.isRegularFile(path.resolve("pytorch_model.bin"))) {
                store = PytorchBinStore.open(path.resolve("pytorch_model.bin"));
            } else if (Files.isRegularFile(path.resolve(ShardedPytorchBin.INDEX_FILE))) {
                store = ShardedPytorchBin.open(path.resolve(ShardedPytorchBin.INDEX_FILE));
            } else {
                throw new CliError(flag + " " + path + ": the directory holds no model weights ("
                        + TensorStores.SINGLE_FILE + ", " + ShardedSafetensors.INDEX_FILE + ", pytorch_model.bin or "
                        + ShardedPytorchBin.INDEX_FILE + ")");
            }
            return new ModelFiles(path, store, store.source(), configLine(path.resolve("config.json")));
        }
        String file = path.getFileName().toString();
        TensorStore store;
        if (file.equals(ShardedPytorchBin.INDEX_FILE)) store = ShardedPytorchBin.open(path);
        else if (file.endsWith(".bin") || file.endsWith(".pt") || file.endsWith(".pth")) store = PytorchBinStore.open(path);
        else store = TensorStores.openSafetensors(path);
        return new ModelFiles(path, store, store.source(), null);
    }

    /** {@code config: gpt2 · quantization_config: bitsandbytes nf4, double quant}; null when absent or unreadable. */
    static String configLine(Path config) {
        if (!Files.isRegularFile(config)) return null;
        try {
            JsonNode c = new ObjectMapper().readTree(config.toFile());
            StringBuilder sb = new StringBuilder("config: ").append(c.path("model_type").asText("?"));
            JsonNode q = c.get("quantization_config");
            if (q != null && q.isObject()) {
                sb.append(" · quantization_config: ").append(q.path("quant_method").asText("?"));
                if (q.path("load_in_4bit").asBoolean(false)) {
                    sb.append(' ').append(q.path("bnb_4bit_quant_type").asText("?"))
                            .append(q.path("bnb_4bit_use_double_quant").asBoolean(false) ? ", double quant" : "")
                            .append(", compute dtype ").append(q.path("bnb_4bit_compute_dtype").asText("?"));
                } else if (q.path("load_in_8bit").asBoolean(false)) {
                    sb.append(" int8 (LLM.int8)");
                }
            }
            return sb.toString();
        } catch (Exception e) {
            return "config: " + config + " is not readable JSON (" + Subcommand.oneLine(e.getMessage()) + ")";
        }
    }
}
