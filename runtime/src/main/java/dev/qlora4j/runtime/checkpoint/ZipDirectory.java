package dev.qlora4j.runtime.checkpoint;

import dev.qlora4j.quant.safetensors.SafetensorsException;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The central directory of a zip file read straight from a mapped segment (zip64 included), so that stored entries
 * can be sliced without copying. Only what {@code torch.save} writes is needed: uncompressed (STORED) entries.
 */
final class ZipDirectory {

    /** One entry: {@code dataOffset} is where its bytes start in the file (after the local header and its extra). */
    record Entry(String name, int method, long compressedSize, long size, long localHeaderOffset, long dataOffset) {
        boolean stored() {
            return method == 0;
        }
    }

    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int EOCD = 0x06054b50, ZIP64_LOCATOR = 0x07064b50, ZIP64_EOCD = 0x06064b50;
    private static final int CENTRAL = 0x02014b50, LOCAL = 0x04034b50;
    private static final long FFFF = 0xFFFFL, FFFFFFFF = 0xFFFFFFFFL;

    private final Map<String, Entry> entries;

    private ZipDirectory(Map<String, Entry> entries) {
        this.entries = entries;
    }

    /** Entries by name, in central-directory order. */
    Map<String, Entry> entries() {
        return entries;
    }

    static boolean looksLikeZip(MemorySegment file) {
        return file.byteSize() >= 4 && file.get(U32, 0) == LOCAL;
    }

    static ZipDirectory read(MemorySegment file, String source) {
        long size = file.byteSize();
        long eocd = findEndRecord(file, source);
        long count = u16(file, eocd + 10);
        long cdSize = u32(file, eocd + 12);
        long cdOffset = u32(file, eocd + 16);
        if (count == FFFF || cdSize == FFFFFFFF || cdOffset == FFFFFFFF) {
            long loc = eocd - 20;
            if (loc < 0 || file.get(U32, loc) != ZIP64_LOCATOR)
                throw new SafetensorsException(source + ": zip64 fields without a zip64 locator (truncated zip?)");
            long z = file.get(U64, loc + 8);
            if (z < 0 || z + 56 > size || file.get(U32, z) != ZIP64_EOCD)
                throw new SafetensorsException(source + ": zip64 end record missing at offset " + z);
            count = file.get(U64, z + 32);
            cdSize = file.get(U64, z + 40);
            cdOffset = file.get(U64, z + 48);
        }
        if (cdOffset < 0 || cdSize < 0 || cdOffset + cdSize > size)
            throw new SafetensorsException(source + ": central directory [" + cdOffset + ", +" + cdSize
                    + ") lies outside the file (" + size + " bytes; truncated zip?)");
        Map<String, Entry> out = new LinkedHashMap<>();
        long p = cdOffset, end = cdOffset + cdSize;
        for (long i = 0; i < count; i++) {
            if (p + 46 > end || file.get(U32, p) != CENTRAL)
                throw new SafetensorsException(source + ": central directory entry " + i + " is malformed at offset "
                        + p);
            int flags = u16(file, p + 8);
            int method = u16(file, p + 10);
            long csize = u32(file, p + 20);
            long usize = u32(file, p + 24);
            int nameLen = u16(file, p + 28), extraLen = u16(file, p + 30), commentLen = u16(file, p + 32);
            long local = u32(file, p + 42);
            if (p + 46 + nameLen + extraLen + commentLen > end)
                throw new SafetensorsException(source + ": central directory entry " + i + " runs past the directory");
            String name = new String(file.asSlice(p + 46, nameLen).toArray(ValueLayout.JAVA_BYTE),
                    StandardCharsets.UTF_8);
            // zip64 extra field (id 1): the 64-bit values present are those whose 32-bit fields are all ones
            long x = p + 46 + nameLen, xend = x + extraLen;
            while (x + 4 <= xend) {
                int id = u16(file, x), len = u16(file, x + 2);
                if (id == 1) {
                    long q = x + 4, qend = Math.min(x + 4 + len, xend);
                    if (usize == FFFFFFFF && q + 8 <= qend) { usize = file.get(U64, q); q += 8; }
                    if (csize == FFFFFFFF && q + 8 <= qend) { csize = file.get(U64, q); q += 8; }
                    if (local == FFFFFFFF && q + 8 <= qend) { local = file.get(U64, q); }
                }
                x += 4 + len;
            }
            if ((flags & 1) != 0) throw new SafetensorsException(source + ": zip entry '" + name + "' is encrypted");
            if (local < 0 || local + 30 > size || file.get(U32, local) != LOCAL)
                throw new SafetensorsException(source + ": local header of zip entry '" + name + "' missing at offset "
                        + local + " (truncated or corrupt zip)");
            long data = local + 30 + u16(file, local + 26) + u16(file, local + 28);
            if (csize < 0 || data + csize > size)
                throw new SafetensorsException(source + ": zip entry '" + name + "' needs bytes [" + data + ", "
                        + (data + csize) + ") but the file has " + size + " (truncated)");
            out.put(name, new Entry(name, method, csize, usize, local, data));
            p += 46 + nameLen + extraLen + commentLen;
        }
        return new ZipDirectory(Collections.unmodifiableMap(out));
    }

    private static long findEndRecord(MemorySegment file, String source) {
        long size = file.byteSize();
        long lowest = Math.max(0, size - 22 - 0xFFFF);
        for (long p = size - 22; p >= lowest; p--) {
            if (file.get(U32, p) == EOCD && p + 22 + u16(file, p + 20) <= size) return p;
        }
        throw new SafetensorsException(source + ": no zip end-of-central-directory record (truncated or not a zip)");
    }

    private static int u16(MemorySegment f, long at) {
        return f.get(U16, at) & 0xFFFF;
    }

    private static long u32(MemorySegment f, long at) {
        return f.get(U32, at) & 0xFFFFFFFFL;
    }
}
