package dev.qlora4j.quant.safetensors;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The --no-mmap view: private, page-aligned, read-only copies holding the file's bytes; the rest delegates. */
class PrivateCopyStoreTest {
    @TempDir
    Path tmp;

    @Test
    void segmentsArePrivateCopiesOfTheMappedBytes() {
        Path file = tmp.resolve("m.safetensors");
        float[] a = {1f, -2.5f, 3.25f, Float.MIN_VALUE, Float.NaN};
        byte[] b = {7, -8, 9};
        new SafetensorsWriter().add("a", new long[]{5}, a).add("b", DType.I8, new long[]{3}, b)
                .add("empty", DType.F32, new long[]{0}, new byte[0]).write(file);
        try (SafetensorsFile f = SafetensorsFile.open(file); Arena arena = Arena.ofConfined()) {
            PrivateCopyStore store = new PrivateCopyStore(f, arena);
            assertEquals(f.names(), store.names());
            assertTrue(f.segment("a").isMapped());
            MemorySegment ca = store.segment("a");
            assertFalse(ca.isMapped(), "a private copy, not the mapping");
            assertTrue(ca.isReadOnly());
            assertEquals(0, ca.address() % 4096, "page-aligned");
            assertArrayEquals(a, ca.toArray(ValueLayout.JAVA_FLOAT_UNALIGNED));
            assertArrayEquals(b, store.segment("b").toArray(ValueLayout.JAVA_BYTE));
            assertEquals(0, store.segment("empty").byteSize());
            assertSame(ca, store.segment("a"), "copied once");
            assertEquals(20 + 3, store.copiedBytes());
            assertArrayEquals(a, store.readFloats("a"));
            assertThrows(SafetensorsException.class, () -> store.segment("missing"));
        }
    }
}
