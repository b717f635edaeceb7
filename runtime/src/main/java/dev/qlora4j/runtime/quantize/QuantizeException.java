package dev.qlora4j.runtime.quantize;

/** The checkpoint cannot be quantized as asked; the message names the directory, file or tensor. */
public final class QuantizeException extends RuntimeException {
    public QuantizeException(String message) {
        super(message);
    }

    public QuantizeException(String message, Throwable cause) {
        super(message, cause);
    }
}
