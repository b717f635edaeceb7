package dev.qlora4j.runtime.checkpoint;

/** A model directory that cannot be used: missing, without config.json or weights, or with an absent tensor. */
public final class ModelDirException extends RuntimeException {
    public ModelDirException(String message) {
        super(message);
    }
}
