package dev.qlora4j.runtime.quantize;

import com.fasterxml.jackson.databind.JsonNode;
import dev.qlora4j.quant.weight.BnbLayout;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Writes JSON the way transformers saves {@code config.json}: {@code json.dumps(d, indent=2, sort_keys=True) + "\n"}
 * (ASCII only, Python float repr such as {@code 1e-05}), so a copied config differs from the original only where we
 * change it.
 */
final class PythonJson {

    private PythonJson() {
    }

    static String dumps(JsonNode node) {
        StringBuilder sb = new StringBuilder(1024);
        write(sb, node, 0);
        return sb.append('\n').toString();
    }

    private static void write(StringBuilder sb, JsonNode n, int depth) {
        if (n == null || n.isNull() || n.isMissingNode()) {
            sb.append("null");
        } else if (n.isObject()) {
            List<Map.Entry<String, JsonNode>> entries = new ArrayList<>();
            n.fields().forEachRemaining(entries::add);
            if (entries.isEmpty()) {
                sb.append("{}");
                return;
            }
            entries.sort(Map.Entry.comparingByKey(PythonJson::compareCp));
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
            sb.append(n);
        }
    }

    private static void newline(StringBuilder sb, int depth) {
        sb.append('\n');
        sb.repeat(' ', 2 * depth);
    }

    /** Python sorts str keys by code point (Java's compareTo sorts by UTF-16 unit). */
    private static int compareCp(String a, String b) {
        int i = 0, j = 0;
        while (i < a.length() && j < b.length()) {
            int ca = a.codePointAt(i), cb = b.codePointAt(j);
            if (ca != cb) return Integer.compare(ca, cb);
            i += Character.charCount(ca);
            j += Character.charCount(cb);
        }
        return Integer.compare(a.length() - i, b.length() - j);
    }

    /** {@code json.dumps} string with {@code ensure_ascii=True}. */
    private static void string(StringBuilder sb, String s) {
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
}
