package dev.qlora4j.runtime.checkpoint;

import dev.qlora4j.quant.safetensors.SafetensorsException;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.math.BigInteger;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A pickle reader that knows only the opcodes a PyTorch state_dict uses and never calls anything: a {@code GLOBAL}
 * outside the allowlist is refused when it is read, and {@code REDUCE} / {@code BINPERSID} hand their arguments to the
 * caller's {@link Reducer}, which builds plain records. Object-building opcodes ({@code INST}, {@code OBJ},
 * {@code NEWOBJ}, extension registry) are refused.
 *
 * <p>Values: {@code null} (None), {@link Boolean}, {@link Long} or {@link BigInteger}, {@link Double}, {@link String},
 * {@code byte[]}, {@link Tuple}, {@link ArrayList} (list), {@link LinkedHashMap} (dict), {@link Global}, and whatever
 * the reducer returns.
 */
final class RestrictedUnpickler {

    /** A Python tuple (immutable, may hold nulls). */
    record Tuple(List<Object> items) {
        Tuple {
            items = Collections.unmodifiableList(new ArrayList<>(items));
        }

        int size() {
            return items.size();
        }

        Object get(int i) {
            return items.get(i);
        }
    }

    /** A module-level name from the allowlist; never resolved to code. */
    record Global(String module, String name) {
        String qualified() {
            return module + "." + name;
        }

        @Override
        public String toString() {
            return qualified();
        }
    }

    /** Builds values for {@code REDUCE} (allowlisted callable + argument tuple) and persistent ids. */
    interface Reducer {
        Object reduce(Global callable, Tuple args);

        Object persistentLoad(Object pid);
    }

    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64_BE = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    private static final int MAX_LINE = 256;
    private static final int MAX_LONG_BYTES = 1 << 16;

    private final MemorySegment data;
    private final long limit;
    private final String source;
    private final Set<String> allowedGlobals;
    private final Reducer reducer;
    private long pos;
    private final ArrayList<Object> stack = new ArrayList<>();
    private final ArrayList<Integer> marks = new ArrayList<>();
    private final HashMap<Long, Object> memo = new HashMap<>();

    /**
     * @param data           bytes holding the pickle
     * @param start          offset of its first opcode
     * @param limit          offset one past the last byte it may read
     * @param source         file (and record) name for error messages
     * @param allowedGlobals {@code module.name} strings a GLOBAL may name
     * @param reducer        builds REDUCE and persistent-id results; {@code null} refuses both
     */
    RestrictedUnpickler(MemorySegment data, long start, long limit, String source, Set<String> allowedGlobals,
                        Reducer reducer) {
        this.data = data;
        this.pos = start;
        this.limit = limit;
        this.source = source;
        this.allowedGlobals = allowedGlobals;
        this.reducer = reducer;
    }

    /** Offset just past the STOP opcode once {@link #load()} has returned. */
    long position() {
        return pos;
    }

