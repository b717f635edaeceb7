package dev.qlora4j.quant.safetensors;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Collects tensors and writes one safetensors file.
 *
 * <p>Layout is the Python/Rust library's ({@code prepare} in {@code safetensors/src/tensor.rs}): tensors sorted by dtype
 * descending in the crate's enum order (U64, I64, F64, F32, U32, I32, BF16, F16, U16, I16, F8_E4M3, F8_E5M2, I8, U8,
 * BOOL: largest alignment first), then by name (UTF-8 bytes), packed back to back from offset 0. Header: compact JSON,
 * {@code __metadata__} first when non-empty with keys sorted by UTF-8 bytes (the crate's HashMap has no fixed order),
 * padded with spaces to a multiple of 8 so every tensor is aligned to its element size.
 *
 * <p>The data segments are referenced, not copied, until {@link #write}: they must stay alive until then. Writing
 * streams them through a {@link FileChannel} into {@code <name>.tmp-<random>} beside the target, forces it to disk
 * and renames it over the target atomically; on failure the temporary file is deleted and the target is untouched.
 */
public final class SafetensorsWriter {

    /** Storage order of the safetensors library: dtype descending (enum order), then name by UTF-8 bytes. */
    public static final Comparator<TensorInfo> STORAGE_ORDER = Comparator
            .comparing(TensorInfo::dtype, Comparator.reverseOrder())
            .thenComparing(TensorInfo::name, SafetensorsWriter::compareUtf8);

    private static final int STAGING_BYTES = 1 << 20;
    private static final long DIRECT_CHUNK = 1L << 30;

    private record Pending(TensorInfo info, MemorySegment data) {
    }

    private final Map<String, Pending> tensors = new HashMap<>();
    private final Map<String, String> metadata = new TreeMap<>(SafetensorsWriter::compareUtf8);

    /** Adds {@code data} (little-endian, row-major, exactly shape × dtype size bytes) as tensor {@code name}. */
    public SafetensorsWriter add(String name, DType dtype, long[] shape, MemorySegment data) {
        checkText("tensor name", name);
        if (name.equals(SafetensorsHeader.METADATA_KEY)) throw rejected(name, "the name is reserved for the metadata map");
        if (dtype == null) throw rejected(name, "dtype is null");
        if (tensors.containsKey(name)) throw rejected(name, "duplicate tensor name");
        long expected = dtype.bytes();
        for (long d : shape) {
            if (d < 0) throw rejected(name, "negative dimension " + d + " in shape " + Arrays.toString(shape));
            try {
                expected = Math.multiplyExact(expected, d);
            } catch (ArithmeticException e) {
                throw rejected(name, "shape " + Arrays.toString(shape) + " overflows 64-bit byte size");
            }
        }
        if (data.byteSize() != expected) {
            throw rejected(name, "shape " + Arrays.toString(shape) + " × " + dtype + " needs " + expected + " bytes, data has "
                    + data.byteSize());
        }
        tensors.put(name, new Pending(new TensorInfo(name, dtype, shape.clone(), 0, expected), data));
        return this;
    }

    /** Adds raw little-endian bytes. The array is wrapped, not copied. */
    public SafetensorsWriter add(String name, DType dtype, long[] shape, byte[] data) {
        return add(name, dtype, shape, MemorySegment.ofArray(data));
    }

    /** Adds {@code values} converted to {@code dtype}: F32, F16 or BF16 (round to nearest even). */
    public SafetensorsWriter add(String name, DType dtype, long[] shape, float[] values) {
        if (!FloatTensorCodec.isFloat(dtype)) throw rejected(name, "float values can be stored as F32, F16 or BF16, not " + dtype);
        return add(name, dtype, shape, FloatTensorCodec.encode(dtype, values));
    }

    /** Adds {@code values} as F32. */
    public SafetensorsWriter add(String name, long[] shape, float[] values) {
        return add(name, DType.F32, shape, values);
    }

    /** Adds {@code values} as I32. */
    public SafetensorsWriter add(String name, long[] shape, int[] values) {
        MemorySegment bytes = MemorySegment.ofArray(new byte[Math.multiplyExact(values.length, 4)]);
        MemorySegment.copy(values, 0, bytes, ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0, values.length);
        return add(name, DType.I32, shape, bytes);
    }

    /** Adds tensor {@code name} of {@code source} unchanged (its segment is referenced: keep {@code source} open). */
    public SafetensorsWriter copyFrom(TensorStore source, String name) {
        TensorInfo info = source.info(name);
        return add(name, info.dtype(), info.shape(), source.segment(name));
    }

    /** Sets one {@code __metadata__} entry. */
    public SafetensorsWriter metadata(String key, String value) {
        checkText("metadata key", key);
        checkText("metadata value of '" + key + "'", value);
        metadata.put(key, value);
        return this;
    }

    public SafetensorsWriter metadata(Map<String, String> entries) {
        entries.forEach(this::metadata);
        return this;
    }

    /** Header entries in storage order with their final offsets. */
    public List<TensorInfo> layout() {
        List<TensorInfo> sorted = new ArrayList<>();
        for (Pending p : tensors.values()) sorted.add(p.info());
        sorted.sort(STORAGE_ORDER);
        List<TensorInfo> out = new ArrayList<>(sorted.size());
        long offset = 0;
        for (TensorInfo i : sorted) {
            out.add(new TensorInfo(i.name(), i.dtype(), i.shape().clone(), offset, offset + i.byteSize()));
            offset += i.byteSize();
        }
        return out;
    }

    /** Writes the file atomically to {@code target} (replacing it); throws {@link SafetensorsException} naming it. */
    public void write(Path target) {
        List<TensorInfo> layout = layout();
        byte[] header = HeaderJson.padded(metadata, layout);
        Path absolute = target.toAbsolutePath();
        Path dir = absolute.getParent();
        Path tmp = dir.resolve(absolute.getFileName() + ".tmp-" + Long.toHexString(ThreadLocalRandom.current().nextLong()));
        try {
            try (FileChannel out = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                writeFully(out, ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, header.length));
                writeFully(out, ByteBuffer.wrap(header));
                for (TensorInfo info : layout) writeSegment(out, tensors.get(info.name()).data());
                out.force(true);
            }
            Files.move(tmp, absolute, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            forceDirectory(dir);
        } catch (IOException | RuntimeException e) {
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw new SafetensorsException(target + ": cannot write safetensors file: " + e, e);
        }
    }

    private static void writeSegment(FileChannel out, MemorySegment data) throws IOException {
        long size = data.byteSize();
        if (data.isNative()) {
            for (long off = 0; off < size; off += DIRECT_CHUNK) {
                writeFully(out, data.asSlice(off, Math.min(DIRECT_CHUNK, size - off)).asByteBuffer());
            }
            return;
        }
        ByteBuffer staging = ByteBuffer.allocateDirect((int) Math.min(STAGING_BYTES, Math.max(size, 1)));
        MemorySegment stagingSegment = MemorySegment.ofBuffer(staging);
        for (long off = 0; off < size; off += staging.capacity()) {
            int n = (int) Math.min(staging.capacity(), size - off);
            MemorySegment.copy(data, off, stagingSegment, 0, n);
            writeFully(out, staging.clear().limit(n));
        }
    }

    private static void writeFully(FileChannel out, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) out.write(buffer);
    }

    /** Makes the rename durable where the platform allows fsync on a directory (Linux, macOS); best effort elsewhere. */
    private static void forceDirectory(Path dir) {
        try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
            d.force(true);
        } catch (IOException | UnsupportedOperationException ignored) {
            // Windows cannot open a directory as a channel; the rename itself is already atomic.
        }
    }

    private static void checkText(String what, String s) {
        if (s == null) throw new SafetensorsException(what + " is null");
        if (!StandardCharsets.UTF_8.newEncoder().canEncode(s)) {
            throw new SafetensorsException(what + " '" + s + "' is not valid Unicode (unpaired surrogate)");
        }
    }

    private static SafetensorsException rejected(String name, String problem) {
        return new SafetensorsException("tensor '" + name + "': " + problem);
    }

    static int compareUtf8(String a, String b) {
        return Arrays.compareUnsigned(a.getBytes(StandardCharsets.UTF_8), b.getBytes(StandardCharsets.UTF_8));
    }
}
