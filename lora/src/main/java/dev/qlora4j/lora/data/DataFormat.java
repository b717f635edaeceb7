package dev.qlora4j.lora.data;

import java.nio.file.Path;
import java.util.Locale;

/** How a data file is laid out. */
public enum DataFormat {
    /** Plain UTF-8 text; the whole file is one document. */
    TEXT,
    /** One JSON object per line: {@code {"text": ...}} or {@code {"prompt": ..., "completion": ...}}. */
    JSONL,
    /** RFC 4180 CSV with a header row and named columns. */
    CSV;

    /** {@code text}/{@code txt}, {@code jsonl}/{@code json-lines}, {@code csv} (case-insensitive). */
    public static DataFormat parse(String s) {
        return switch (s.trim().toLowerCase(Locale.ROOT)) {
            case "text", "txt" -> TEXT;
            case "jsonl", "json-lines", "ndjson" -> JSONL;
            case "csv" -> CSV;
            default -> throw new IllegalArgumentException("unknown data format '" + s + "' (text, jsonl, csv)");
        };
    }

    /** From the file name: {@code .txt .text .md .raw} (WikiText's raw files) → TEXT, {@code .jsonl .ndjson} → JSONL, {@code .csv} → CSV. */
    public static DataFormat ofFile(Path file) throws DataException {
        String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
        if (name.endsWith(".txt") || name.endsWith(".text") || name.endsWith(".md")
                || name.endsWith(".raw")) return TEXT;
        if (name.endsWith(".jsonl") || name.endsWith(".ndjson")) return JSONL;
        if (name.endsWith(".csv")) return CSV;
        throw new DataException(file + ": cannot tell the data format from the file name; pass the format (text, jsonl, csv)");
    }
}
