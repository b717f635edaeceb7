package dev.qlora4j.runtime.checkpoint;

import dev.qlora4j.quant.safetensors.DType;
import dev.qlora4j.quant.safetensors.FloatTensorCodec;
import dev.qlora4j.quant.safetensors.SafetensorsException;
import dev.qlora4j.quant.safetensors.TensorInfo;
import dev.qlora4j.quant.safetensors.TensorStore;
import dev.qlora4j.runtime.checkpoint.RestrictedUnpickler.Global;
import dev.qlora4j.runtime.checkpoint.RestrictedUnpickler.Tuple;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.math.BigInteger;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A {@code pytorch_model.bin} state_dict, memory-mapped; tensors are zero-copy slices of the file. Reads both
 * {@code torch.save} layouts:
 * <ul>
 *   <li>zip (torch ≥ 1.6): {@code <archive>/data.pkl} plus one STORED record {@code <archive>/data/<key>} per storage;
 *       the central directory is parsed here, and each record's bytes start after its local header;</li>
 *   <li>legacy (torch &lt; 1.6): five pickles (magic, protocol 1001, sys_info, the state_dict, the sorted storage
 *       keys) followed, per key, by an int64 element count and the storage's raw bytes.</li>
 * </ul>
 * The pickle goes through {@link RestrictedUnpickler}: only {@link #ALLOWED_GLOBALS} may be named and nothing is ever
 * called, so a malicious file is refused, not run. {@link TensorInfo#begin()}/{@code end()} are absolute offsets in
 * the file. Names are in the state_dict's order. Tensors must be contiguous and little-endian.
 */
public final class PytorchBinStore implements TensorStore {

    private static final BigInteger LEGACY_MAGIC = new BigInteger("1950a86a20f9469cfc6c", 16);
    private static final long LEGACY_PROTOCOL = 1001;
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Storage classes a state_dict may name, with the dtype of their elements. */
    private static final Map<String, DType> STORAGE_TYPES = Map.ofEntries(
            Map.entry("torch.FloatStorage", DType.F32), Map.entry("torch.HalfStorage", DType.F16),
            Map.entry("torch.BFloat16Storage", DType.BF16), Map.entry("torch.DoubleStorage", DType.F64),
            Map.entry("torch.LongStorage", DType.I64), Map.entry("torch.IntStorage", DType.I32),
            Map.entry("torch.ShortStorage", DType.I16), Map.entry("torch.ByteStorage", DType.U8),
            Map.entry("torch.CharStorage", DType.I8), Map.entry("torch.BoolStorage", DType.BOOL),
            Map.entry("torch.UntypedStorage", DType.U8));

    /** {@code torch.<dtype>} globals (pickled by {@code _rebuild_tensor_v3}). */
    private static final Map<String, DType> TORCH_DTYPES = Map.ofEntries(
            Map.entry("torch.float32", DType.F32), Map.entry("torch.float16", DType.F16),
            Map.entry("torch.bfloat16", DType.BF16), Map.entry("torch.float64", DType.F64),
            Map.entry("torch.int64", DType.I64), Map.entry("torch.int32", DType.I32),
            Map.entry("torch.int16", DType.I16), Map.entry("torch.uint8", DType.U8),
            Map.entry("torch.int8", DType.I8), Map.entry("torch.bool", DType.BOOL));

    private static final String ORDERED_DICT = "collections.OrderedDict";
    private static final String REBUILD_V2 = "torch._utils._rebuild_tensor_v2";
    private static final String REBUILD_V3 = "torch._utils._rebuild_tensor_v3";
    private static final String REBUILD_PARAMETER = "torch._utils._rebuild_parameter";
    private static final String REBUILD_PARAMETER_STATE = "torch._utils._rebuild_parameter_with_state";

    /** Every global a pickle may name; anything else is refused when it is read. */
    public static final Set<String> ALLOWED_GLOBALS;

    static {
        Set<String> s = new LinkedHashSet<>(List.of(ORDERED_DICT, REBUILD_V2, REBUILD_V3, REBUILD_PARAMETER,
                REBUILD_PARAMETER_STATE));
        s.addAll(STORAGE_TYPES.keySet());
        s.addAll(TORCH_DTYPES.keySet());
        ALLOWED_GLOBALS = Collections.unmodifiableSet(s);
    }

    /** A persistent id: storage {@code key} of {@code numel} elements, possibly a legacy view at {@code offset}. */
    private record StorageRef(String key, DType dtype, long numel, long elementOffset) {}

    private record TensorRef(StorageRef storage, long offset, long[] shape, long[] stride, DType dtype) {}

    /** Bytes of one storage in the file. */
    private record Region(long offset, long bytes) {}

    private final Path file;
    private final String source;
    private final Arena arena;
    private final MemorySegment mapped;
    private final Map<String, TensorInfo> tensors;
    private final List<String> names;

    private PytorchBinStore(Path file, Arena arena, MemorySegment mapped, Map<String, TensorInfo> tensors) {
        this.file = file;
        this.source = file.toString();
        this.arena = arena;
        this.mapped = mapped;
        this.tensors = tensors;
        this.names = List.copyOf(tensors.keySet());
    }

    /** Maps {@code file} and indexes its tensors; throws {@link SafetensorsException} naming the file when invalid. */
    public static PytorchBinStore open(Path file) {
        String source = file.toString();
        Arena arena = Arena.ofShared();
        try {
            MemorySegment mapped;
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
                long size = ch.size();
                if (size == 0) throw new SafetensorsException(source + ": empty file, not a PyTorch checkpoint");
                mapped = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            }
            Map<String, TensorInfo> tensors = new Parser(mapped, source).parse();
            return new PytorchBinStore(file, arena, mapped, tensors);
        } catch (IOException e) {
            arena.close();
            throw new SafetensorsException(source + ": cannot read (" + e.getMessage() + ")", e);
        } catch (ArithmeticException e) {
            arena.close();
            throw new SafetensorsException(source + ": sizes or offsets overflow 64 bits (corrupt file)", e);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
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
        TensorInfo t = tensors.get(name);
        if (t == null) throw new SafetensorsException(source + ": no tensor named '" + name + "'");
        return t;
    }

    @Override
    public MemorySegment segment(String name) {
        TensorInfo t = info(name);
        return mapped.asSlice(t.begin(), t.byteSize());
    }

    @Override
    public Path fileOf(String name) {
        info(name);
        return file;
    }

    @Override
    public String source() {
        return source;
    }

    @Override
    public float[] readFloats(String name) {
        return FloatTensorCodec.decode(file, info(name), segment(name));
    }

    @Override
    public void close() {
        arena.close();
    }

    @Override
    public String toString() {
        return "PytorchBinStore[" + source + ", " + names.size() + " tensors]";
    }

    /** One pass over the file: pickle(s), storage records, then tensor validation. */
    private static final class Parser implements RestrictedUnpickler.Reducer {
        private final MemorySegment file;
        private final String source;
        private String record; // record being unpickled, for messages
        /** Root storages by key, as first seen in a persistent id (dtype, element count). */
        private final Map<String, StorageRef> roots = new LinkedHashMap<>();

        Parser(MemorySegment file, String source) {
            this.file = file;
            this.source = source;
            this.record = source;
        }

        Map<String, TensorInfo> parse() {
            if (ZipDirectory.looksLikeZip(file)) return parseZip();
            if ((file.get(ValueLayout.JAVA_BYTE, 0) & 0xFF) == 0x80) return parseLegacy();
            if (file.byteSize() > 262 && "ustar".equals(ascii(257, 5)))
                throw new SafetensorsException(source + ": tar-format torch checkpoint (torch < 0.4) is not supported;"
                        + " re-save it with a recent torch.save");
            throw new SafetensorsException(source + ": not a PyTorch checkpoint (neither a torch.save zip archive nor"
                    + " a legacy pickle)");
        }

        // ---- zip layout

        private Map<String, TensorInfo> parseZip() {
            ZipDirectory zip = ZipDirectory.read(file, source);
            String prefix = null;
            for (String n : zip.entries().keySet()) {
                int slash = n.indexOf('/');
                if (slash > 0 && n.indexOf('/', slash + 1) < 0 && n.endsWith("/data.pkl")) {
                    prefix = n.substring(0, slash + 1);
                    break;
                }
            }
            if (prefix == null)
                throw new SafetensorsException(source + ": zip archive has no '<archive>/data.pkl' record, so it was not"
                        + " written by torch.save");
            if (zip.entries().containsKey(prefix + "constants.pkl"))
                throw new SafetensorsException(source + ": a TorchScript archive (torch.jit.save), not a state_dict");
            ZipDirectory.Entry order = zip.entries().get(prefix + "byteorder");
            if (order != null) {
                String bo = new String(storedBytes(order), StandardCharsets.US_ASCII).trim();
                if (!bo.equals("little"))
                    throw new SafetensorsException(source + ": byteorder '" + bo + "' (only little-endian is read)");
            }
            ZipDirectory.Entry pkl = zip.entries().get(prefix + "data.pkl");
            requireStored(pkl);
            record = source + "!" + pkl.name();
            Object root = new RestrictedUnpickler(file, pkl.dataOffset(), pkl.dataOffset() + pkl.size(), record,
                    ALLOWED_GLOBALS, this).load();
            Map<String, Region> regions = new HashMap<>();
            for (StorageRef s : roots.values()) {
                String name = prefix + "data/" + s.key();
                ZipDirectory.Entry e = zip.entries().get(name);
                if (e == null)
                    throw new SafetensorsException(source + ": missing storage record '" + name + "' (referenced by "
                            + pkl.name() + ")");
                requireStored(e);
                regions.put(s.key(), new Region(e.dataOffset(), e.size()));
            }
            return tensors(root, regions);
        }

        private void requireStored(ZipDirectory.Entry e) {
            if (!e.stored())
                throw new SafetensorsException(source + ": zip entry '" + e.name() + "' is compressed (method "
                        + e.method() + "); torch.save writes entries uncompressed (STORED), which is what lets"
                        + " tensors be mapped without copying — re-save the file with torch.save");
            if (e.compressedSize() != e.size())
                throw new SafetensorsException(source + ": stored zip entry '" + e.name() + "' has compressed size "
                        + e.compressedSize() + " != size " + e.size());
        }

        private byte[] storedBytes(ZipDirectory.Entry e) {
            requireStored(e);
            return file.asSlice(e.dataOffset(), e.size()).toArray(ValueLayout.JAVA_BYTE);
        }

        // ---- legacy layout

        private Map<String, TensorInfo> parseLegacy() {
            long end = file.byteSize();
            RestrictedUnpickler magic = plain(0, "magic number");
            Object m = magic.load();
            if (!(m instanceof BigInteger b) || !b.equals(LEGACY_MAGIC))
                throw new SafetensorsException(source + ": starts with a pickle but not torch's magic number "
                        + "(got " + RestrictedUnpickler.describe(m) + "); not a torch.save file");
            RestrictedUnpickler proto = plain(magic.position(), "protocol version");
            Object v = proto.load();
            if (!(v instanceof Long l) || l != LEGACY_PROTOCOL)
                throw new SafetensorsException(source + ": legacy protocol version " + RestrictedUnpickler.describe(v)
                        + " (expected 1001)");
            RestrictedUnpickler sys = plain(proto.position(), "sys_info");
            if (sys.load() instanceof Map<?, ?> info && Boolean.FALSE.equals(info.get("little_endian")))
                throw new SafetensorsException(source + ": saved on a big-endian machine; only little-endian is read");
            record = source + " (state_dict pickle)";
            RestrictedUnpickler body = new RestrictedUnpickler(file, sys.position(), end, record, ALLOWED_GLOBALS, this);
            Object root = body.load();
            RestrictedUnpickler keysPickle = plain(body.position(), "storage key list");
            Object keys = keysPickle.load();
            if (!(keys instanceof List<?> keyList))
                throw new SafetensorsException(source + ": storage key list is " + RestrictedUnpickler.describe(keys));
            Map<String, Region> regions = new HashMap<>();
            long p = keysPickle.position();
            for (Object k : keyList) {
                if (!(k instanceof String key))
                    throw new SafetensorsException(source + ": storage key " + RestrictedUnpickler.describe(k));
                StorageRef s = roots.get(key);
                if (s == null)
                    throw new SafetensorsException(source + ": storage '" + key + "' is listed but no tensor uses it");
                if (p + 8 > end)
                    throw new SafetensorsException(source + ": truncated: storage '" + key + "' record header at "
                            + p + " is past the end (" + end + " bytes)");
                long numel = file.get(I64, p);
                if (numel != s.numel())
                    throw new SafetensorsException(source + ": storage '" + key + "' holds " + numel
                            + " elements in the file but " + s.numel() + " in its persistent id");
                long bytes = Math.multiplyExact(numel, s.dtype().bytes());
                if (Math.addExact(p + 8, bytes) > end)
                    throw new SafetensorsException(source + ": truncated: storage '" + key + "' needs bytes ["
                            + (p + 8) + ", " + (p + 8 + bytes) + ") but the file has " + end);
                regions.put(key, new Region(p + 8, bytes));
                p += 8 + bytes;
            }
            for (String key : roots.keySet())
                if (!regions.containsKey(key))
                    throw new SafetensorsException(source + ": missing storage record '" + key
                            + "' (used by a tensor, absent from the storage list)");
            return tensors(root, regions);
        }

        private RestrictedUnpickler plain(long at, String what) {
            return new RestrictedUnpickler(file, at, file.byteSize(), source + " (" + what + " pickle)", Set.of(),
                    null);
        }

        // ---- reducer: builds records, never calls anything

        @Override
        public Object reduce(Global callable, Tuple args) {
            String fn = callable.qualified();
            return switch (fn) {
                case ORDERED_DICT -> {
                    if (args.size() != 0) throw bad(fn + " with arguments");
                    yield new LinkedHashMap<>();
                }
                case REBUILD_V2 -> rebuild(args, 6, 7, null, fn);
                case REBUILD_V3 -> {
                    if (args.size() < 7) throw bad(fn + " with " + args.size() + " arguments");
                    if (!(args.get(6) instanceof Global g) || !TORCH_DTYPES.containsKey(g.qualified()))
                        throw bad(fn + " dtype argument " + RestrictedUnpickler.describe(args.get(6)));
                    yield rebuild(args, 7, 8, TORCH_DTYPES.get(g.qualified()), fn);
                }
                case REBUILD_PARAMETER, REBUILD_PARAMETER_STATE -> {
                    if (args.size() < 3 || !(args.get(0) instanceof TensorRef t))
                        throw bad(fn + " without a tensor argument");
                    yield t;
                }
                default -> throw new UnsafePickleException(record + ": refused pickle: REDUCE of '" + fn
                        + "' (not a tensor or dict builder); nothing was executed");
            };
        }

        private TensorRef rebuild(Tuple a, int minArgs, int maxArgs, DType dtypeOverride, String fn) {
            if (a.size() < minArgs || a.size() > maxArgs) throw bad(fn + " with " + a.size() + " arguments");
            if (!(a.get(0) instanceof StorageRef s)) throw bad(fn + " storage argument is "
                    + RestrictedUnpickler.describe(a.get(0)));
            long offset = nonNegative(a.get(1), fn + " storage_offset");
            long[] shape = longs(a.get(2), fn + " size");
            long[] stride = longs(a.get(3), fn + " stride");
            if (shape.length != stride.length)
                throw bad(fn + " size has " + shape.length + " dims but stride has " + stride.length);
            if (a.get(5) instanceof Map<?, ?> hooks && !hooks.isEmpty())
                throw bad(fn + " with backward hooks");
            return new TensorRef(s, offset, shape, stride, dtypeOverride == null ? s.dtype() : dtypeOverride);
        }

        @Override
        public Object persistentLoad(Object pid) {
            if (!(pid instanceof Tuple t) || t.size() < 5 || !"storage".equals(t.get(0)))
                throw new UnsafePickleException(record + ": refused pickle: persistent id "
                        + RestrictedUnpickler.describe(pid) + " (only ('storage', …) is accepted)");
            if (!(t.get(1) instanceof Global g) || !STORAGE_TYPES.containsKey(g.qualified()))
                throw bad("persistent id storage type " + RestrictedUnpickler.describe(t.get(1)));
            DType dtype = STORAGE_TYPES.get(g.qualified());
            if (!(t.get(2) instanceof String key)) throw bad("storage key " + RestrictedUnpickler.describe(t.get(2)));
            long numel = nonNegative(t.get(4), "storage numel");
            StorageRef root = new StorageRef(key, dtype, numel, 0);
            StorageRef seen = roots.putIfAbsent(key, root);
            if (seen != null) {
                if (seen.dtype() != dtype || seen.numel() != numel)
                    throw bad("storage '" + key + "' referenced as " + seen.dtype() + "×" + seen.numel() + " and "
                            + dtype + "×" + numel);
                root = seen;
            }
            if (t.size() == 5) return root;
            if (t.size() != 6) throw bad("persistent id with " + t.size() + " fields");
            if (t.get(5) == null) return root;
            // legacy view: (view_key, offset, view_size) in elements of the root storage
            if (!(t.get(5) instanceof Tuple view) || view.size() != 3) throw bad("storage view metadata "
                    + RestrictedUnpickler.describe(t.get(5)));
            long viewOffset = nonNegative(view.get(1), "view offset");
            long viewSize = nonNegative(view.get(2), "view size");
            if (Math.addExact(viewOffset, viewSize) > numel)
                throw bad("storage view [" + viewOffset + ", +" + viewSize + ") outside storage '" + key + "' of "
                        + numel);
            return new StorageRef(key, dtype, viewSize, viewOffset);
        }

        // ---- tensors

        private Map<String, TensorInfo> tensors(Object root, Map<String, Region> regions) {
            if (!(root instanceof Map<?, ?> dict))
                throw new SafetensorsException(source + ": top-level object is " + RestrictedUnpickler.describe(root)
                        + ", not a state_dict");
            Map<String, TensorInfo> out = new LinkedHashMap<>();
            for (Map.Entry<?, ?> e : dict.entrySet()) {
                if (!(e.getKey() instanceof String name))
                    throw new SafetensorsException(source + ": state_dict key " + RestrictedUnpickler.describe(e.getKey())
                            + " is not a string");
                if (!(e.getValue() instanceof TensorRef t))
                    throw new SafetensorsException(source + ": state_dict entry '" + name + "' is "
                            + RestrictedUnpickler.describe(e.getValue()) + ", not a tensor (nested checkpoints are not"
                            + " read)");
                out.put(name, tensorInfo(name, t, regions.get(t.storage().key())));
            }
            return Collections.unmodifiableMap(out);
        }

        private TensorInfo tensorInfo(String name, TensorRef t, Region region) {
            StorageRef s = t.storage();
            long storageBytes = Math.multiplyExact(s.numel(), s.dtype().bytes());
            long storageStart = region.offset() + Math.multiplyExact(s.elementOffset(), s.dtype().bytes());
            if (Math.addExact(Math.multiplyExact(s.elementOffset(), s.dtype().bytes()), storageBytes) > region.bytes())
                throw new SafetensorsException(source + ": storage '" + s.key() + "' of tensor '" + name + "' needs "
                        + storageBytes + " bytes but its record holds " + region.bytes());
            long numel = 1;
            long expected = 1;
            for (int i = t.shape().length - 1; i >= 0; i--) {
                long d = t.shape()[i];
                if (d > 1 && t.stride()[i] != expected)
                    throw new SafetensorsException(source + ": tensor '" + name + "' is not contiguous (size "
                            + Arrays.toString(t.shape()) + ", stride " + Arrays.toString(t.stride())
                            + "); save it after .contiguous()");
                expected = Math.multiplyExact(expected, d);
                numel = Math.multiplyExact(numel, d);
            }
            int es = t.dtype().bytes();
            long begin = Math.multiplyExact(t.offset(), es);
            long bytes = Math.multiplyExact(numel, es);
            if (numel > 0 && Math.addExact(begin, bytes) > storageBytes)
                throw new SafetensorsException(source + ": tensor '" + name + "' (offset " + t.offset() + ", shape "
                        + Arrays.toString(t.shape()) + ", " + t.dtype() + ") runs past its storage '"
                        + s.key() + "' of " + storageBytes + " bytes");
            long abs = storageStart + (numel > 0 ? begin : 0);
            return new TensorInfo(name, t.dtype(), t.shape().clone(), abs, abs + bytes);
        }

        // ---- small helpers

        private long nonNegative(Object o, String what) {
            if (o instanceof Long l && l >= 0) return l;
            throw bad(what + " is " + RestrictedUnpickler.describe(o));
        }

        private long[] longs(Object o, String what) {
            if (!(o instanceof Tuple t)) throw bad(what + " is " + RestrictedUnpickler.describe(o));
            long[] out = new long[t.size()];
            for (int i = 0; i < out.length; i++) out[i] = nonNegative(t.get(i), what + "[" + i + "]");
            return out;
        }

        private String ascii(long at, int n) {
            return new String(file.asSlice(at, n).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.US_ASCII);
        }

        private SafetensorsException bad(String what) {
            return new SafetensorsException(record + ": invalid state_dict pickle: " + what);
        }
    }
}
