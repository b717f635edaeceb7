package dev.qlora4j.cli;

import dev.qlora4j.quant.weight.WeightFormat;

import java.util.Locale;

/** How the CLI prints sizes, counts and format names. */
final class Units {
    private Units() {
    }

    /** {@code 123.45 MiB}; below 1 MiB also the exact byte count: {@code 0.39 MiB (413,296 B)}. */
    static String mib(long bytes) {
        String m = String.format(Locale.ROOT, "%.2f MiB", bytes / (1024.0 * 1024.0));
        return bytes < (1 << 20) ? m + String.format(Locale.ROOT, " (%,d B)", bytes) : m;
    }

    /** 124.4M, 1.2B, 3.4K, 112. */
    static String count(long n) {
        if (n >= 1_000_000_000L) return String.format(Locale.ROOT, "%.2fB", n / 1e9);
        if (n >= 1_000_000L) return String.format(Locale.ROOT, "%.2fM", n / 1e6);
        if (n >= 1_000L) return String.format(Locale.ROOT, "%.1fK", n / 1e3);
        return Long.toString(n);
    }

    static String formatName(WeightFormat f) {
        return switch (f) {
            case NF4 -> "nf4";
            case FP4 -> "fp4";
            case INT8_ROWWISE -> "int8 (LLM.int8 row-wise)";
            case INT8_BLOCKWISE -> "int8 blockwise";
            default -> f.name();
        };
    }
}
