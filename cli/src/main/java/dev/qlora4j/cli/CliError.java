package dev.qlora4j.cli;

/**
 * A user error (a missing path, a bad flag value, an unreadable file): {@code qlora} prints its message as one line on
 * stderr and exits with {@link QloraCommand#EXIT_USER_ERROR}, with no stack trace unless {@code --verbose}.
 */
public class CliError extends RuntimeException {
    public CliError(String message) {
        super(message);
    }

    public CliError(String message, Throwable cause) {
        super(message, cause);
    }
}
