package dev.qlora4j.lora.data;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;

/**
 * Reads the rows of one data file — whole-file documents, JSONL objects or CSV records — and hands each to a
 * {@link Sink} as a document (text mode) or a prompt/completion pair. Errors name file, line and column.
 */
final class RowReader {

    /** Receives rows; {@code where} is {@code file:line} for messages. */
    interface Sink {
        void text(String text, String where) throws IOException;

        void pair(String prompt, String completion, String where) throws IOException;
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    private RowReader() {}

    /** Reads {@code file} into {@code sink}; returns the mode the file was read in. */
    static DataSpec.Mode read(Path file, DataSpec spec, Sink sink) throws IOException {
        DataFormat format = spec.format() != null ? spec.format() : DataFormat.ofFile(file);
        if (!Files.isRegularFile(file)) throw new DataException(file + ": no such data file");
        try {
            return switch (format) {
                case TEXT -> readText(file, spec, sink);
                case JSONL -> readJsonl(file, spec, sink);
                case CSV -> readCsv(file, spec, sink);
            };
        } catch (NoSuchFileException e) {
            throw new DataException(file + ": no such data file", e);
        }
    }

    private static DataSpec.Mode readText(Path file, DataSpec spec, Sink sink) throws IOException {
        if (spec.promptColumn() != null || spec.textColumn() != null)
            throw new DataException(file + ": a plain text file has no columns; use JSONL or CSV for --text-column / --prompt-column / --completion-column");
        String text;
        try {
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (CharacterCodingException e) {
            throw new DataException(file + ": not valid UTF-8 text", e);
        }
        if (!text.isEmpty() && text.charAt(0) == '\uFEFF') text = text.substring(1);
        sink.text(text, file + ":1");
        return DataSpec.Mode.TEXT;
    }

    // ---------------------------------------------------------------- JSONL

    private static DataSpec.Mode readJsonl(Path file, DataSpec spec, Sink sink) throws IOException {
        DataSpec.Mode mode = null;
        String textKey = null, promptKey = null, completionKey = null;
        try (BufferedReader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            String line;
            long no = 0;
            while ((line = r.readLine()) != null) {
                no++;
                if (no == 1 && !line.isEmpty() && line.charAt(0) == '\uFEFF') line = line.substring(1);
                if (line.isBlank()) continue;
                JsonNode obj;
                try {
                    obj = JSON.readTree(line);
                } catch (JacksonException e) {
                    throw DataException.at(file.toString(), no, e.getLocation() == null ? 0 : e.getLocation().getColumnNr(),
                            "not valid JSON: " + e.getOriginalMessage());
                }
                if (obj == null || !obj.isObject())
                    throw DataException.at(file.toString(), no, 1, "expected a JSON object per line, got " + (obj == null ? "nothing" : obj.getNodeType().toString().toLowerCase()));
                if (mode == null) {
                    List<String> keys = new ArrayList<>();
                    obj.fieldNames().forEachRemaining(keys::add);
                    Columns c = Columns.resolve(spec, keys, file + ":" + no, "key");
                    mode = c.mode;
                    textKey = c.text;
                    promptKey = c.prompt;
                    completionKey = c.completion;
                }
                String where = file + ":" + no;
                if (mode == DataSpec.Mode.TEXT) {
                    sink.text(string(obj, textKey, where), where);
                } else {
                    sink.pair(string(obj, promptKey, where), string(obj, completionKey, where), where);
                }
            }
        } catch (CharacterCodingException e) {
            throw new DataException(file + ": not valid UTF-8 text", e);
        }
        if (mode == null) throw new DataException(file + ": empty dataset (no JSON lines)");
        return mode;
    }

    private static String string(JsonNode obj, String key, String where) throws DataException {
        JsonNode v = obj.get(key);
        if (v == null) {
            List<String> keys = new ArrayList<>();
            obj.fieldNames().forEachRemaining(keys::add);
            throw new DataException(where + ": missing key \"" + key + "\" (this line has " + list(keys) + ")");
        }
        if (!v.isTextual()) throw new DataException(where + ": key \"" + key + "\" is " + v.getNodeType().toString().toLowerCase() + ", expected a string");
        return v.textValue();
    }

    // ---------------------------------------------------------------- CSV

    private static DataSpec.Mode readCsv(Path file, DataSpec spec, Sink sink) throws IOException {
        String src = file.toString();
        try (CsvReader csv = new CsvReader(Files.newBufferedReader(file, StandardCharsets.UTF_8), src)) {
            List<String> header = csv.next();
            if (header == null) throw new DataException(src + ": empty CSV file (no header row)");
            Columns c = Columns.resolve(spec, header, src + ":" + csv.recordLine(), "column");
            int text = header.indexOf(c.text), prompt = header.indexOf(c.prompt), completion = header.indexOf(c.completion);
            long rows = 0;
            List<String> rec;
            while ((rec = csv.next()) != null) {
                String where = src + ":" + csv.recordLine();
                if (rec.size() != header.size())
                    throw new DataException(where + ": record has " + rec.size() + " fields, the header has " + header.size()
                            + " (an unquoted comma or line break inside a field?)");
                rows++;
                if (c.mode == DataSpec.Mode.TEXT) sink.text(rec.get(text), where);
                else sink.pair(rec.get(prompt), rec.get(completion), where);
            }
            if (rows == 0) throw new DataException(src + ": empty dataset (a header row and no records)");
            return c.mode;
        }
    }

    // ---------------------------------------------------------------- columns

    private record Columns(DataSpec.Mode mode, String text, String prompt, String completion) {

        static Columns resolve(DataSpec spec, Collection<String> available, String where, String noun) throws DataException {
            if (spec.promptColumn() != null) {
                need(spec.promptColumn(), available, where, noun);
                need(spec.completionColumn(), available, where, noun);
                return new Columns(DataSpec.Mode.PROMPT_COMPLETION, null, spec.promptColumn(), spec.completionColumn());
            }
            if (spec.textColumn() != null) {
                need(spec.textColumn(), available, where, noun);
                return new Columns(DataSpec.Mode.TEXT, spec.textColumn(), null, null);
            }
            if (available.contains("text")) return new Columns(DataSpec.Mode.TEXT, "text", null, null);
            if (available.contains("prompt") && available.contains("completion"))
                return new Columns(DataSpec.Mode.PROMPT_COMPLETION, null, "prompt", "completion");
            throw new DataException(where + ": no " + noun + " \"text\" and no \"prompt\" + \"completion\" " + noun + "s (available: " + list(available)
                    + "); name them with --text-column C or --prompt-column P --completion-column Q");
        }

        private static void need(String name, Collection<String> available, String where, String noun) throws DataException {
            if (!available.contains(name)) throw new DataException(where + ": no " + noun + " \"" + name + "\" (available: " + list(available) + ")");
        }
    }

    private static String list(Collection<String> names) {
        return names.isEmpty() ? "none" : String.join(", ", names);
    }
}
