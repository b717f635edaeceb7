package dev.qlora4j.runtime.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.qlora4j.quant.safetensors.DType;
import dev.qlora4j.quant.safetensors.SafetensorsException;
import dev.qlora4j.quant.safetensors.TensorInfo;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PytorchBinStoreTest {

    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Both torch.save layouts of the same state_dict read as PyTorch wrote them (good.expected.json). */
    @ParameterizedTest
    @ValueSource(strings = {"good_zip.bin", "good_legacy.bin"})
    void readsStateDictAsTorchSavedIt(String file) throws IOException {
        JsonNode expected = new ObjectMapper().readTree(Fixtures.resource("good.expected.json").toFile());
        try (PytorchBinStore store = PytorchBinStore.open(Fixtures.resource(file))) {
            List<String> names = new ArrayList<>();
            for (JsonNode t : expected) names.add(t.get("name").asText());
            assertEquals(names, store.names(), "state_dict order");
            for (JsonNode t : expected) {
                String name = t.get("name").asText();
                TensorInfo info = store.info(name);
                assertEquals(DType.valueOf(t.get("dtype").asText()), info.dtype(), name);
                long[] shape = new long[t.get("shape").size()];
                for (int i = 0; i < shape.length; i++) shape[i] = t.get("shape").get(i).asLong();
                assertArrayEquals(shape, info.shape(), name);
                MemorySegment seg = store.segment(name);
                assertEquals(info.elementCount() * info.dtype().bytes(), seg.byteSize(), name);
                assertTrue(seg.isReadOnly(), name);
                assertTrue(seg.isMapped(), name + " is a slice of the mapped file");
                JsonNode values = t.get("values");
                if (info.dtype() == DType.I64) {
                    for (int i = 0; i < values.size(); i++) assertEquals(values.get(i).asLong(), seg.get(I64, 8L * i));
                } else {
                    float[] got = store.readFloats(name);
                    assertEquals(values.size(), got.length, name);
                    for (int i = 0; i < got.length; i++)
                        assertEquals((float) values.get(i).asDouble(), got[i], 0f, name + "[" + i + "]");
                }
                assertEquals(Fixtures.resource(file), store.fileOf(name));
            }
            // the two views of one storage are adjacent slices of the same bytes
            TensorInfo a = store.info("shared.a"), b = store.info("shared.b");
            assertEquals(a.end(), b.begin());
            assertThrows(SafetensorsException.class, () -> store.readFloats("ints"));
            SafetensorsException e = assertThrows(SafetensorsException.class, () -> store.info("nope"));
            assertTrue(e.getMessage().contains(file) && e.getMessage().contains("nope"), e.getMessage());
        }
    }

    @Test
    void zipAndLegacyLayoutsHoldTheSameBytes() {
        try (PytorchBinStore zip = PytorchBinStore.open(Fixtures.resource("good_zip.bin"));
             PytorchBinStore legacy = PytorchBinStore.open(Fixtures.resource("good_legacy.bin"))) {
            assertEquals(zip.names(), legacy.names());
            for (String n : zip.names()) {
                assertEquals(-1, zip.segment(n).mismatch(legacy.segment(n)), n);
                assertArrayEquals(zip.info(n).shape(), legacy.info(n).shape(), n);
            }
        }
    }

    /**
     * Malicious pickles are refused when their global is read: nothing runs, and the message says what and where. The
     * global is named as the file spells it (protocol 2 writes Python 2 names: builtins → __builtin__, subprocess →
     * commands; os.system is posix.system).
     */
    @ParameterizedTest
    @CsvSource({
            "evil_os_system.bin, os_system, posix.system",
            "evil_builtins_eval.bin, eval, __builtin__.eval",
            "evil_stack_global.bin, stack_global, posix.system",
            "evil_nested_global.bin, nested, commands.check_output"})
    void refusesMaliciousGlobals(String file, String marker, String global) {
        Path pwned = Path.of("/tmp/qlora4j-pwned-" + marker);
        assertFalse(Files.exists(pwned), "marker exists before the test: " + pwned);
        UnsafePickleException e = assertThrows(UnsafePickleException.class,
                () -> PytorchBinStore.open(Fixtures.resource(file)));
        String m = e.getMessage();
        assertTrue(m.contains(file), m);
        assertTrue(m.contains("global '" + global + "'"), m);
        assertTrue(m.contains("not allowed"), m);
        assertFalse(Files.exists(pwned), "payload ran: " + pwned);
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "truncated_zip.bin      | no zip end-of-central-directory record",
            "truncated_legacy.bin   | truncated",
            "compressed_entry.bin   | is compressed (method 8)",
            "missing_storage.bin    | missing storage record 'good_zip/data/0'",
            "noncontiguous.bin      | tensor 't' is not contiguous",
            "not_a_state_dict.bin   | not a state_dict",
            "bad_magic.bin          | not torch's magic number"})
    void refusesBrokenFiles(String file, String message) {
        SafetensorsException e = assertThrows(SafetensorsException.class,
                () -> PytorchBinStore.open(Fixtures.resource(file)));
        assertTrue(e.getMessage().contains(file), e.getMessage());
        assertTrue(e.getMessage().contains(message), e.getMessage());
    }

    @Test
    void refusesEmptyAndForeignFiles(@TempDir Path dir) throws IOException {
        Path empty = Files.write(dir.resolve("empty.bin"), new byte[0]);
        assertTrue(assertThrows(SafetensorsException.class, () -> PytorchBinStore.open(empty)).getMessage()
                .contains("empty file"));
        Path text = Files.writeString(dir.resolve("text.bin"), "hello, not a checkpoint");
        assertTrue(assertThrows(SafetensorsException.class, () -> PytorchBinStore.open(text)).getMessage()
                .contains("not a PyTorch checkpoint"));
        Path missing = dir.resolve("missing.bin");
        assertTrue(assertThrows(SafetensorsException.class, () -> PytorchBinStore.open(missing)).getMessage()
                .contains("missing.bin"));
    }

    /** Every prefix of a valid file fails cleanly (a SafetensorsException, never another exception or a hang). */
    @ParameterizedTest
    @ValueSource(strings = {"good_zip.bin", "good_legacy.bin"})
    void everyTruncationFailsCleanly(String file, @TempDir Path dir) throws IOException {
        byte[] all = Files.readAllBytes(Fixtures.resource(file));
        Path cut = dir.resolve("cut.bin");
        for (int n = 1; n < all.length; n += (n < 200 ? 1 : 7)) {
            Files.write(cut, java.util.Arrays.copyOf(all, n));
            int len = n;
            SafetensorsException e = assertThrows(SafetensorsException.class, () -> PytorchBinStore.open(cut),
                    () -> file + " cut to " + len + " bytes opened");
            assertTrue(e.getMessage().contains("cut.bin"), e.getMessage());
        }
    }

    /** Random byte corruption either still reads or fails with a SafetensorsException naming the file. */
    @ParameterizedTest
    @ValueSource(strings = {"good_zip.bin", "good_legacy.bin"})
    void corruptionFailsCleanly(String file, @TempDir Path dir) throws IOException {
        byte[] all = Files.readAllBytes(Fixtures.resource(file));
        Path bad = dir.resolve("bad.bin");
        java.util.Random rnd = new java.util.Random(42);
        for (int iter = 0; iter < 400; iter++) {
            byte[] b = all.clone();
            int flips = 1 + rnd.nextInt(4);
            for (int f = 0; f < flips; f++) {
                int at = rnd.nextInt(b.length);
                b[at] = rnd.nextInt(3) == 0 ? (byte) 0xFF : (byte) rnd.nextInt(256);
            }
            Files.write(bad, b);
            try (PytorchBinStore store = PytorchBinStore.open(bad)) {
                for (String n : store.names()) {
                    TensorInfo t = store.info(n);
                    assertEquals(t.elementCount() * t.dtype().bytes(), store.segment(n).byteSize(), n);
                }
            } catch (SafetensorsException e) {
                assertTrue(e.getMessage().contains("bad.bin"), e.getMessage());
            }
        }
    }

    @Test
    void closesAndUnmaps() {
        PytorchBinStore store = PytorchBinStore.open(Fixtures.resource("good_zip.bin"));
        MemorySegment seg = store.segment("half");
        store.close();
        assertThrows(IllegalStateException.class, () -> seg.get(ValueLayout.JAVA_BYTE, 0));
    }
}
