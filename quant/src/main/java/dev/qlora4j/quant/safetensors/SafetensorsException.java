package dev.qlora4j.quant.safetensors;

import java.nio.file.Path;

/** Invalid or unreadable tensor file; the message names the file and, where it applies, the tensor. */
public class SafetensorsException extends RuntimeException {
    public SafetensorsException(String message) {
        super(message);
    }

    public SafetensorsException(String message, Throwable cause) {
        super(message, cause);
    }

    /** {@code "<file>: <problem>"}. */
    public static SafetensorsException inFile(Path file, String problem) {
        return new SafetensorsException(file + ": " + problem);
    }

    /** {@code "<file>: tensor '<name>': <problem>"}. */
    public static SafetensorsException forTensor(Path file, String tensor, String problem) {
        return new SafetensorsException(file + ": tensor '" + tensor + "': " + problem);
    }
}
