package dev.qlora4j.quant.safetensors;

import static dev.qlora4j.quant.safetensors.SafetensorsBytes.assertRejected;
import static dev.qlora4j.quant.safetensors.SafetensorsBytes.file;
import static dev.qlora4j.quant.safetensors.SafetensorsBytes.withHeaderLength;
import static dev.qlora4j.quant.safetensors.SafetensorsBytes.write;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/** Every malformed input is a {@link SafetensorsException} naming the file (and tensor), never a crash or OOB read. */
class SafetensorsValidationTest {

    /** A valid header: 'a' F32[2] at [0,8), 'b' I8[4] at [8,12). Each test mutates a copy. */
    private static final String VALID = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            + "\"b\":{\"dtype\":\"I8\",\"shape\":[4],\"data_offsets\":[8,12]}}";
    private static final byte[] DATA = {0, 0, (byte) 0x80, 0x3F, 0, 0, 0, (byte) 0xC0, 1, 2, 3, 4};

    @TempDir
    Path dir;

    private Path mutated(String from, String to) {
        String header = VALID.replace(from, to);
        if (header.equals(VALID)) throw new IllegalArgumentException("mutation did not apply: " + from);
        return write(dir, "m.safetensors", file(header, DATA));
    }

    @Test
    void unmutatedBaseOpens() {
        try (SafetensorsFile f = SafetensorsFile.open(write(dir, "ok.safetensors", file(VALID, DATA)))) {
            assertEquals(List.of("a", "b"), f.names());
            assertEquals(-2f, f.readFloats("a")[1]);
        }
    }

    @Test
    void emptyFile() {
        assertRejected(write(dir, "e.safetensors", new byte[0]), "0 bytes", "too short");
    }

    @Test
    void fileShorterThanEightBytes() {
        assertRejected(write(dir, "s.safetensors", new byte[] {8, 0, 0, 0, 0}), "5 bytes", "too short");
    }

    @Test
    void truncatedData() {
        byte[] whole = file(VALID, DATA);
        Path p = write(dir, "t.safetensors", Arrays.copyOf(whole, whole.length - 3));
        assertRejected(p, "tensor 'b'", "outside the data buffer of 9 bytes", "truncated");
    }

    @Test
    void truncatedHeader() {
        byte[] whole = file(VALID, DATA);
        assertRejected(write(dir, "th.safetensors", Arrays.copyOf(whole, 40)), "runs past the end of the file");
    }

    @Test
    void headerLengthBeyondFile() {
        byte[] bytes = withHeaderLength(file(VALID, DATA), VALID.length() + DATA.length + 1);
        assertRejected(write(dir, "l.safetensors", bytes), "runs past the end of the file");
    }

    @Test
    void headerLengthOverLimit() {
        byte[] bytes = withHeaderLength(file(VALID, DATA), 100_000_001L);
        assertRejected(write(dir, "big.safetensors", bytes), "header length 100000001 is over the limit");
    }

    @Test
    void headerLengthNegativeAsSigned() {
        byte[] bytes = withHeaderLength(file(VALID, DATA), -1L);
        assertRejected(write(dir, "neg.safetensors", bytes), "header length 18446744073709551615 is over the limit");
    }

    @Test
    void headerNotUtf8() {
        byte[] header = VALID.getBytes(StandardCharsets.UTF_8);
        header[2] = (byte) 0xFF; // inside the name "a"
        assertRejected(write(dir, "u.safetensors", file(header, DATA)), "not valid UTF-8");
    }

    @Test
    void headerNotJson() {
        assertRejected(write(dir, "j.safetensors", file(VALID.substring(0, 30), DATA)), "not valid JSON");
    }

    @Test
    void headerNotAnObject() {
        assertRejected(write(dir, "arr.safetensors", file("[1,2]   ", new byte[0])), "not a JSON object");
    }

    @Test
    void headerEmpty() {
        assertRejected(write(dir, "e0.safetensors", file("", new byte[0])), "not a JSON object");
    }

    @Test
    void contentAfterHeaderObject() {
        assertRejected(write(dir, "tr.safetensors", file(VALID + " {}", DATA)), "content after its JSON object");
    }

    @ParameterizedTest
    @ValueSource(strings = {"dtype", "shape", "data_offsets"})
    void entryMissingField(String field) {
        String header = VALID.replace("\"" + field + "\"", "\"x_" + field + "\"");
        Path p = write(dir, "miss.safetensors", file(header, DATA));
        assertRejected(p, "tensor 'a'", "missing '" + field + "'");
    }

