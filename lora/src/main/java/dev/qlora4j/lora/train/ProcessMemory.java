package dev.qlora4j.lora.train;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The process's resident set from {@code /proc/self/status} ({@code VmRSS}, and its peak {@code VmHWM}): what the
 * OS charges for heap, off-heap buffers and touched pages of the mmap'd checkpoint together. -1 where there is no
 * procfs.
 */
public final class ProcessMemory {
    private static final Path STATUS = Path.of("/proc/self/status");

    private ProcessMemory() {
    }

    /** Current resident set in MiB, or -1. */
    public static double rssMib() {
        return field("VmRSS:");
    }

    /** Peak resident set in MiB, or -1. */
    public static double peakRssMib() {
        return field("VmHWM:");
    }

    private static double field(String key) {
        try {
            for (String line : Files.readAllLines(STATUS)) {
                if (line.startsWith(key)) {
                    String v = line.substring(key.length()).trim(); // "123456 kB"
                    int sp = v.indexOf(' ');
                    return Long.parseLong(sp < 0 ? v : v.substring(0, sp)) / 1024.0;
                }
            }
        } catch (IOException | RuntimeException e) {
            // not Linux: no number
        }
        return -1;
    }
}