    /** Runs the pickle to its STOP opcode and returns the value it leaves. */
    Object load() {
        stack.clear();
        marks.clear();
        memo.clear();
        while (true) {
            long at = pos;
            int op = u8();
            switch (op) {
                case 0x80 -> { // PROTO
                    int proto = u8();
                    if (proto > 5) throw bad("pickle protocol " + proto + " is newer than 5", at);
                }
                case 0x95 -> bytes(8); // FRAME: length hint only
                case '.' -> { // STOP
                    if (stack.size() != 1 || !marks.isEmpty())
                        throw bad("STOP with " + stack.size() + " values on the stack", at);
                    return stack.removeLast();
                }
                case '(' -> marks.add(stack.size()); // MARK
                case '0' -> pop(at); // POP
                case '1' -> popMark(at); // POP_MARK
                case '2' -> push(peek(at)); // DUP
                case 'N' -> push(null);
                case 0x88 -> push(Boolean.TRUE);
                case 0x89 -> push(Boolean.FALSE);
                case 'J' -> push((long) i32()); // BININT
                case 'K' -> push((long) u8()); // BININT1
                case 'M' -> push((long) (u8() | (u8() << 8))); // BININT2
                case 0x8a -> push(longBytes(u8(), at)); // LONG1
                case 0x8b -> push(longBytes(length(i32() & 0xFFFFFFFFL, at), at)); // LONG4
                case 'G' -> { // BINFLOAT (big-endian)
                    need(8, at);
                    push(data.get(F64_BE, pos));
                    pos += 8;
                }
                case 'X' -> push(utf8(length(i32() & 0xFFFFFFFFL, at), at)); // BINUNICODE
                case 0x8c -> push(utf8(u8(), at)); // SHORT_BINUNICODE
                case 0x8d -> push(utf8(length(i64(), at), at)); // BINUNICODE8
                case 'T' -> push(latin1(length(i32() & 0xFFFFFFFFL, at), at)); // BINSTRING (py2 str)
                case 'U' -> push(latin1(u8(), at)); // SHORT_BINSTRING
                case 'B' -> push(bytes(length(i32() & 0xFFFFFFFFL, at))); // BINBYTES
                case 'C' -> push(bytes(u8())); // SHORT_BINBYTES
                case 0x8e -> push(bytes(length(i64(), at))); // BINBYTES8
                case '}' -> push(new LinkedHashMap<>()); // EMPTY_DICT
                case ']' -> push(new ArrayList<>()); // EMPTY_LIST
                case ')' -> push(new Tuple(List.of())); // EMPTY_TUPLE
                case 'd' -> { // DICT
                    List<Object> items = popMark(at);
                    if (items.size() % 2 != 0) throw bad("DICT with an odd number of items", at);
                    LinkedHashMap<Object, Object> d = new LinkedHashMap<>();
                    for (int i = 0; i < items.size(); i += 2) d.put(key(items.get(i), at), items.get(i + 1));
                    push(d);
                }
                case 'l' -> push(new ArrayList<>(popMark(at))); // LIST
                case 't' -> push(new Tuple(popMark(at))); // TUPLE
                case 0x85 -> push(new Tuple(popN(1, at))); // TUPLE1
                case 0x86 -> push(new Tuple(popN(2, at))); // TUPLE2
                case 0x87 -> push(new Tuple(popN(3, at))); // TUPLE3
                case 'q' -> memo.put((long) u8(), peek(at)); // BINPUT
                case 'r' -> memo.put(i32() & 0xFFFFFFFFL, peek(at)); // LONG_BINPUT
                case 'p' -> memo.put(decimalLine(at), peek(at)); // PUT
                case 0x94 -> memo.put((long) memo.size(), peek(at)); // MEMOIZE
                case 'h' -> push(memoGet(u8(), at)); // BINGET
                case 'j' -> push(memoGet(i32() & 0xFFFFFFFFL, at)); // LONG_BINGET
                case 'g' -> push(memoGet(decimalLine(at), at)); // GET
                case 's' -> { // SETITEM
                    Object v = pop(at);
                    Object k = pop(at);
                    dict(peek(at), at).put(key(k, at), v);
                }
                case 'u' -> { // SETITEMS
                    List<Object> items = popMark(at);
                    if (items.size() % 2 != 0) throw bad("SETITEMS with an odd number of items", at);
                    Map<Object, Object> d = dict(peek(at), at);
                    for (int i = 0; i < items.size(); i += 2) d.put(key(items.get(i), at), items.get(i + 1));
                }
                case 'a' -> { // APPEND
                    Object v = pop(at);
                    list(peek(at), at).add(v);
                }
                case 'e' -> { // APPENDS
                    List<Object> items = popMark(at);
                    list(peek(at), at).addAll(items);
                }
                case 'c' -> { // GLOBAL "module\nname\n"
                    String module = line(at);
                    String name = line(at);
                    push(global(module, name, at));
                }
                case 0x93 -> { // STACK_GLOBAL
                    Object name = pop(at);
                    Object module = pop(at);
                    if (!(module instanceof String m) || !(name instanceof String n))
                        throw bad("STACK_GLOBAL needs two strings", at);
                    push(global(m, n, at));
                }
                case 'R' -> { // REDUCE
                    Object args = pop(at);
                    Object callable = pop(at);
                    if (!(callable instanceof Global g))
                        throw unsafe("REDUCE on " + describe(callable) + ", not an allowlisted global", at);
                    if (!(args instanceof Tuple t)) throw bad("REDUCE arguments are " + describe(args), at);
                    if (reducer == null) throw unsafe("REDUCE of " + g + " where no call is expected", at);
                    push(reducer.reduce(g, t));
                }
                case 'b' -> { // BUILD: only the attribute dict a state_dict carries (_metadata), which we drop
                    Object state = pop(at);
                    Object target = peek(at);
                    if (!(target instanceof Map<?, ?>) || !(state == null || state instanceof Map<?, ?>))
                        throw unsafe("BUILD of " + describe(target) + " with " + describe(state)
                                + " (only a dict's attribute dict is accepted)", at);
                }
                case 'Q' -> { // BINPERSID
                    Object pid = pop(at);
                    if (reducer == null) throw unsafe("persistent id where none is expected", at);
                    push(reducer.persistentLoad(pid));
                }
                case 'i', 'o', 0x81, 0x92 -> throw unsafe("object-building opcode " + opName(op)
                        + " (a state_dict holds only tensors, dicts and plain values)", at);
                case 0x82, 0x83, 0x84 -> throw unsafe("extension-registry opcode " + opName(op), at);
                case 'P' -> throw unsafe("text persistent id (PERSID)", at);
                default -> throw bad("unsupported pickle opcode " + opName(op), at);
            }
        }
    }

