package dev.qlora4j.quant.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;

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
    void unknownWhenMissingOrWithoutVendor() throws IOException {
        assertEquals("unknown", CpuVendor.read(dir.resolve("absent")));
        Path arm = dir.resolve("arm");
        Files.writeString(arm, "processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\n");
        assertEquals("unknown", CpuVendor.read(arm));
    }
}
