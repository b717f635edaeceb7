package dev.qlora4j.quant.safetensors;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The JSON header of a safetensors file, checked for structure and types only: entries in header order, the
 * optional {@code __metadata__} string map. Offsets against the data buffer are checked by {@link DataBufferLayout}.
 *
 * <p>Parsed with Jackson's streaming parser (no comments, no NaN, no unquoted control characters, no trailing
 * content); duplicate keys are rejected here, at every level, so that the message can name the tensor. Fields of an
 * entry other than {@code dtype}, {@code shape}, {@code data_offsets} are ignored, as the Rust crate does.
 */
public record SafetensorsHeader(Map<String, String> metadata, List<TensorInfo> entries) {

    public static final String METADATA_KEY = "__metadata__";
    /** Largest header the Rust crate accepts. */
    public static final long MAX_HEADER_BYTES = 100_000_000L;

    private static final JsonFactory JSON = JsonFactory.builder().build();

    /** Decodes {@code bytes} as strict UTF-8 (malformed input is an error, not replaced). */
    public static String decodeUtf8(Path file, byte[] bytes) {
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes))
                    .toString();
        } catch (CharacterCodingException e) {
            throw SafetensorsException.inFile(file, "header is not valid UTF-8 (" + e + ")");
        }
    }

    /** Parses the header text of {@code file}. */
    public static SafetensorsHeader parse(Path file, String json) {
        String start = json.strip();
        if (start.isEmpty() || start.charAt(0) != '{') {
            throw SafetensorsException.inFile(file, "header is not a JSON object (starts with "
                    + (start.isEmpty() ? "nothing but whitespace" : quoteStart(start)) + ")");
        }
        try (JsonParser p = JSON.createParser(json)) {
            if (p.nextToken() != JsonToken.START_OBJECT) {
                throw SafetensorsException.inFile(file, "header is not a JSON object");
            }
            Map<String, String> metadata = Map.of();
            boolean sawMetadata = false;
            Map<String, TensorInfo> entries = new LinkedHashMap<>();
            JsonToken t;
            while ((t = p.nextToken()) == JsonToken.FIELD_NAME) {
                String key = p.currentName();
                p.nextToken();
                if (key.equals(METADATA_KEY)) {
                    if (sawMetadata) throw SafetensorsException.inFile(file, "duplicate key '__metadata__' in header");
                    sawMetadata = true;
                    metadata = parseMetadata(file, p);
                } else {
                    if (entries.containsKey(key)) {
                        throw SafetensorsException.forTensor(file, key, "duplicate tensor name in header");
                    }
                    entries.put(key, parseEntry(file, key, p));
                }
            }
            if (t != JsonToken.END_OBJECT) throw SafetensorsException.inFile(file, "header JSON object is not closed");
            if (p.nextToken() != null) {
                throw SafetensorsException.inFile(file, "header has content after its JSON object (only space padding may follow)");
            }
            return new SafetensorsHeader(metadata, List.copyOf(entries.values()));
        } catch (JsonProcessingException e) {
            throw new SafetensorsException(file + ": header is not valid JSON: " + jsonProblem(e), e);
        } catch (IOException e) {
            throw new SafetensorsException(file + ": cannot parse header: " + e, e);
        }
    }

    /** Jackson's message and location without its "[Source: ...; " preamble. */
    static String jsonProblem(JsonProcessingException e) {
        String message = e.getOriginalMessage().replaceAll("\\[Source: [^;]*; ", "[");
        return e.getLocation() == null ? message : message + " at " + e.getLocation().offsetDescription();
    }

    private static String quoteStart(String s) {
        return "'" + s.substring(0, Math.min(16, s.length())) + "'";
    }

    private static Map<String, String> parseMetadata(Path file, JsonParser p) throws IOException {
        if (p.currentToken() == JsonToken.VALUE_NULL) return Map.of();
        if (p.currentToken() != JsonToken.START_OBJECT) {
            throw SafetensorsException.inFile(file, "'__metadata__' must be an object of strings, got " + p.currentToken());
        }
        Map<String, String> map = new LinkedHashMap<>();
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String key = p.currentName();
            if (p.nextToken() != JsonToken.VALUE_STRING) {
                throw SafetensorsException.inFile(file, "'__metadata__' value of '" + key + "' must be a string, got "
                        + p.currentToken());
            }
            if (map.put(key, p.getText()) != null) {
                throw SafetensorsException.inFile(file, "duplicate key '" + key + "' in '__metadata__'");
            }
        }
        return Collections.unmodifiableMap(map);
    }

    private static TensorInfo parseEntry(Path file, String name, JsonParser p) throws IOException {
        if (p.currentToken() != JsonToken.START_OBJECT) {
            throw SafetensorsException.forTensor(file, name, "header entry must be an object, got " + p.currentToken());
        }
        DType dtype = null;
        long[] shape = null;
        long[] offsets = null;
        Set<String> seen = new HashSet<>();
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String field = p.currentName();
            if (!seen.add(field)) throw SafetensorsException.forTensor(file, name, "duplicate key '" + field + "' in entry");
            JsonToken value = p.nextToken();
            switch (field) {
                case "dtype" -> {
                    if (value != JsonToken.VALUE_STRING) throw wrongType(file, name, "dtype", "a string", value);
                    dtype = DType.byName(p.getText());
                    if (dtype == null) throw SafetensorsException.forTensor(file, name, "unknown dtype '" + p.getText() + "'");
                }
                case "shape" -> shape = readIntegers(file, name, "shape", p);
                case "data_offsets" -> {
                    offsets = readIntegers(file, name, "data_offsets", p);
                    if (offsets.length != 2) {
                        throw SafetensorsException.forTensor(file, name, "data_offsets must hold exactly 2 integers [begin, end], got "
                                + offsets.length);
                    }
                }
                default -> p.skipChildren();
            }
        }
        if (dtype == null) throw missing(file, name, "dtype");
        if (shape == null) throw missing(file, name, "shape");
        if (offsets == null) throw missing(file, name, "data_offsets");
        return new TensorInfo(name, dtype, shape, offsets[0], offsets[1]);
    }

    /** A JSON array of non-negative integers that fit a long. */
    private static long[] readIntegers(Path file, String name, String field, JsonParser p) throws IOException {
        if (p.currentToken() != JsonToken.START_ARRAY) throw wrongType(file, name, field, "an array of integers", p.currentToken());
        List<Long> values = new ArrayList<>();
        JsonToken t;
        while ((t = p.nextToken()) != JsonToken.END_ARRAY) {
            if (t != JsonToken.VALUE_NUMBER_INT) throw wrongType(file, name, field, "an array of integers", t);
            if (p.getNumberType() == JsonParser.NumberType.BIG_INTEGER) {
                throw SafetensorsException.forTensor(file, name, field + " value " + p.getText() + " is out of range");
            }
            long v = p.getLongValue();
            if (v < 0) {
                throw SafetensorsException.forTensor(file, name, field.equals("shape")
                        ? "negative dimension " + v + " in shape"
                        : "negative value " + v + " in data_offsets");
            }
            values.add(v);
        }
        long[] out = new long[values.size()];
        for (int i = 0; i < out.length; i++) out[i] = values.get(i);
        return out;
    }

    private static SafetensorsException wrongType(Path file, String name, String field, String expected, JsonToken got) {
        return SafetensorsException.forTensor(file, name, "'" + field + "' must be " + expected + ", got " + got);
    }

    private static SafetensorsException missing(Path file, String name, String field) {
        return SafetensorsException.forTensor(file, name, "header entry is missing '" + field + "'");
    }
}
