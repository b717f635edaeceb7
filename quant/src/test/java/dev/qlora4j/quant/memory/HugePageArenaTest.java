package dev.qlora4j.quant.memory;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The huge-page arena, checked against what the kernel reports for this process in {@code /proc/self/smaps}: the
 * mapping that holds a large allocation carries the {@code hg} VmFlag (MADV_HUGEPAGE was applied) and is THP-eligible;
 * small allocations and a switched-off arena do not get it. The segments are zero-filled, aligned as asked, disjoint,
 * and dead once the arena closes.
 */
class HugePageArenaTest {
    @TempDir
    Path tmp;

    @Test
    void readsTheBracketedThpMode() throws IOException {
        Path f = tmp.resolve("enabled");
        Files.writeString(f, "always [madvise] never\n");
        assertEquals("madvise", HugePages.thpMode(f));
        Files.writeString(f, "[always] madvise never\n");
        assertEquals("always", HugePages.thpMode(f));
        Files.writeString(f, "always madvise [never]\n");
        assertEquals("never", HugePages.thpMode(f));
        Files.writeString(f, "garbage\n");
        assertEquals("", HugePages.thpMode(f));
        assertEquals("", HugePages.thpMode(tmp.resolve("missing")));
    }

    @Test
    void largeAllocationsLandInMadvisedMemory() throws IOException {
        assumeTrue(HugePages.available(), "no transparent huge pages here (not Linux, or THP mode never)");
        try (HugePageArena arena = new HugePageArena(true)) {
            assertTrue(arena.huge());
            MemorySegment big = arena.allocate(HugePages.SIZE * 3, 4096); // (6 MiB) bytes
            MemorySegment small = arena.allocate(1000, 64); // (1000) bytes, below MIN_CARVED
            assertEquals(0, big.address() % HugePages.SIZE, "the first carve of a slab starts on a huge page");
            Mapping m = Mapping.of(big.address());
            assertNotNull(m, "no mapping in /proc/self/smaps holds the allocation");
            assertTrue(m.flags.contains(" hg"), "MADV_HUGEPAGE not applied: VmFlags" + m.flags);
            assertTrue(m.end - m.start >= HugePageArena.SLAB, "slab mapping of " + (m.end - m.start) + " bytes");
            String eligible = m.fields.get("THPeligible"); // reported since Linux 5.0
            assertTrue(eligible == null || eligible.equals("1"), "mapping not THP-eligible: " + eligible);
            Mapping s = Mapping.of(small.address());
            assertTrue(s == null || !s.flags.contains(" hg"), "a small allocation went to a madvised slab");
            assertTrue(arena.slabBytes() >= HugePageArena.SLAB);
        }
    }

    @Test
    void switchedOffArenaMapsNoSlabs() throws IOException {
        try (HugePageArena arena = new HugePageArena(false)) {
            assertFalse(arena.huge());
            MemorySegment big = arena.allocate(HugePageArena.SLAB, 4096);
            Mapping m = Mapping.of(big.address());
            assertTrue(m == null || !m.flags.contains(" hg"), "switched off, yet madvised");
            assertEquals(0, arena.slabBytes());
        }
    }

    @Test
    void segmentsAreZeroedAlignedDisjointAndDieWithTheArena() {
        List<MemorySegment> segs = new ArrayList<>();
        long[] sizes = {HugePageArena.MIN_CARVED, 3_000_001, 100, HugePageArena.SLAB + 12345, HugePageArena.SLAB - 5,
                HugePageArena.MIN_CARVED * 7 + 3, 2 * HugePageArena.SLAB / 3, 2 * HugePageArena.SLAB / 3};
        long[] aligns = {64, 4096, 8, 64, 1, 65536, 4096, HugePages.SIZE};
        HugePageArena arena = new HugePageArena(true);
        for (int i = 0; i < sizes.length; i++) {
            MemorySegment s = arena.allocate(sizes[i], aligns[i]);
            assertEquals(sizes[i], s.byteSize());
            assertEquals(0, s.address() % aligns[i], "allocation " + i + " misaligned");
            for (long o = 0; o < s.byteSize(); o += 4093) assertEquals(0, s.get(ValueLayout.JAVA_BYTE, o), "not zeroed at " + o);
            assertEquals(0, s.get(ValueLayout.JAVA_BYTE, s.byteSize() - 1));
            s.fill((byte) (i + 1));
            segs.add(s);
        }
        for (int i = 0; i < segs.size(); i++) { // every fill survived the later ones: no overlap
            MemorySegment s = segs.get(i);
            assertEquals(i + 1, s.get(ValueLayout.JAVA_BYTE, 0));
            assertEquals(i + 1, s.get(ValueLayout.JAVA_BYTE, s.byteSize() - 1));
            for (int j = i + 1; j < segs.size(); j++) {
                MemorySegment t = segs.get(j);
                assertTrue(s.address() + s.byteSize() <= t.address() || t.address() + t.byteSize() <= s.address(),
                        "allocations " + i + " and " + j + " overlap");
            }
        }
        assertTrue(segs.get(0).scope().isAlive());
        arena.close();
        for (MemorySegment s : segs) assertFalse(s.scope().isAlive());
        assertThrows(IllegalStateException.class, () -> segs.get(0).get(ValueLayout.JAVA_BYTE, 0));
    }

    @Test
    void rejectsBadArguments() {
        try (HugePageArena arena = new HugePageArena(true)) {
            assertThrows(IllegalArgumentException.class, () -> arena.allocate(-1, 8));
            assertThrows(IllegalArgumentException.class, () -> arena.allocate(1 << 20, 3));
            assertThrows(IllegalArgumentException.class, () -> arena.allocate(1 << 20, 0));
        }
    }

    /** One entry of /proc/self/smaps: [start, end), its VmFlags line and its "Key: value" fields (units dropped). */
    private record Mapping(long start, long end, String flags, java.util.Map<String, String> fields) {
        static Mapping of(long address) throws IOException {
            Path smaps = Path.of("/proc/self/smaps");
            if (!Files.isReadable(smaps)) return null;
            Mapping found = null;
            long start = 0, end = 0;
            java.util.Map<String, String> fields = null;
            for (String line : Files.readAllLines(smaps)) {
                int colon = line.indexOf(':');
                if (!line.isEmpty() && Character.digit(line.charAt(0), 16) >= 0 && line.indexOf('-') > 0
                        && line.indexOf('-') < line.indexOf(' ') && (colon < 0 || colon > line.indexOf(' '))) {
                    String[] range = line.substring(0, line.indexOf(' ')).split("-");
                    start = Long.parseUnsignedLong(range[0], 16);
                    end = Long.parseUnsignedLong(range[1], 16);
                    fields = new java.util.HashMap<>();
                } else if (line.startsWith("VmFlags:")) {
                    if (Long.compareUnsigned(address, start) >= 0 && Long.compareUnsigned(address, end) < 0) {
                        found = new Mapping(start, end, line.substring("VmFlags:".length()), fields);
                    }
                } else if (colon > 0 && fields != null) {
                    fields.put(line.substring(0, colon), line.substring(colon + 1).trim().split("\\s+")[0]);
                }
            }
            return found;
        }
    }
}
