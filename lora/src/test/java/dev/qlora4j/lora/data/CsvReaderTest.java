package dev.qlora4j.lora.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.Reader;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;

class CsvReaderTest {

    static List<List<String>> readAll(String csv) throws IOException {
        return readAll(new StringReader(csv));
    }

    static List<List<String>> readAll(Reader r) throws IOException {
        List<List<String>> out = new ArrayList<>();
        try (CsvReader c = new CsvReader(r, "t.csv")) {
            List<String> rec;
            while ((rec = c.next()) != null) out.add(rec);
        }
        return out;
    }

    @Test
    void quotedFieldsKeepCommasQuotesAndLineBreaks() throws IOException {
        String csv = "a,b,c\r\n"
                + "\"x, y\",\"say \"\"hi\"\"\",\"line1\nline2\r\nline3\"\r\n"
                + "plain,,\"\"\n"
                + "\n"                       // empty line: skipped
                + "last,\"\"\"\",end";      // no final line break
        List<List<String>> rows = readAll(csv);
        assertEquals(List.of(
                List.of("a", "b", "c"),
                List.of("x, y", "say \"hi\"", "line1\nline2\r\nline3"),
                List.of("plain", "", ""),
                List.of("last", "\"", "end")), rows);
    }

    @Test
    void recordLinesCountPhysicalLinesInsideQuotedFields() throws IOException {
        String csv = "\uFEFFh1,h2\n\"a\nb\nc\",x\r\nnext,y\rlone-cr,z\n";
        try (CsvReader c = new CsvReader(new StringReader(csv), "t.csv")) {
            assertEquals(List.of("h1", "h2"), c.next()); // BOM skipped
            assertEquals(1, c.recordLine());
            assertEquals(List.of("a\nb\nc", "x"), c.next());
            assertEquals(2, c.recordLine());
            assertEquals(List.of("next", "y"), c.next());
            assertEquals(5, c.recordLine());
            assertEquals(List.of("lone-cr", "z"), c.next());
            assertEquals(6, c.recordLine());
            assertNull(c.next());
        }
    }

    @Test
    void trailingCommaMeansAnEmptyLastField() throws IOException {
        assertEquals(List.of(List.of("a", ""), List.of("", "")), readAll("a,\n,\n"));
    }

    @Test
    void fieldsFarLongerThan128KiBAndAcrossReadBuffers() throws IOException {
        StringBuilder big = new StringBuilder();
        for (int i = 0; big.length() < 300_000; i++) big.append("chunk ").append(i).append(", with \"quotes\"\nand lines; ");
        String field = big.toString();
        String csv = "id,text\n1,\"" + field.replace("\"", "\"\"") + "\"\n2,short\n";
        // a Reader that hands out odd-sized pieces, so quotes and CRLFs fall on buffer edges
        Reader dribble = new StringReader(csv) {
            @Override
            public int read(char[] cbuf, int off, int len) throws IOException {
                return super.read(cbuf, off, Math.min(len, 4093));
            }
        };
        List<List<String>> rows = readAll(dribble);
        assertEquals(3, rows.size());
        assertEquals(field, rows.get(1).get(1));
        assertEquals(List.of("2", "short"), rows.get(2));
    }

    @Test
    void realFileWithAFieldOver128KiB() throws Exception {
        Path file = SharedData.dir().resolve("awesome-chatgpt-prompts/prompts-full.csv");
        List<List<String>> rows = readAll(Files.newBufferedReader(file, StandardCharsets.UTF_8));
        assertEquals(1 + 1529, rows.size()); // counted with Python's csv module (field_size_limit raised)
        for (List<String> r : rows) assertEquals(5, r.size());
        List<String> socratic = rows.get(1199);
        assertEquals("Socratic Lens", socratic.get(0));
        byte[] utf8 = socratic.get(1).getBytes(StandardCharsets.UTF_8);
        assertTrue(utf8.length > 128 * 1024);
        assertEquals("16d50008f21a032526497f1c4e21782ca38c81943e752e805b3db7628a3adfc5",
                HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(utf8)));
    }

    @Test
    void unterminatedQuoteNamesWhereTheFieldOpened() {
        DataException e = assertThrows(DataException.class, () -> readAll("a,b\nok,\"never closed\nmore\n"));
        assertEquals("t.csv:2:4: unterminated quoted field (no closing quote before end of file)", e.getMessage());
    }

    @Test
    void quoteInsideAnUnquotedFieldIsMalformed() {
        DataException e = assertThrows(DataException.class, () -> readAll("a,b\nab\"c,d\n"));
        assertTrue(e.getMessage().startsWith("t.csv:2:3: malformed quoting: a quote inside an unquoted field"), e.getMessage());
    }

    @Test
    void textAfterAClosingQuoteIsMalformed() {
        DataException e = assertThrows(DataException.class, () -> readAll("a,b\n\"x\"y,z\n"));
        assertTrue(e.getMessage().startsWith("t.csv:2:4: malformed quoting: 'y' after the closing quote of a field opened at line 2, column 1"), e.getMessage());
    }
}
