package dev.qlora4j.quant.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CpuVendorTest {

    @TempDir
    Path dir;

    @Test
    void readsTheFirstVendorIdOfACpuinfoFile() throws IOException {
        Path intel = dir.resolve("intel");
        Files.writeString(intel, "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n\nprocessor\t: 1\n"
                + "vendor_id\t: GenuineIntel\n");
        assertEquals("GenuineIntel", CpuVendor.read(intel));
        Path amd = dir.resolve("amd");
        Files.writeString(amd, "processor\t: 0\nvendor_id\t: AuthenticAMD\n");
        assertEquals("AuthenticAMD", CpuVendor.read(amd));
    }

    @Test
    void zen1IsAmdFamily23BelowModel48() throws IOException {
        // the first lines of /proc/cpuinfo on the machines the benchmarks ran on (bench/RESULTS.md)
        assertTrue(CpuVendor.zen1(cpuinfo("naples", "AuthenticAMD", 23, 1)), "EPYC 7001, Zen");
        assertTrue(CpuVendor.zen1(cpuinfo("pinnacle", "AuthenticAMD", 23, 8)), "Ryzen 2000, Zen+");
        assertFalse(CpuVendor.zen1(cpuinfo("rome", "AuthenticAMD", 23, 49)), "EPYC 7002, Zen 2");
        assertFalse(CpuVendor.zen1(cpuinfo("milan", "AuthenticAMD", 25, 1)), "EPYC 7003, Zen 3");
        assertFalse(CpuVendor.zen1(cpuinfo("xeon", "GenuineIntel", 6, 1)), "Intel");
        Path noModel = dir.resolve("nomodel");
        Files.writeString(noModel, "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 23\nmodel name\t: AMD EPYC\n");
        assertFalse(CpuVendor.zen1(noModel), "no model line");
        assertFalse(CpuVendor.zen1(dir.resolve("absent")));
    }

    private Path cpuinfo(String name, String vendor, int family, int model) throws IOException {
        Path p = dir.resolve(name);
        Files.writeString(p, "processor\t: 0\nvendor_id\t: " + vendor + "\ncpu family\t: " + family + "\nmodel\t\t: "
                + model + "\nmodel name\t: AMD EPYC\n");
        return p;
    }

    @Test
    void unknownWhenMissingOrWithoutVendor() throws IOException {
        assertEquals("unknown", CpuVendor.read(dir.resolve("absent")));
        Path arm = dir.resolve("arm");
        Files.writeString(arm, "processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\n");
        assertEquals("unknown", CpuVendor.read(arm));
    }

    @Test
    void readsTheL2SizeFromSysfsCacheEntries() throws IOException {
        Path cache = dir.resolve("cache");
        writeIndex(cache, 0, "1", "Data", "48K");
        writeIndex(cache, 1, "1", "Instruction", "32K");
        writeIndex(cache, 2, "2", "Unified", "2048K");
        writeIndex(cache, 3, "3", "Unified", "491520K");
        assertEquals(2048L << 10, CpuVendor.l2Bytes(cache));
        Path mega = dir.resolve("mega");
        writeIndex(mega, 0, "2", "Unified", "1M");
        assertEquals(1L << 20, CpuVendor.l2Bytes(mega));
        assertEquals(-1, CpuVendor.l2Bytes(dir.resolve("absent")));
        Path bad = dir.resolve("bad");
        writeIndex(bad, 0, "2", "Unified", "lots");
        assertEquals(-1, CpuVendor.l2Bytes(bad));
        // the rule that uses it: 256-column panels need at least 1.5 MB of L2 (or an unknown one)
        assertEquals(true, PanamaKernels.widePanelsFit(2048L << 10));
        assertEquals(false, PanamaKernels.widePanelsFit(1L << 20));
        assertEquals(true, PanamaKernels.widePanelsFit(-1));
    }

    private static void writeIndex(Path cache, int i, String level, String type, String size) throws IOException {
        Path d = Files.createDirectories(cache.resolve("index" + i));
        Files.writeString(d.resolve("level"), level + "\n");
        Files.writeString(d.resolve("type"), type + "\n");
        Files.writeString(d.resolve("size"), size + "\n");
    }
}
