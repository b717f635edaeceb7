package dev.qlora4j.quant.safetensors;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Writes a safetensors header the way the Rust crate's {@code serde_json::to_string} does: compact, {@code __metadata__}
 * first (only when non-empty), entries as {@code {"dtype","shape","data_offsets"}}, strings as UTF-8 with only the quote,
 * the backslash and control characters escaped (short forms b f n r t, else a 4-digit lowercase hex escape); right-padded
 * with spaces to a multiple of 8 bytes.
 */
final class HeaderJson {

    private HeaderJson() {
    }

    static byte[] padded(Map<String, String> metadata, List<TensorInfo> entries) {
        StringBuilder sb = new StringBuilder(64 + 96 * entries.size()).append('{');
        boolean first = true;
        if (!metadata.isEmpty()) {
            sb.append("\"__metadata__\":{");
            boolean firstKey = true;
            for (Map.Entry<String, String> m : metadata.entrySet()) {
                if (!firstKey) sb.append(',');
                firstKey = false;
                string(sb, m.getKey()).append(':');
                string(sb, m.getValue());
            }
            sb.append('}');
            first = false;
        }
        for (TensorInfo e : entries) {
            if (!first) sb.append(',');
            first = false;
            string(sb, e.name()).append(":{\"dtype\":\"").append(e.dtype().name()).append("\",\"shape\":[");
            for (int i = 0; i < e.shape().length; i++) {
                if (i > 0) sb.append(',');
                sb.append(e.shape()[i]);
            }
            sb.append("],\"data_offsets\":[").append(e.begin()).append(',').append(e.end()).append("]}");
        }
        sb.append('}');
        byte[] json = sb.toString().getBytes(StandardCharsets.UTF_8);
        int padded = Math.addExact(json.length, (8 - json.length % 8) % 8);
        byte[] out = Arrays.copyOf(json, padded);
        Arrays.fill(out, json.length, padded, (byte) ' ');
        return out;
    }

    private static StringBuilder string(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\b' -> sb.append("\\b");
                case '\f' -> sb.append("\\f");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (c < 0x20) sb.append(String.format("\\u%04x", (int) c));
                    else sb.append(c);
                }
            }
        }
        return sb.append('"');
    }
}
