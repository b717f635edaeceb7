package dev.qlora4j.quant.kernel;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/**
 * The CPU's vendor, for the few kernel choices that differ between Intel and AMD cores of the same vector width
 * (read once from Linux's {@code /proc/cpuinfo}; "unknown" elsewhere, which keeps every default).
 */
final class CpuVendor {

    private static final String VENDOR = read(Path.of("/proc/cpuinfo"));

    private CpuVendor() {
    }

    /** Whether this is an Intel CPU ({@code vendor_id : GenuineIntel}). */
    static boolean intel() {
        return "GenuineIntel".equals(VENDOR);
    }

    /** The first {@code vendor_id} value of a cpuinfo file, or "unknown" when there is none or it cannot be read. */
    static String read(Path cpuinfo) {
        try (Stream<String> lines = Files.lines(cpuinfo)) {
            return lines.filter(l -> l.startsWith("vendor_id")).findFirst()
                    .map(l -> l.substring(l.indexOf(':') + 1).trim()).orElse("unknown");
        } catch (IOException | RuntimeException e) {
            return "unknown";
        }
    }
}
