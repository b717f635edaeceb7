package dev.qlora4j.runtime.tokenizer;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Bad or unsupported tokenizer files fail loudly, naming the file and the part. */
class TokenizerLoadErrorsTest {

    @TempDir
    Path dir;

    private static void assertMessage(Exception e, String... parts) {
        for (String p : parts) assertTrue(e.getMessage().contains(p), () -> "'" + e.getMessage() + "' lacks '" + p + "'");
    }

    @Test
    void emptyDirectoryNamesItself() {
        IOException e = assertThrows(IOException.class, () -> Tokenizers.load(dir));
        assertMessage(e, dir.toAbsolutePath().toString(), "tokenizer.json", "vocab.json + merges.txt");
        IOException missing = assertThrows(IOException.class, () -> Tokenizers.load(dir.resolve("nope")));
        assertMessage(missing, "nope");
    }

    @Test
    void vocabJsonWithoutMergesIsNotEnough() throws IOException {
        Files.writeString(dir.resolve("vocab.json"), "{\"a\": 0}");
        assertThrows(IOException.class, () -> Tokenizers.load(dir));
    }

    @Test
    void fallsBackToVocabAndMerges() throws IOException {
        Files.writeString(dir.resolve("vocab.json"), "{\"a\": 0, \"b\": 1, \"ab\": 2, \"Ġ\": 3}");
        Files.writeString(dir.resolve("merges.txt"), "#version: 0.2\na b\n");
        Tokenizer t = Tokenizers.load(dir);
        org.junit.jupiter.api.Assertions.assertArrayEquals(new int[] {2, 3, 0}, t.encode("ab a"));
    }

    @Test
    void badMerges() throws IOException {
        Files.writeString(dir.resolve("vocab.json"), "{\"a\": 0, \"b\": 1}");
        Files.writeString(dir.resolve("merges.txt"), "#version: 0.2\na b\n");
        assertMessage(assertThrows(IllegalArgumentException.class, () -> Tokenizers.load(dir)), "result not in vocab");
        Files.writeString(dir.resolve("merges.txt"), "a b c\n");
        assertMessage(assertThrows(IOException.class, () -> Tokenizers.load(dir)), "merges.txt:1");
    }

    @Test
    void brokenJsonNamesTheFile() throws IOException {
        Files.writeString(dir.resolve("tokenizer.json"), "{\"model\": {");
        assertMessage(assertThrows(IOException.class, () -> Tokenizers.load(dir)), "tokenizer.json", "not valid JSON");
    }

    @Test
    void unsupportedPartsAreNamed() throws IOException {
        ObjectNode wordPiece = BloomStyleTokenizerJsonTest.bloomStyleJson(false);
        ((ObjectNode) wordPiece.get("model")).put("type", "WordPiece");
        assertMessage(load(wordPiece), "WordPiece");

        ObjectNode metaspace = BloomStyleTokenizerJsonTest.bloomStyleJson(false);
        metaspace.putObject("pre_tokenizer").put("type", "Metaspace");
        assertMessage(load(metaspace), "Metaspace");

        ObjectNode splitOnly = BloomStyleTokenizerJsonTest.bloomStyleJson(false);
        ((com.fasterxml.jackson.databind.node.ArrayNode) splitOnly.get("pre_tokenizer").get("pretokenizers")).remove(1);
        assertMessage(load(splitOnly), "ByteLevel");

        ObjectNode fallback = BloomStyleTokenizerJsonTest.bloomStyleJson(false);
        ((ObjectNode) fallback.get("model")).put("byte_fallback", true);
        assertMessage(load(fallback), "byte_fallback");

        ObjectNode decoder = BloomStyleTokenizerJsonTest.bloomStyleJson(false);
        decoder.putObject("decoder").put("type", "WordPiece");
        assertMessage(load(decoder), "decoder WordPiece");
    }

    private IOException load(ObjectNode json) throws IOException {
        Files.writeString(dir.resolve("tokenizer.json"), new ObjectMapper().writeValueAsString(json));
        return assertThrows(IOException.class, () -> Tokenizers.load(dir));
    }
}
