package dev.qlora4j.quant.safetensors;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One safetensors file, mapped once read-only into a shared {@link Arena} owned by this object, so any thread may read
 * the segments until {@link #close()}. Tensors are zero-copy slices of that mapping. The whole header is validated on
 * {@link #open}: a file that opens never leads to an out-of-bounds read.
 *
 * <p>Slices start at {@code 8 + N + begin}; writers pad {@code N} to a multiple of 8 but other files need not, so read
 * them with unaligned little-endian layouts (e.g. {@code JAVA_FLOAT_UNALIGNED.withOrder(LITTLE_ENDIAN)}).
 */
public final class SafetensorsFile implements TensorStore {

    private static final ValueLayout.OfLong U64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private record Tensor(TensorInfo info, MemorySegment segment) {
    }

    private final Path path;
    private final Arena arena;
    private final long headerLength;
    private final Map<String, String> metadata;
    private final Map<String, Tensor> tensors; // storage order
    private final List<String> names;
    private volatile boolean closed;

    private SafetensorsFile(Path path, Arena arena, long headerLength, Map<String, String> metadata,
                            Map<String, Tensor> tensors) {
        this.path = path;
        this.arena = arena;
        this.headerLength = headerLength;
        this.metadata = metadata;
        this.tensors = tensors;
        this.names = List.copyOf(tensors.keySet());
    }

    /** Maps and validates {@code path}; throws {@link SafetensorsException} naming the file (and tensor) when invalid. */
    public static SafetensorsFile open(Path path) {
        if (!Files.exists(path)) throw SafetensorsException.inFile(path, "file does not exist");
        if (!Files.isRegularFile(path)) throw SafetensorsException.inFile(path, "not a regular file");
        Arena arena = Arena.ofShared();
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = channel.size();
            if (size < 8) {
                throw SafetensorsException.inFile(path, "file is " + size + " bytes, too short for the 8-byte header length");
            }
            MemorySegment file = channel.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            long n = file.get(U64_LE, 0);
            if (n < 0 || n > SafetensorsHeader.MAX_HEADER_BYTES) {
                throw SafetensorsException.inFile(path, "header length " + Long.toUnsignedString(n) + " is over the limit of "
                        + SafetensorsHeader.MAX_HEADER_BYTES + " bytes");
            }
            if (n > size - 8) {
                throw SafetensorsException.inFile(path, "header length " + n + " runs past the end of the file ("
                        + size + " bytes; truncated?)");
            }
            String json = SafetensorsHeader.decodeUtf8(path, file.asSlice(8, n).toArray(ValueLayout.JAVA_BYTE));
            SafetensorsHeader header = SafetensorsHeader.parse(path, json);
            MemorySegment data = file.asSlice(8 + n);
            List<TensorInfo> ordered = DataBufferLayout.validate(path, header.entries(), data.byteSize());
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (TensorInfo info : ordered) {
                tensors.put(info.name(), new Tensor(info, data.asSlice(info.begin(), info.byteSize())));
            }
            return new SafetensorsFile(path, arena, n, header.metadata(), tensors);
        } catch (IOException e) {
            arena.close();
            throw new SafetensorsException(path + ": cannot read: " + e, e);
        } catch (RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    public Path path() {
        return path;
    }

    /** The {@code __metadata__} map of the header (empty when absent), in header order. */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** N, the header's byte length; the data buffer starts at {@code 8 + N}. */
    public long headerLength() {
        return headerLength;
    }

    /** All header entries in storage order. */
    public List<TensorInfo> tensors() {
        List<TensorInfo> out = new ArrayList<>(tensors.size());
        for (Tensor t : tensors.values()) out.add(copy(t.info()));
        return out;
    }

    @Override
    public List<String> names() {
        return names;
    }

    @Override
    public boolean contains(String name) {
        return tensors.containsKey(name);
    }

    @Override
    public TensorInfo info(String name) {
        return copy(tensor(name).info());
    }

    @Override
    public MemorySegment segment(String name) {
        Tensor t = tensor(name);
        if (closed) throw SafetensorsException.forTensor(path, name, "file is closed");
        return t.segment();
    }

    @Override
    public Path fileOf(String name) {
        tensor(name);
        return path;
    }

    @Override
    public String source() {
        return path.toString();
    }

    @Override
    public float[] readFloats(String name) {
        Tensor t = tensor(name);
        if (closed) throw SafetensorsException.forTensor(path, name, "file is closed");
        return FloatTensorCodec.decode(path, t.info(), t.segment());
    }

    /** Unmaps the file; segments handed out become inaccessible. Idempotent. */
    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            arena.close();
        }
    }

    @Override
    public String toString() {
        return "SafetensorsFile[" + path + ", " + tensors.size() + " tensors]";
    }

    private Tensor tensor(String name) {
        Tensor t = tensors.get(name);
        if (t == null) throw SafetensorsException.forTensor(path, name, "no such tensor in this file");
        return t;
    }

    private static TensorInfo copy(TensorInfo i) {
        return new TensorInfo(i.name(), i.dtype(), i.shape().clone(), i.begin(), i.end());
    }
}
