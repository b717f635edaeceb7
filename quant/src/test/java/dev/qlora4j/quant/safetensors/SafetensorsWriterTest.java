package dev.qlora4j.quant.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Writer rules: rejects bad tensors up front, replaces atomically, leaves no temporary file behind. */
class SafetensorsWriterTest {

    @TempDir
    Path dir;

    private List<String> filesInDir() throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    private static void assertMessage(Runnable r, String... fragments) {
        SafetensorsException e = assertThrows(SafetensorsException.class, r::run);
        for (String f : fragments) assertTrue(e.getMessage().contains(f), () -> "lacks '" + f + "': " + e.getMessage());
    }

    @Test
    void rejectsDuplicateName() {
        SafetensorsWriter w = new SafetensorsWriter().add("w", new long[] {1}, new float[] {1});
        assertMessage(() -> w.add("w", new long[] {1}, new int[] {1}), "tensor 'w'", "duplicate");
    }

    @Test
    void rejectsSizeMismatch() {
        assertMessage(() -> new SafetensorsWriter().add("w", new long[] {2, 2}, new float[] {1, 2, 3}),
                "tensor 'w'", "needs 16 bytes, data has 12");
    }

    @Test
    void rejectsNegativeDimension() {
        assertMessage(() -> new SafetensorsWriter().add("w", DType.U8, new long[] {-1}, new byte[0]),
                "tensor 'w'", "negative dimension -1");
    }

    @Test
    void rejectsReservedMetadataName() {
        assertMessage(() -> new SafetensorsWriter().add("__metadata__", DType.U8, new long[] {0}, new byte[0]), "reserved");
    }

    @Test
    void rejectsFloatsForNonFloatDtype() {
        assertMessage(() -> new SafetensorsWriter().add("w", DType.I32, new long[] {1}, new float[] {1}), "tensor 'w'", "I32");
    }

    @Test
    void replacesExistingFileAndLeavesNoTemporary() throws IOException {
        Path p = dir.resolve("model.safetensors");
        Files.writeString(p, "old");
        new SafetensorsWriter().add("x", new long[] {2}, new float[] {1, 2}).write(p);
        assertEquals(List.of("model.safetensors"), filesInDir());
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            assertArrayEquals(new float[] {1, 2}, f.readFloats("x"));
        }
    }

    @Test
    void failureMidWriteDeletesTemporaryAndKeepsTarget() throws IOException {
        Path p = dir.resolve("model.safetensors");
        Files.writeString(p, "old");
        MemorySegment dead;
        try (Arena arena = Arena.ofConfined()) {
            dead = arena.allocate(8);
        } // closed: reading it while writing fails after the header is out
        SafetensorsWriter w = new SafetensorsWriter().add("a", new long[] {1}, new float[] {1}).add("b", DType.U8, new long[] {8}, dead);
        assertMessage(() -> w.write(p), p.toString(), "cannot write");
        assertEquals(List.of("model.safetensors"), filesInDir());
        assertEquals("old", Files.readString(p));
    }

    @Test
    void unwritableDirectoryNamesTarget() {
        Path p = dir.resolve("missing-dir/model.safetensors");
        assertMessage(() -> new SafetensorsWriter().write(p), p.toString(), "cannot write");
    }

    @Test
    void copyFromAnotherStoreKeepsBytes() {
        Path a = dir.resolve("a.safetensors");
        Path b = dir.resolve("b.safetensors");
        new SafetensorsWriter().add("x", DType.BF16, new long[] {3}, new float[] {1, -2, 0.5f}).write(a);
        try (SafetensorsFile src = SafetensorsFile.open(a)) {
            new SafetensorsWriter().copyFrom(src, "x").write(b);
        }
        try (SafetensorsFile f = SafetensorsFile.open(b)) {
            assertEquals(DType.BF16, f.info("x").dtype());
            assertArrayEquals(new float[] {1, -2, 0.5f}, f.readFloats("x"));
        }
    }

    @Test
    void layoutReportsOffsets() {
        List<TensorInfo> layout = new SafetensorsWriter().add("b", new long[] {2}, new float[2])
                .add("a", DType.U8, new long[] {3}, new byte[3]).add("c", new long[] {1}, new float[1]).layout();
        assertEquals(List.of("b", "c", "a"), layout.stream().map(TensorInfo::name).toList());
        assertEquals(List.of(0L, 8L, 12L), layout.stream().map(TensorInfo::begin).toList());
        assertEquals(15L, layout.getLast().end());
    }
}
