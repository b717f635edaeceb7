package dev.qlora4j.lora.adapter;

/** A bad adapter directory, config, tensor, or a config the model cannot take; the message names the file and key. */
public class AdapterException extends RuntimeException {
    public AdapterException(String message) {
        super(message);
    }

    public AdapterException(String message, Throwable cause) {
        super(message, cause);
    }
}
