package dev.qlora4j.quant.weight;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A mapped slice becomes a plain native segment over the same bytes with the mapping's lifetime; others pass. */
class KernelSegmentsTest {
    @TempDir
    Path tmp;

    @Test
    void mappedSliceBecomesAPlainViewOfTheSamePages() throws Exception {
        Path f = tmp.resolve("w.bin");
        byte[] bytes = new byte[4096];
        for (int i = 0; i < bytes.length; i++) bytes[i] = (byte) (i * 7);
        Files.write(f, bytes);
        MemorySegment view;
        try (Arena arena = Arena.ofShared(); FileChannel ch = FileChannel.open(f, StandardOpenOption.READ)) {
            MemorySegment slice = ch.map(FileChannel.MapMode.READ_ONLY, 0, bytes.length, arena).asSlice(100, 1000);
            assertTrue(slice.isMapped());
            view = KernelSegments.plain(slice);
            assertFalse(view.isMapped());
            assertTrue(view.isNative());
            assertEquals(slice.address(), view.address(), "nothing copied");
            assertEquals(1000, view.byteSize());
            assertTrue(view.isReadOnly());
            for (int i = 0; i < 1000; i++) assertEquals(bytes[100 + i], view.get(ValueLayout.JAVA_BYTE, i));
            assertThrows(IndexOutOfBoundsException.class, () -> view.get(ValueLayout.JAVA_BYTE, 1000));
            assertThrows(IllegalArgumentException.class, () -> view.set(ValueLayout.JAVA_BYTE, 0, (byte) 1));
        }
        assertFalse(view.scope().isAlive(), "the view dies with the mapping");
        assertThrows(IllegalStateException.class, () -> view.get(ValueLayout.JAVA_BYTE, 0));
    }

    @Test
    void nativeAndHeapSegmentsPassThrough() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment n = arena.allocate(64);
            assertSame(n, KernelSegments.plain(n));
        }
        MemorySegment h = MemorySegment.ofArray(new float[4]);
        assertSame(h, KernelSegments.plain(h));
    }
}
