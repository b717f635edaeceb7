package dev.qlora4j.runtime.checkpoint;

import dev.qlora4j.quant.safetensors.SafetensorsException;

/**
 * A pickle asked for something a state_dict never needs (a global outside the allowlist, an object-building opcode):
 * refused before anything is called. The message names the file and the offending global or opcode.
 */
public final class UnsafePickleException extends SafetensorsException {
    public UnsafePickleException(String message) {
        super(message);
    }
}
