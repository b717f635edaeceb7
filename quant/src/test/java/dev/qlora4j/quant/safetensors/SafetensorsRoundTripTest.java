package dev.qlora4j.quant.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Writer → reader round trips: every dtype, metadata, float conversions, storage order, threads, close. */
class SafetensorsRoundTripTest {

    @TempDir
    Path dir;

    private static byte[] randomBytes(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void everyDtypeRoundTripsBitExact(DType dtype) {
        long[] shape = {3, 5};
        byte[] bytes = randomBytes(15 * dtype.bytes(), dtype.ordinal());
        Path p = dir.resolve(dtype + ".safetensors");
        new SafetensorsWriter().add("t", dtype, shape, bytes).add("scalar", dtype, new long[0], randomBytes(dtype.bytes(), 7))
                .write(p);
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            TensorInfo info = f.info("t");
            assertEquals(dtype, info.dtype());
            assertArrayEquals(shape, info.shape());
            assertArrayEquals(bytes, f.segment("t").toArray(ValueLayout.JAVA_BYTE));
            assertEquals(0, (8 + f.headerLength() + info.begin()) % dtype.bytes(), "aligned to its element size");
            assertEquals(0, f.info("scalar").rank());
            assertEquals(1, f.info("scalar").elementCount());
        }
    }

    @Test
    void allDtypesInOneFileInLibraryStorageOrder() {
        SafetensorsWriter w = new SafetensorsWriter();
        List<String> expected = new ArrayList<>();
        DType[] all = DType.values();
        for (int i = all.length - 1; i >= 0; i--) { // descending enum order = largest alignment first
            w.add(all[i].name().toLowerCase() + ".b", all[i], new long[] {3}, randomBytes(3 * all[i].bytes(), i));
            w.add(all[i].name().toLowerCase() + ".a", all[i], new long[] {1}, randomBytes(all[i].bytes(), -i));
            expected.add(all[i].name().toLowerCase() + ".a");
            expected.add(all[i].name().toLowerCase() + ".b");
        }
        Path p = dir.resolve("all.safetensors");
        w.write(p);
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            assertEquals(expected, f.names());
            for (TensorInfo i : f.tensors()) {
                assertEquals(0, (8 + f.headerLength() + i.begin()) % i.dtype().bytes(), i.name() + " aligned");
            }
        }
    }

    @Test
    void metadataRoundTrips() {
        Path p = dir.resolve("m.safetensors");
        new SafetensorsWriter().metadata(Map.of("format", "pt", "note", "héllo \"x\"\n")).add("x", new long[] {1}, new float[] {1})
                .write(p);
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            assertEquals(Map.of("format", "pt", "note", "héllo \"x\"\n"), f.metadata());
            assertEquals(List.of("format", "note"), List.copyOf(f.metadata().keySet()));
        }
    }

    @Test
    void emptyFileWithNoTensors() {
        Path p = dir.resolve("none.safetensors");
        new SafetensorsWriter().write(p);
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            assertEquals(List.of(), f.names());
            assertEquals(8, f.headerLength(), "'{}' padded to 8 as the Rust crate's test_empty");
        }
    }

    @Test
    void readFloatsConvertsF32F16Bf16() {
        float[] exact = {0f, -1.5f, 2f, 0.375f, -1024f, Float.POSITIVE_INFINITY};
        Path p = dir.resolve("f.safetensors");
        new SafetensorsWriter().add("f32", new long[] {6}, exact).add("f16", DType.F16, new long[] {2, 3}, exact)
                .add("bf16", DType.BF16, new long[] {6}, exact).add("i32", new long[] {2}, new int[] {1, 2}).write(p);
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            assertArrayEquals(exact, f.readFloats("f32"));
            assertArrayEquals(exact, f.readFloats("f16"));
            assertArrayEquals(exact, f.readFloats("bf16"));
            SafetensorsException e = assertThrows(SafetensorsException.class, () -> f.readFloats("i32"));
            assertTrue(e.getMessage().contains("tensor 'i32'") && e.getMessage().contains(p.toString()), e.getMessage());
        }
    }

    @Test
    void unknownTensorNamesTheFile() {
        Path p = dir.resolve("u.safetensors");
        new SafetensorsWriter().add("x", new long[] {1}, new float[] {1}).write(p);
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            SafetensorsException e = assertThrows(SafetensorsException.class, () -> f.info("nope"));
            assertTrue(e.getMessage().contains(p.toString()) && e.getMessage().contains("'nope'"), e.getMessage());
        }
    }

    @Test
    void segmentsReadableFromOtherThreadsAndGoneAfterClose() throws Exception {
        float[] values = new float[1000];
        for (int i = 0; i < values.length; i++) values[i] = i * 0.5f;
        Path p = dir.resolve("t.safetensors");
        new SafetensorsWriter().add("v", new long[] {1000}, values).write(p);
        SafetensorsFile f = SafetensorsFile.open(p);
        MemorySegment seg = f.segment("v");
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try {
            List<CompletableFuture<float[]>> reads = new ArrayList<>();
            for (int t = 0; t < 4; t++) reads.add(CompletableFuture.supplyAsync(() -> f.readFloats("v"), pool));
            for (CompletableFuture<float[]> r : reads) assertArrayEquals(values, r.get());
            float fromOtherThread = CompletableFuture.supplyAsync(
                    () -> seg.get(FloatTensorCodec.F32_LE, 4L * 999), pool).get();
            assertEquals(499.5f, fromOtherThread);
        } finally {
            pool.shutdown();
        }
        f.close();
        f.close(); // idempotent
        assertThrows(IllegalStateException.class, () -> seg.get(ValueLayout.JAVA_BYTE, 0));
        assertThrows(SafetensorsException.class, () -> f.segment("v"));
    }
}
