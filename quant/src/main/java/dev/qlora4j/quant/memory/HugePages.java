package dev.qlora4j.quant.memory;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * Transparent huge pages through the C library: {@code mmap} of anonymous memory, {@code madvise(MADV_HUGEPAGE)},
 * {@code munmap}, called with the FFM linker (Linux only). The switch is the system property
 * {@code qlora.hugePages} (default true); {@link #available()} also needs the kernel's THP mode
 * ({@code /sys/kernel/mm/transparent_hugepage/enabled}) to be {@code always} or {@code madvise}.
 */
public final class HugePages {

    /** The x86-64 and AArch64 (4 KiB base page) transparent huge page size, and the slabs' alignment. */
    public static final long SIZE = 2L << 20;
    /** The kernel's THP mode file. */
    public static final Path MODE_FILE = Path.of("/sys/kernel/mm/transparent_hugepage/enabled");

    private static final int PROT_READ_WRITE = 0x1 | 0x2;
    private static final int MAP_PRIVATE_ANONYMOUS = 0x02 | 0x20; // the same values on x86-64 and AArch64 Linux
    private static final int MADV_HUGEPAGE = 14;

    private static final MethodHandle MMAP, MADVISE, MUNMAP; // null where unavailable
    private static final boolean AVAILABLE;

    static {
        MethodHandle mmap = null, madvise = null, munmap = null;
        boolean ok = false;
        if (System.getProperty("os.name", "").toLowerCase(Locale.ROOT).startsWith("linux") && thpMode(MODE_FILE).matches("always|madvise")) {
            try {
                Linker linker = Linker.nativeLinker();
                SymbolLookup libc = linker.defaultLookup();
                ValueLayout.OfLong sz = ValueLayout.JAVA_LONG; // size_t, off_t and pointers: 64-bit on these targets
                mmap = linker.downcallHandle(libc.find("mmap").orElseThrow(), FunctionDescriptor.of(sz, sz, sz,
                        ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, sz));
                madvise = linker.downcallHandle(libc.find("madvise").orElseThrow(),
                        FunctionDescriptor.of(ValueLayout.JAVA_INT, sz, sz, ValueLayout.JAVA_INT));
                munmap = linker.downcallHandle(libc.find("munmap").orElseThrow(),
                        FunctionDescriptor.of(ValueLayout.JAVA_INT, sz, sz));
                ok = ValueLayout.ADDRESS.byteSize() == 8;
            } catch (RuntimeException e) { // no symbol, or native access refused (--illegal-native-access=deny)
                ok = false;
            }
        }
        MMAP = mmap;
        MADVISE = madvise;
        MUNMAP = munmap;
        AVAILABLE = ok;
    }

    private HugePages() {
    }

    /**
     * The bracketed mode in a THP mode file ({@code "always [madvise] never"} → {@code madvise}), or {@code ""} when
     * the file is missing or has no bracketed word.
     */
    static String thpMode(Path file) {
        try {
            String s = Files.readString(file);
            int a = s.indexOf('['), b = s.indexOf(']', a + 1);
            return a >= 0 && b > a ? s.substring(a + 1, b) : "";
        } catch (IOException | SecurityException e) {
            return "";
        }
    }

    /** Whether this process can map madvised anonymous memory: Linux, 64-bit, THP mode {@code always} or {@code madvise}. */
    public static boolean available() {
        return AVAILABLE;
    }

    /** {@link #available()} and the switch {@code -Dqlora.hugePages} (default true) is not false. */
    public static boolean enabled() {
        return AVAILABLE && !"false".equalsIgnoreCase(System.getProperty("qlora.hugePages", "true"));
    }

    /**
     * Maps {@code size} bytes (a multiple of {@link #SIZE}) of zeroed anonymous memory at a {@link #SIZE}-aligned
     * address, marked for huge pages, unmapped when {@code owner} closes; null when mmap fails. Over-maps by one
     * huge page to align the start; the unaligned edges are never touched, so they cost address space only.
     */
    static MemorySegment map(long size, Arena owner) {
        if (!AVAILABLE || size <= 0 || size % SIZE != 0) throw new IllegalArgumentException("size " + size);
        long total = size + SIZE;
        try {
            long base = (long) MMAP.invokeExact(0L, total, PROT_READ_WRITE, MAP_PRIVATE_ANONYMOUS, -1, 0L);
            if (base == -1L) return null; // MAP_FAILED
            long aligned = (base + SIZE - 1) & -SIZE;
            int rc = (int) MADVISE.invokeExact(aligned, size, MADV_HUGEPAGE); // advice only: a refusal leaves 4 KiB pages
            return MemorySegment.ofAddress(aligned).reinterpret(size, owner, s -> unmap(base, total));
        } catch (Throwable t) {
            throw new IllegalStateException("mmap of " + size + " bytes for huge pages failed", t);
        }
    }

    private static void unmap(long base, long total) {
        try {
            int rc = (int) MUNMAP.invokeExact(base, total);
        } catch (Throwable t) {
            // a cleanup action must not throw; the mapping stays until the process exits
        }
    }
}
