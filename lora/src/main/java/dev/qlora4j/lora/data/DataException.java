package dev.qlora4j.lora.data;

import java.io.IOException;

/**
 * Bad training data: the message names the file and, where it applies, the line and column (1-based), e.g.
 * {@code data.csv:12:7: unterminated quoted field}.
 */
public class DataException extends IOException {

    public DataException(String message) {
        super(message);
    }

    public DataException(String message, Throwable cause) {
        super(message, cause);
    }

    static DataException at(String source, long line, long column, String problem) {
        return new DataException(source + ":" + line + (column > 0 ? ":" + column : "") + ": " + problem);
    }
}
