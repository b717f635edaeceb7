package dev.qlora4j.lora.data;

import java.io.Closeable;
import java.io.IOException;
import java.io.Reader;
import java.nio.charset.CharacterCodingException;
import java.util.ArrayList;
import java.util.List;

/**
 * A streaming RFC 4180 reader: comma-separated fields, optionally enclosed in double quotes; inside quotes commas,
 * CR/LF and doubled quotes ({@code ""}) are data. Records end at CRLF, LF or a lone CR. Fields have no size limit.
 * Strict where the RFC is: a quote inside an unquoted field, or anything but a separator after a closing quote, is
 * an error naming line and column (1-based, counted in UTF-16 chars of the physical line). A leading BOM is skipped;
 * completely empty lines are skipped (as pandas does).
 */
public final class CsvReader implements Closeable {

    private static final int EOF = -1;

    private final Reader in;
    private final String source;
    private final char[] buf = new char[1 << 16];
    private int pos, len;
    private long line = 1, column = 1; // of the next char to read
    private long recordLine;           // where the current record began
    private final StringBuilder field = new StringBuilder();
    private boolean first = true;

    public CsvReader(Reader in, String source) {
        this.in = in;
        this.source = source;
    }

    /** The physical line the last record returned by {@link #next} started on. */
    public long recordLine() {
        return recordLine;
    }

    public String source() {
        return source;
    }

    /** The next record's fields, or null at end of input. */
    public List<String> next() throws IOException {
        if (first) {
            first = false;
            if (peek() == '\uFEFF') read();
        }
        while (true) {
            int c = peek();
            if (c == EOF) return null;
            if (c == '\n' || c == '\r') { // empty line
                readLineEnd();
                continue;
            }
            break;
        }
        recordLine = line;
        List<String> fields = new ArrayList<>();
        while (true) {
            boolean more = readField();
            fields.add(field.toString());
            if (!more) return fields;
        }
    }

    /** Reads one field into {@link #field}; true if a comma followed (another field comes). */
    private boolean readField() throws IOException {
        field.setLength(0);
        if (peek() == '"') {
            long openLine = line, openCol = column;
            read();
            while (true) {
                int c = read();
                if (c == EOF) throw DataException.at(source, openLine, openCol, "unterminated quoted field (no closing quote before end of file)");
                if (c == '"') {
                    if (peek() == '"') {
                        read();
                        field.append('"');
                    } else {
                        break;
                    }
                } else {
                    field.append((char) c);
                }
            }
            int c = peek();
            if (c == ',') {
                read();
                return true;
            }
            if (c == EOF) return false;
            if (c == '\n' || c == '\r') {
                readLineEnd();
                return false;
            }
            throw DataException.at(source, line, column, "malformed quoting: " + describe(c) + " after the closing quote of a field opened at line "
                    + openLine + ", column " + openCol + " (a quote inside a quoted field must be doubled: \"\")");
        }
        while (true) {
            int c = peek();
            switch (c) {
                case EOF -> {
                    return false;
                }
                case ',' -> {
                    read();
                    return true;
                }
                case '\n', '\r' -> {
                    readLineEnd();
                    return false;
                }
                case '"' -> throw DataException.at(source, line, column,
                        "malformed quoting: a quote inside an unquoted field (enclose the field in quotes and double the quote: \"\")");
                default -> field.append((char) read());
            }
        }
    }

    private void readLineEnd() throws IOException {
        int c = read();
        if (c == '\r' && peek() == '\n') read();
    }

    private static String describe(int c) {
        return Character.isISOControl(c) ? String.format("character U+%04X", c) : "'" + (char) c + "'";
    }

    private int peek() throws IOException {
        if (pos == len && !fill()) return EOF;
        return buf[pos];
    }

    private int read() throws IOException {
        if (pos == len && !fill()) return EOF;
        char c = buf[pos++];
        if (c == '\n' || (c == '\r' && peek() != '\n')) { // CRLF counts once, at its LF
            line++;
            column = 1;
        } else if (c != '\r') {
            column++;
        }
        return c;
    }

    private boolean fill() throws IOException {
        try {
            int n;
            do n = in.read(buf, 0, buf.length); while (n == 0);
            if (n < 0) {
                len = pos = 0;
                return false;
            }
            pos = 0;
            len = n;
            return true;
        } catch (CharacterCodingException e) {
            throw DataException.at(source, line, column, "not valid UTF-8 text (" + e + ")");
        }
    }

    @Override
    public void close() throws IOException {
        in.close();
    }
}
