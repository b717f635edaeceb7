package dev.qlora4j.quant.safetensors;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** Builds safetensors bytes by hand (no writer involved) for tests that mutate them. */
final class SafetensorsBytes {

    private SafetensorsBytes() {
    }

    /** The {@code qlora.shared} directory (surefire sets it; default {@code ../shared} from the module dir). */
    static Path sharedDir() {
        return Path.of(System.getProperty("qlora.shared", "../shared")).toAbsolutePath().normalize();
    }

    /** 8-byte LE length of {@code header}, the header bytes, then {@code data}; no padding added. */
    static byte[] file(byte[] header, byte[] data) {
        return ByteBuffer.allocate(8 + header.length + data.length).order(ByteOrder.LITTLE_ENDIAN)
                .putLong(header.length).put(header).put(data).array();
    }

    static byte[] file(String headerJson, byte[] data) {
        return file(headerJson.getBytes(StandardCharsets.UTF_8), data);
    }

    /** {@code bytes} with its first 8 bytes replaced by {@code n} little-endian. */
    static byte[] withHeaderLength(byte[] bytes, long n) {
        byte[] out = bytes.clone();
        ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN).putLong(0, n);
        return out;
    }

    static Path write(Path dir, String name, byte[] bytes) {
        try {
            return Files.write(dir.resolve(name), bytes);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Opening {@code file} fails with a message naming the file and holding every fragment; returns the message. */
    static String assertRejected(Path file, String... fragments) {
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> SafetensorsFile.open(file).close());
        String m = e.getMessage();
        assertTrue(m.contains(file.toString()), () -> "message does not name the file: " + m);
        for (String f : fragments) assertTrue(m.contains(f), () -> "message lacks '" + f + "': " + m);
        return m;
    }
}