    @ParameterizedTest(name = "{0} -> {1}")
    @CsvSource(delimiter = '|', quoteCharacter = '`', value = {
            "\"dtype\":\"F32\"|\"dtype\":5|'dtype' must be a string",
            "\"shape\":[2]|\"shape\":2|'shape' must be an array of integers",
            "\"shape\":[2]|\"shape\":[2.0]|'shape' must be an array of integers",
            "\"shape\":[2]|\"shape\":[\"2\"]|'shape' must be an array of integers",
            "\"data_offsets\":[0,8]|\"data_offsets\":[0]|exactly 2 integers",
            "\"data_offsets\":[0,8]|\"data_offsets\":[0,8,8]|exactly 2 integers",
            "\"data_offsets\":[0,8]|\"data_offsets\":{\"b\":0}|'data_offsets' must be an array of integers",
            "\"data_offsets\":[0,8]|\"data_offsets\":[0,99999999999999999999]|out of range",
            "\"data_offsets\":[0,8]|\"data_offsets\":[-1,8]|negative value -1",
    })
    void entryFieldOfWrongType(String from, String to, String expected) {
        assertRejected(mutated(from, to), "tensor 'a'", expected);
    }

    @Test
    void entryNotAnObject() {
        assertRejected(mutated("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", "[0,8]"),
                "tensor 'a'", "entry must be an object");
    }

    @Test
    void metadataNotAStringMap() {
        String header = "{\"__metadata__\":{\"format\":1}," + VALID.substring(1);
        assertRejected(write(dir, "md.safetensors", file(header, DATA)), "'__metadata__' value of 'format' must be a string");
    }

    @Test
    void metadataNotAnObject() {
        String header = "{\"__metadata__\":[\"pt\"]," + VALID.substring(1);
        assertRejected(write(dir, "md2.safetensors", file(header, DATA)), "'__metadata__' must be an object");
    }

    @Test
    void offsetsOutsideData() {
        assertRejected(mutated("[8,12]", "[8,16]"), "tensor 'b'", "outside the data buffer of 12 bytes");
    }

    @Test
    void beginAfterEnd() {
        assertRejected(mutated("[8,12]", "[12,8]"), "tensor 'b'", "begin > end");
    }

    @Test
    void overlappingTensors() {
        // 'b' moves onto 'a's bytes: [4,8) overlaps [0,8); the trailing 4 bytes would also be uncovered.
        assertRejected(mutated("[8,12]", "[4,8]"), "tensor 'b'", "overlap tensor 'a'");
    }

    @Test
    void holeBetweenTensors() {
        String header = VALID.replace("\"shape\":[4],\"data_offsets\":[8,12]", "\"shape\":[2],\"data_offsets\":[10,12]");
        assertRejected(write(dir, "hole.safetensors", file(header, DATA)), "tensor 'b'", "bytes [8, 10)", "holes");
    }

    @Test
    void trailingBytesNotCovered() {
        byte[] more = Arrays.copyOf(DATA, DATA.length + 4);
        assertRejected(write(dir, "tail.safetensors", file(VALID, more)), "bytes [12, 16) at the end", "fully covered");
    }

    @Test
    void shapeTimesDtypeSizeDiffersFromRange() {
        assertRejected(mutated("\"shape\":[4]", "\"shape\":[2,3]"), "tensor 'b'", "= 6 bytes", "span 4 bytes");
    }

    @Test
    void shapeByteSizeOverflows() {
        assertRejected(mutated("\"shape\":[4]", "\"shape\":[4294967296,4294967296]"), "tensor 'b'", "overflows");
    }

    @Test
    void negativeDimension() {
        assertRejected(mutated("\"shape\":[4]", "\"shape\":[-4]"), "tensor 'b'", "negative dimension -4");
    }

    @Test
    void unknownDtype() {
        assertRejected(mutated("\"I8\"", "\"Q4_0\""), "tensor 'b'", "unknown dtype 'Q4_0'");
    }

    @Test
    void duplicateTensorName() {
        assertRejected(mutated("\"b\":{", "\"a\":{"), "tensor 'a'", "duplicate tensor name");
    }

    @Test
    void duplicateKeyInsideEntry() {
        assertRejected(mutated("\"dtype\":\"I8\"", "\"dtype\":\"I8\",\"dtype\":\"U8\""), "tensor 'b'", "duplicate key 'dtype'");
    }

    @Test
    void duplicateMetadataKey() {
        String header = "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}," + VALID.substring(1);
        assertRejected(write(dir, "dm.safetensors", file(header, DATA)), "duplicate key 'k' in '__metadata__'");
    }

    @Test
    void missingFileIsASafetensorsException() {
        assertRejected(dir.resolve("absent.safetensors"), "does not exist");
    }

    @Test
    void directoryIsNotAFile() throws Exception {
        Path sub = Files.createDirectory(dir.resolve("sub.safetensors"));
        assertRejected(sub, "not a regular file");
    }
}