    // ---- stack helpers

    private void push(Object o) {
        stack.add(o);
    }

    private Object pop(long at) {
        int floor = marks.isEmpty() ? 0 : marks.getLast();
        if (stack.size() <= floor) throw bad("stack underflow", at);
        return stack.removeLast();
    }

    private Object peek(long at) {
        int floor = marks.isEmpty() ? 0 : marks.getLast();
        if (stack.size() <= floor) throw bad("stack underflow", at);
        return stack.getLast();
    }

    private List<Object> popN(int n, long at) {
        int floor = marks.isEmpty() ? 0 : marks.getLast();
        if (stack.size() - n < floor) throw bad("stack underflow", at);
        List<Object> top = stack.subList(stack.size() - n, stack.size());
        List<Object> out = new ArrayList<>(top);
        top.clear();
        return out;
    }

    private List<Object> popMark(long at) {
        if (marks.isEmpty()) throw bad("no MARK on the stack", at);
        int m = marks.removeLast();
        List<Object> top = stack.subList(m, stack.size());
        List<Object> out = new ArrayList<>(top);
        top.clear();
        return out;
    }

    private Object memoGet(long idx, long at) {
        if (!memo.containsKey(idx)) throw bad("memo slot " + idx + " is empty", at);
        return memo.get(idx);
    }

    @SuppressWarnings("unchecked")
    private Map<Object, Object> dict(Object o, long at) {
        if (o instanceof LinkedHashMap<?, ?> m) return (Map<Object, Object>) m;
        throw bad("SETITEM(S) on " + describe(o), at);
    }

    @SuppressWarnings("unchecked")
    private List<Object> list(Object o, long at) {
        if (o instanceof ArrayList<?> l) return (List<Object>) l;
        throw bad("APPEND(S) on " + describe(o), at);
    }

    /** Dict keys are plain scalars: a state_dict never needs more, and it keeps hashing shallow. */
    private Object key(Object k, long at) {
        if (k == null || k instanceof String || k instanceof Long || k instanceof BigInteger || k instanceof Boolean
                || k instanceof Double) return k;
        throw bad("dict key " + describe(k) + " (only str, int, float, bool and None keys are read)", at);
    }

    private Global global(String module, String name, long at) {
        String q = module + "." + name;
        if (!allowedGlobals.contains(q))
            throw unsafe("global '" + q + "'" + python3Name(module, name) + " is not allowed (a state_dict needs only torch tensor rebuilders, storage"
                    + " types and collections.OrderedDict); nothing was executed", at);
        return new Global(module, name);
    }

