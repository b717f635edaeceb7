package dev.qlora4j.runtime.config;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalInt;

/**
 * Typed access to one JSON config object, with errors that name the file and the field. A field given as JSON
 * {@code null} counts as absent. Aliases: the first name present wins; two present with different values is an error.
 */
final class JsonFields {

    private static final ObjectMapper JSON = JsonMapper.builder()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION).build();

    private final JsonNode root;
    private final String source;

    private JsonFields(JsonNode root, String source) {
        this.root = root;
        this.source = source;
    }

    static JsonFields read(Path file) {
        String text;
        try {
            text = Files.readString(file);
        } catch (NoSuchFileException e) {
            throw new ConfigException(file + ": file does not exist", e);
        } catch (IOException e) {
            throw new ConfigException(file + ": cannot read (" + e + ")", e);
        }
        return parse(text, file.toString());
    }

    static JsonFields parse(String json, String source) {
        JsonNode root;
        try {
            root = JSON.readTree(json);
        } catch (JsonProcessingException e) {
            throw new ConfigException(source + ": not valid JSON: " + e.getOriginalMessage(), e);
        }
        if (root == null || !root.isObject()) throw new ConfigException(source + ": not a JSON object");
        return new JsonFields(root, source);
    }

    String source() {
        return source;
    }

    ConfigException error(String field, String problem) {
        return new ConfigException(source + ": field '" + field + "' " + problem);
    }

    /** The node of the first present name among {@code names} (primary name first), or null. */
    private JsonNode node(String... names) {
        JsonNode found = null;
        String foundName = null;
        for (String n : names) {
            JsonNode v = root.get(n);
            if (v == null || v.isNull()) continue;
            if (found == null) {
                found = v;
                foundName = n;
            } else if (!found.equals(v)) {
                throw new ConfigException(source + ": fields '" + foundName + "' (" + found + ") and '" + n + "' ("
                        + v + ") are aliases but disagree");
            }
        }
        return found;
    }

    boolean has(String... names) {
        return node(names) != null;
    }

    /** Error for the field known by {@code names}: {@code field 'a' (or 'b') <problem>}. */
    private ConfigException error(String[] names, String problem) {
        String aliases = names.length == 1 ? ""
                : " (or '" + String.join("', '", List.of(names).subList(1, names.length)) + "')";
        return new ConfigException(source + ": field '" + names[0] + "'" + aliases + " " + problem);
    }

    private int toInt(JsonNode v, String... names) {
        if (!v.isIntegralNumber() || !v.canConvertToInt())
            throw error(names, "must be an integer, got " + v);
        return v.intValue();
    }

    int requireInt(String... names) {
        JsonNode v = node(names);
        if (v == null) throw error(names, "is missing");
        return toInt(v, names);
    }

    int requirePositiveInt(String... names) {
        int v = requireInt(names);
        if (v <= 0) throw error(names, "must be positive, got " + v);
        return v;
    }

    int optInt(int dflt, String... names) {
        JsonNode v = node(names);
        return v == null ? dflt : toInt(v, names);
    }

    OptionalInt optInt(String... names) {
        JsonNode v = node(names);
        return v == null ? OptionalInt.empty() : OptionalInt.of(toInt(v, names));
    }

    /** An int or a list of ints (as HF allows for {@code eos_token_id}); empty when absent. */
    List<Integer> optIntList(List<Integer> dflt, String... names) {
        JsonNode v = node(names);
        if (v == null) return dflt;
        List<Integer> out = new ArrayList<>();
        if (v.isArray()) {
            for (JsonNode e : v) out.add(toInt(e, names));
        } else {
            out.add(toInt(v, names));
        }
        return List.copyOf(out);
    }

    double optDouble(double dflt, String... names) {
        JsonNode v = node(names);
        if (v == null) return dflt;
        if (!v.isNumber()) throw error(names, "must be a number, got " + v);
        double d = v.doubleValue();
        if (!Double.isFinite(d)) throw error(names, "must be finite, got " + v);
        return d;
    }

    boolean optBool(boolean dflt, String... names) {
        JsonNode v = node(names);
        if (v == null) return dflt;
        if (!v.isBoolean()) throw error(names, "must be true or false, got " + v);
        return v.booleanValue();
    }

    String optString(String dflt, String... names) {
        JsonNode v = node(names);
        if (v == null) return dflt;
        if (!v.isTextual()) throw error(names, "must be a string, got " + v);
        return v.textValue();
    }

    /** A probability-like field in [0, 1]. */
    double optUnit(double dflt, String... names) {
        double d = optDouble(dflt, names);
        if (d < 0 || d > 1) throw error(names, "must be in [0, 1], got " + d);
        return d;
    }

    /** {@code heads} (read from {@code headsField}) must divide {@code hidden}. */
    void checkDivides(int hidden, int heads, String headsField) {
        if (hidden % heads != 0) throw error(headsField, "(" + heads + ") must divide the hidden size " + hidden);
    }
}
