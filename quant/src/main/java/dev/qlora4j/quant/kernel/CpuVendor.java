package dev.qlora4j.quant.kernel;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/**
 * The CPU's vendor, for the few kernel choices that differ between Intel and AMD cores of the same vector width
 * (read once from Linux's {@code /proc/cpuinfo}; "unknown" elsewhere, which keeps every default), and its per-core L2
 * size (from {@code /sys/devices/system/cpu/cpu0/cache}; unknown elsewhere).
 */
final class CpuVendor {

    private static final String VENDOR = read(Path.of("/proc/cpuinfo"));
    private static final boolean ZEN1 = zen1(Path.of("/proc/cpuinfo"));
    private static final long L2_BYTES = l2Bytes(Path.of("/sys/devices/system/cpu/cpu0/cache"));

    private CpuVendor() {
    }

    /** Whether this is an Intel CPU ({@code vendor_id : GenuineIntel}). */
    static boolean intel() {
        return "GenuineIntel".equals(VENDOR);
    }

    /**
     * Whether this is an AMD Zen or Zen+ core (family 23, model below 0x30: Naples, Summit/Pinnacle Ridge, Raven
     * Ridge, Picasso), which executes each 256-bit operation as two 128-bit halves and lane-crossing permutes slowly.
     */
    static boolean zen1() {
        return ZEN1;
    }

    /** {@link #zen1()} for a cpuinfo file: AuthenticAMD, {@code cpu family : 23}, {@code model} below 48. */
    static boolean zen1(Path cpuinfo) {
        try {
            List<String> lines = Files.readAllLines(cpuinfo);
            int model = field(lines, "model");
            return "AuthenticAMD".equals(value(lines, "vendor_id")) && field(lines, "cpu family") == 23
                    && model >= 0 && model < 0x30;
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }

    /** The first value of a cpuinfo field ("model" matches only "model", not "model name"), or null. */
    private static String value(List<String> lines, String name) {
        return lines.stream().filter(l -> l.startsWith(name) && l.substring(name.length()).trim().startsWith(":"))
                .findFirst().map(l -> l.substring(l.indexOf(':') + 1).trim()).orElse(null);
    }

    /** {@link #value} as an integer, or -1 when the field is missing. */
    private static int field(List<String> lines, String name) {
        String v = value(lines, name);
        return v == null ? -1 : Integer.parseInt(v);
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

    /** Bytes of cpu0's level-2 cache, or -1 when unknown. */
    static long l2Bytes() {
        return L2_BYTES;
    }

    /**
     * The level-2 data or unified cache's size from a sysfs {@code cache} directory ({@code indexN/level},
     * {@code indexN/type}, {@code indexN/size} as "2048K" or "1M"), or -1 when there is none or it cannot be read.
     */
    static long l2Bytes(Path cacheDir) {
        for (int i = 0; i < 8; i++) {
            Path d = cacheDir.resolve("index" + i);
            try {
                if (!Files.isDirectory(d) || !Files.readString(d.resolve("level")).trim().equals("2")) continue;
                if (Files.readString(d.resolve("type")).trim().equals("Instruction")) continue;
                String size = Files.readString(d.resolve("size")).trim();
                long unit = size.endsWith("K") ? 1L << 10 : size.endsWith("M") ? 1L << 20 : 1;
                String digits = unit == 1 ? size : size.substring(0, size.length() - 1);
                return Long.parseLong(digits) * unit;
            } catch (IOException | RuntimeException e) {
                return -1;
            }
        }
        return -1;
    }
}
