package dev.qlora4j.quant.safetensors;

import java.nio.file.Files;
import java.nio.file.Path;

/** Opens the safetensors weights of a model directory or a given file. */
public final class TensorStores {

    public static final String SINGLE_FILE = "model.safetensors";

    private TensorStores() {
    }

    /**
     * {@code dirOrFile} as a tensor store: a directory's {@value #SINGLE_FILE}, else its
     * {@value ShardedSafetensors#INDEX_FILE}; a file ending in {@code .index.json} as a sharded index; any other file as
     * one safetensors file.
     */
    public static TensorStore openSafetensors(Path dirOrFile) {
        if (Files.isDirectory(dirOrFile)) {
            Path single = dirOrFile.resolve(SINGLE_FILE);
            if (Files.isRegularFile(single)) return SafetensorsFile.open(single);
            Path index = dirOrFile.resolve(ShardedSafetensors.INDEX_FILE);
            if (Files.isRegularFile(index)) return ShardedSafetensors.open(index);
            String legacy = Files.isRegularFile(dirOrFile.resolve("pytorch_model.bin"))
                    ? " (it has pytorch_model.bin, a PyTorch pickle: not a safetensors file)" : "";
            throw SafetensorsException.inFile(dirOrFile, "directory holds neither " + SINGLE_FILE + " nor "
                    + ShardedSafetensors.INDEX_FILE + legacy);
        }
        if (!Files.exists(dirOrFile)) throw SafetensorsException.inFile(dirOrFile, "no such file or directory");
        if (dirOrFile.getFileName().toString().endsWith(".index.json")) return ShardedSafetensors.open(dirOrFile);
        return SafetensorsFile.open(dirOrFile);
    }
}