    /** Protocol ≤ 2 pickles spell some modules the Python 2 way; say what Python 3 would load. */
    private static String python3Name(String module, String name) {
        String py3 = switch (module) {
            case "__builtin__" -> "builtins";
            case "copy_reg" -> "copyreg";
            case "commands" -> "subprocess";
            case "posix", "nt" -> "os";
            default -> null;
        };
        return py3 == null ? "" : " (" + py3 + "." + name + ")";
    }

    // ---- byte readers

    private void need(long n, long at) {
        if (n < 0 || pos + n > limit)
            throw bad("truncated pickle: needs " + n + " more bytes at offset " + pos + " but the record ends at "
                    + limit, at);
    }

    private int u8() {
        need(1, pos);
        return data.get(ValueLayout.JAVA_BYTE, pos++) & 0xFF;
    }

    private int i32() {
        need(4, pos);
        int v = data.get(I32, pos);
        pos += 4;
        return v;
    }

    private long i64() {
        need(8, pos);
        long v = data.get(I64, pos);
        pos += 8;
        return v;
    }

    private long length(long n, long at) {
        if (n < 0 || n > limit - pos)
            throw bad("length " + Long.toUnsignedString(n) + " runs past the end of the record", at);
        return n;
    }

    private byte[] bytes(long n) {
        need(n, pos);
        byte[] b = data.asSlice(pos, n).toArray(ValueLayout.JAVA_BYTE);
        pos += n;
        return b;
    }

    private String utf8(long n, long at) {
        return new String(bytes(length(n, at)), StandardCharsets.UTF_8);
    }

    private String latin1(long n, long at) {
        return new String(bytes(length(n, at)), StandardCharsets.ISO_8859_1);
    }

    private Object longBytes(long n, long at) {
        if (n > MAX_LONG_BYTES) throw bad("LONG of " + n + " bytes", at);
        if (n == 0) return 0L;
        byte[] le = bytes(n);
        byte[] be = new byte[le.length];
        for (int i = 0; i < le.length; i++) be[i] = le[le.length - 1 - i];
        BigInteger v = new BigInteger(be); // two's complement, as pickle's LONG1/LONG4
        return v.bitLength() < 64 ? (Object) v.longValue() : v;
    }

    private String line(long at) {
        long start = pos;
        while (true) {
            if (pos >= limit || pos - start > MAX_LINE) throw bad("unterminated GLOBAL/PUT/GET line", at);
            if (data.get(ValueLayout.JAVA_BYTE, pos++) == '\n') break;
        }
        byte[] b = data.asSlice(start, pos - 1 - start).toArray(ValueLayout.JAVA_BYTE);
        return new String(b, StandardCharsets.UTF_8);
    }

    private long decimalLine(long at) {
        String s = line(at);
        try {
            return Long.parseLong(s.trim());
        } catch (NumberFormatException e) {
            throw bad("bad memo index '" + s + "'", at);
        }
    }

    // ---- errors

    private SafetensorsException bad(String what, long at) {
        return new SafetensorsException(source + ": invalid pickle (" + what + ") at offset " + at);
    }

    private UnsafePickleException unsafe(String what, long at) {
        return new UnsafePickleException(source + ": refused pickle: " + what + " at offset " + at);
    }

    static String describe(Object o) {
        return switch (o) {
            case null -> "None";
            case String s -> "str '" + (s.length() > 40 ? s.substring(0, 40) + "…" : s) + "'";
            case Tuple t -> "tuple of " + t.size();
            case Map<?, ?> m -> "dict of " + m.size();
            case List<?> l -> "list of " + l.size();
            case byte[] b -> "bytes of " + b.length;
            case Global g -> "global " + g;
            default -> o.getClass().getSimpleName() + " " + o;
        };
    }

    private static String opName(int op) {
        String hex = String.format("0x%02x", op);
        return op >= 0x20 && op < 0x7f ? hex + " '" + (char) op + "'" : hex;
    }

    @Override
    public String toString() {
        return "RestrictedUnpickler[" + source + " @" + pos + ", stack " + Arrays.toString(stack.toArray()) + "]";
    }
}
