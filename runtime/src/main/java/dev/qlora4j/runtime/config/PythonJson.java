package dev.qlora4j.runtime.config;

import com.fasterxml.jackson.databind.JsonNode;
import dev.qlora4j.quant.weight.BnbLayout;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Python's {@code json.dumps(obj, indent=2, sort_keys=True)} byte for byte: keys sorted by code point, {@code ","}
 * then a newline and two spaces per level, {@code ": "} after keys, {@code ensure_ascii} escapes, Python float repr
 * ({@code 0.05}, {@code 1e-05}, {@code 16.0}), {@code {}} and {@code []} for empty containers. PEFT writes
 * adapter_config.json this way (no trailing newline); transformers writes config.json the same plus a newline.
 */
public final class PythonJson {

    private PythonJson() {
    }

    public static String dumps(JsonNode node) {
        StringBuilder sb = new StringBuilder(1024);
        write(sb, node, 0);
        return sb.toString();
    }

    private static void write(StringBuilder sb, JsonNode n, int depth) {
        if (n == null || n.isNull() || n.isMissingNode()) {
            sb.append("null");
        } else if (n.isObject()) {
            List<Map.Entry<String, JsonNode>> entries = new ArrayList<>();
            n.properties().forEach(entries::add);
            if (entries.isEmpty()) {
                sb.append("{}");
                return;
            }
            entries.sort(Map.Entry.comparingByKey(PythonJson::compareCodePoints));
            sb.append('{');
            for (int i = 0; i < entries.size(); i++) {
                if (i > 0) sb.append(',');
                newline(sb, depth + 1);
                string(sb, entries.get(i).getKey());
                sb.append(": ");
                write(sb, entries.get(i).getValue(), depth + 1);
            }
            newline(sb, depth);
            sb.append('}');
        } else if (n.isArray()) {
            if (n.isEmpty()) {
                sb.append("[]");
                return;
            }
            sb.append('[');
            for (int i = 0; i < n.size(); i++) {
                if (i > 0) sb.append(',');
                newline(sb, depth + 1);
                write(sb, n.get(i), depth + 1);
            }
            newline(sb, depth);
            sb.append(']');
        } else if (n.isTextual()) {
            string(sb, n.asText());
        } else if (n.isBoolean()) {
            sb.append(n.asBoolean() ? "true" : "false");
        } else if (n.isIntegralNumber()) {
            sb.append(n.bigIntegerValue());
        } else if (n.isNumber()) {
            sb.append(BnbLayout.pythonRepr(n.doubleValue()));
        } else {
            throw new IllegalArgumentException("cannot write JSON node of type " + n.getNodeType());
        }
    }

    private static void newline(StringBuilder sb, int depth) {
        sb.append('\n');
        sb.repeat(' ', 2 * depth);
    }

    /** json.dumps' string with ensure_ascii=True. */
    public static void string(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                case '\b' -> sb.append("\\b");
                case '\f' -> sb.append("\\f");
                default -> {
                    if (c < 0x20 || c > 0x7e) sb.append(String.format("\\u%04x", (int) c));
                    else sb.append(c);
                }
            }
        }
        sb.append('"');
    }

    /** Python orders str keys by code point; Java's compareTo orders by UTF-16 unit. */
    public static int compareCodePoints(String a, String b) {
        int i = 0, j = 0;
        while (i < a.length() && j < b.length()) {
            int ca = a.codePointAt(i), cb = b.codePointAt(j);
            if (ca != cb) return Integer.compare(ca, cb);
            i += Character.charCount(ca);
            j += Character.charCount(cb);
        }
        return Integer.compare(a.length() - i, b.length() - j);
    }
}
