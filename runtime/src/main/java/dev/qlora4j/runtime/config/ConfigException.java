package dev.qlora4j.runtime.config;

/** An invalid or unreadable config file; the message names the file and, where it applies, the field. */
public final class ConfigException extends RuntimeException {
    public ConfigException(String message) {
        super(message);
    }

    public ConfigException(String message, Throwable cause) {
        super(message, cause);
    }
}
