package dev.qlora4j.quant.weight;

import dev.qlora4j.quant.safetensors.DType;
import dev.qlora4j.quant.safetensors.SafetensorsException;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

class BnbLayoutTest {

    static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final float[] NF4 = {-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
            -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f,
            0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f,
            0.5626170039176941f, 0.7229568362236023f, 1.0f};

    final Arena arena = Arena.ofAuto();
    final Random rnd = new Random(42);

    MemorySegment randomBytes(long n) {
        MemorySegment s = arena.allocate(n);
        for (long i = 0; i < n; i++) s.set(ValueLayout.JAVA_BYTE, i, (byte) rnd.nextInt(256));
        return s;
    }

    MemorySegment floats(int n, float lo, float hi) {
        MemorySegment s = arena.allocate(n * 4L);
        for (int i = 0; i < n; i++) s.set(F32, i * 4L, lo + (hi - lo) * rnd.nextFloat());
        return s;
    }

    /** [5, 7] = 35 elements (odd), blocksize 32: 2 blocks, the last partial. */
    FourBitWeight nf4Dq(int rows, int cols, int blocksize) {
        long n = (long) rows * cols;
        int nblocks = (int) ((n + blocksize - 1) / blocksize);
        float[] map = new float[256];
        for (int i = 0; i < 256; i++) map[i] = -1f + 2f * i / 255f;
        var scales = new BlockScales.DoubleQuantScales(randomBytes(nblocks), floats((nblocks + 255) / 256, 0.1f, 0.2f),
                map, 256, 0.0375f);
        return new FourBitWeight(WeightFormat.NF4, rows, cols, blocksize, NF4.clone(), randomBytes((n + 1) / 2), scales);
    }

    FourBitWeight fp4Plain(int rows, int cols, int blocksize) {
        long n = (long) rows * cols;
        int nblocks = (int) ((n + blocksize - 1) / blocksize);
        float[] table = {0f, 0.005208333333f, 0.66666667f, 1f, 0.33333333f, 0.5f, 0.16666667f, 0.25f,
                -0f, -0.005208333333f, -0.66666667f, -1f, -0.33333333f, -0.5f, -0.16666667f, -0.25f};
        return new FourBitWeight(WeightFormat.FP4, rows, cols, blocksize, table, randomBytes((n + 1) / 2),
                new BlockScales.F32Scales(floats(nblocks, 0.01f, 2f)));
    }

    RowwiseInt8Weight int8(int rows, int cols) {
        return new RowwiseInt8Weight(rows, cols, randomBytes((long) rows * cols), floats(rows, 0.5f, 3f));
    }

    static void assertEntry(BnbLayout.Tensor t, String name, DType dtype, long... shape) {
        assertEquals(name, t.name());
        assertEquals(dtype, t.dtype(), name);
        assertArrayEquals(shape, t.shape(), name);
    }

    static void assertSameValues(StoredWeight a, StoredWeight b) {
        assertEquals(a.rows(), b.rows());
        assertEquals(a.cols(), b.cols());
        assertEquals(a.format(), b.format());
        int n = (int) a.elementCount();
        float[] x = new float[n], y = new float[n];
        a.dequantize(0, n, x, 0);
        b.dequantize(0, n, y, 0);
        assertArrayEquals(x, y);
    }

    @Test
    void nf4DoubleQuantKeysDtypesShapesMatchSpecs() {
        FourBitWeight w = nf4Dq(5, 7, 32);
        List<BnbLayout.Tensor> ts = BnbLayout.tensors("h.0.mlp.c_fc", w, "float32");
        assertEquals(6, ts.size());
        assertEntry(ts.get(0), "h.0.mlp.c_fc.weight", DType.U8, 18, 1);
        assertEntry(ts.get(1), "h.0.mlp.c_fc.weight.absmax", DType.U8, 2);
        assertEntry(ts.get(2), "h.0.mlp.c_fc.weight.quant_map", DType.F32, 16);
        assertEntry(ts.get(3), "h.0.mlp.c_fc.weight.nested_absmax", DType.F32, 1);
        assertEntry(ts.get(4), "h.0.mlp.c_fc.weight.nested_quant_map", DType.F32, 256);
        BnbLayout.Tensor qs = ts.get(5);
        assertEquals("h.0.mlp.c_fc.weight.quant_state.bitsandbytes__nf4", qs.name());
        assertEquals(DType.U8, qs.dtype());
        String json = new String(qs.data().toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
        // json.dumps(QuantState.as_dict(packed=True) non-tensor items), checked against CPython's output
        assertEquals("{\"quant_type\": \"nf4\", \"blocksize\": 32, \"dtype\": \"float32\", \"shape\": [5, 7], "
                + "\"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": 0.03750000149011612}", json);
        assertArrayEquals(new long[]{json.length()}, qs.shape());
        // the quant_map holds the literal NF4 table, little-endian
        for (int i = 0; i < 16; i++) assertEquals(NF4[i], ts.get(2).data().get(F32, i * 4L));
    }

    @Test
    void fp4PlainKeysDtypesShapesMatchSpecs() {
        FourBitWeight w = fp4Plain(6, 2, 64);
        List<BnbLayout.Tensor> ts = BnbLayout.tensors("p", w, "float16");
        assertEquals(4, ts.size());
        assertEntry(ts.get(0), "p.weight", DType.U8, 6, 1);
        assertEntry(ts.get(1), "p.weight.absmax", DType.F32, 1);
        assertEntry(ts.get(2), "p.weight.quant_map", DType.F32, 16);
        assertEntry(ts.get(3), "p.weight.quant_state.bitsandbytes__fp4", DType.U8, 75);
        assertEquals("{\"quant_type\": \"fp4\", \"blocksize\": 64, \"dtype\": \"float16\", \"shape\": [6, 2]}",
                new String(ts.get(3).data().toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8));
    }

    @Test
    void int8RowwiseKeysDtypesShapesMatchSpecs() {
        List<BnbLayout.Tensor> ts = BnbLayout.tensors("q", int8(3, 4), "float32");
        assertEquals(3, ts.size());
        assertEntry(ts.get(0), "q.weight", DType.I8, 3, 4);
        assertEntry(ts.get(1), "q.SCB", DType.F32, 3);
        assertEntry(ts.get(2), "q.weight_format", DType.U8);
        assertEquals(0, ts.get(2).data().get(ValueLayout.JAVA_BYTE, 0));
    }

    @Test
    void denseIsOneTensorAsStored() {
        DenseWeight d = new DenseWeight(WeightFormat.BF16, randomBytes(2 * 3 * 2), 2, 3);
        List<BnbLayout.Tensor> ts = BnbLayout.tensors("d", d, "bfloat16");
        assertEquals(1, ts.size());
        assertEntry(ts.getFirst(), "d.weight", DType.BF16, 2, 3);
    }

    @Test
    void roundTripEveryFormatZeroCopy() {
        List<StoredWeight> ws = List.of(nf4Dq(5, 7, 32), nf4Dq(33, 300, 64), fp4Plain(6, 2, 64), fp4Plain(7, 9, 4096),
                int8(3, 4), new DenseWeight(WeightFormat.F32, floats(6, -1, 1), 2, 3),
                new DenseWeight(WeightFormat.F16, randomBytes(12), 2, 3));
        for (StoredWeight w : ws) {
            var store = new MemoryTensorStore().addAll(BnbLayout.tensors("m", w, "float32"));
            StoredWeight back = BnbLayout.read(store, "m");
            assertEquals(w.getClass(), back.getClass());
            assertSameValues(w, back);
            assertEquals(w.storedBytes(), back.storedBytes(), w.format().toString());
            switch (back) {
                case FourBitWeight f -> {
                    FourBitWeight o = (FourBitWeight) w;
                    assertEquals(o.packed().address(), f.packed().address(), "packed codes are not copied");
                    assertEquals(o.blocksize(), f.blocksize());
                    assertEquals(o.scales().getClass(), f.scales().getClass());
                    if (f.scales() instanceof BlockScales.DoubleQuantScales s) {
                        var os = (BlockScales.DoubleQuantScales) o.scales();
                        assertEquals(os.offset(), s.offset());
                        assertEquals(os.nestedBlocksize(), s.nestedBlocksize());
                        assertArrayEquals(os.nestedMap(), s.nestedMap());
                    }
                }
                case RowwiseInt8Weight r -> assertEquals(((RowwiseInt8Weight) w).cb().address(), r.cb().address());
                case DenseWeight d -> assertEquals(((DenseWeight) w).data().address(), d.data().address());
                default -> fail();
            }
        }
    }

    @Test
    void readsTablesFromTheCheckpointNotLiterals() {
        FourBitWeight w = nf4Dq(4, 4, 64);
        float[] odd = new float[16];
        for (int i = 0; i < 16; i++) odd[i] = i * 0.5f;
        FourBitWeight custom = new FourBitWeight(WeightFormat.NF4, 4, 4, 64, odd, w.packed(), w.scales());
        StoredWeight back = BnbLayout.read(new MemoryTensorStore().addAll(BnbLayout.tensors("m", custom, "float32")), "m");
        assertArrayEquals(odd, ((FourBitWeight) back).codeTable());
    }

    @Test
    void kindAndQuantizedPrefix() {
        var store = new MemoryTensorStore().addAll(BnbLayout.tensors("a", nf4Dq(2, 2, 64), "float32"))
                .addAll(BnbLayout.tensors("b", int8(2, 2), "float32"))
                .addAll(BnbLayout.tensors("c", new DenseWeight(WeightFormat.F32, floats(4, 0, 1), 2, 2), "float32"));
        assertEquals(BnbLayout.Kind.FOUR_BIT, BnbLayout.kind(store, "a"));
        assertEquals(BnbLayout.Kind.INT8_ROWWISE, BnbLayout.kind(store, "b"));
        assertEquals(BnbLayout.Kind.DENSE, BnbLayout.kind(store, "c"));
        assertEquals(BnbLayout.Kind.ABSENT, BnbLayout.kind(store, "z"));
        assertEquals("x.y", BnbLayout.quantizedPrefixOf("x.y.weight.quant_state.bitsandbytes__nf4"));
        assertEquals("x.y", BnbLayout.quantizedPrefixOf("x.y.SCB"));
        assertNull(BnbLayout.quantizedPrefixOf("x.y.weight"));
        assertNull(BnbLayout.quantizedPrefixOf("x.y.weight.quant_state.bitsandbytes__int4"));
        assertEquals(List.of("a.weight", "a.weight.absmax", "a.weight.quant_map", "a.weight.nested_absmax",
                "a.weight.nested_quant_map", "a.weight.quant_state.bitsandbytes__nf4"), BnbLayout.componentNames(store, "a"));
    }

    // ------------------------------------------------------------------------------------------ bad input

    MemoryTensorStore nf4Store() {
        return new MemoryTensorStore().addAll(BnbLayout.tensors("m", nf4Dq(5, 7, 32), "float32"));
    }

    static void assertBad(MemoryTensorStore store, String... fragments) {
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> BnbLayout.read(store, "m"));
        assertTrue(e.getMessage().startsWith("mem.safetensors"), e.getMessage());
        for (String f : fragments) assertTrue(e.getMessage().contains(f), () -> "'" + f + "' not in: " + e.getMessage());
    }

    static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void missingComponentsAreNamed() {
        assertBad(nf4Store().remove("m.weight.absmax"), "m.weight.absmax", "missing");
        assertBad(nf4Store().remove("m.weight.quant_map"), "m.weight.quant_map", "missing");
        assertBad(nf4Store().remove("m.weight.nested_absmax"), "m.weight.nested_absmax", "missing");
        assertBad(nf4Store().remove("m.weight.nested_quant_map"), "m.weight.nested_quant_map", "missing");
        assertBad(nf4Store().remove("m.weight"), "m.weight'", "missing");
        assertBad(nf4Store().remove("m.weight.quant_state.bitsandbytes__nf4"), "quant state", "bitsandbytes__nf4");
        assertBad(new MemoryTensorStore(), "no tensor 'm.weight'");
    }

    @Test
    void contradictoryKeysAreRejected() {
        var both = nf4Store().add("m.weight.quant_state.bitsandbytes__fp4", DType.U8, new long[]{2}, utf8("{}"));
        assertBad(both, "both");
        // nested state but F32 absmax
        var f32Absmax = nf4Store().remove("m.weight.absmax").add("m.weight.absmax", DType.F32, new long[]{2}, new byte[8]);
        assertBad(f32Absmax, "m.weight.absmax", "must be U8");
        // plain state but U8 absmax
        var plain = new MemoryTensorStore().addAll(BnbLayout.tensors("m", fp4Plain(5, 7, 32), "float32"))
                .remove("m.weight.absmax").add("m.weight.absmax", DType.U8, new long[]{2}, new byte[2]);
        assertBad(plain, "m.weight.absmax", "must be F32");
        // wrong number of blocks
        var blocks = nf4Store().remove("m.weight.absmax").add("m.weight.absmax", DType.U8, new long[]{3}, new byte[3]);
        assertBad(blocks, "m.weight.absmax", "3 blocks, 2 expected");
        // packed codes too short for the shape in the quant state
        var codes = nf4Store().remove("m.weight").add("m.weight", DType.U8, new long[]{17, 1}, new byte[17]);
        assertBad(codes, "m.weight'", "17 bytes, 18 expected");
        var codesI8 = nf4Store().remove("m.weight").add("m.weight", DType.I8, new long[]{18, 1}, new byte[18]);
        assertBad(codesI8, "must be U8");
        var map = nf4Store().remove("m.weight.quant_map").add("m.weight.quant_map", DType.F32, new long[]{15}, new byte[60]);
        assertBad(map, "m.weight.quant_map", "expected F32 [16]");
        var nested = nf4Store().remove("m.weight.nested_absmax").add("m.weight.nested_absmax", DType.F32, new long[]{2}, new byte[8]);
        assertBad(nested, "m.weight.nested_absmax", "2 entries, 1 expected");
    }

    @Test
    void badQuantStateJsonIsRejected() {
        String key = "m.weight.quant_state.bitsandbytes__nf4";
        assertBad(nf4Store().remove(key).add(key, DType.U8, new long[]{5}, utf8("{nope")), key, "not valid JSON");
        assertBad(nf4Store().remove(key).add(key, DType.U8, new long[]{2}, utf8("[]")), key, "not a JSON object");
        assertBad(nf4Store().remove(key).add(key, DType.U8, new long[]{0}, new byte[0]), key);
        String fp4Type = "{\"quant_type\": \"fp4\", \"blocksize\": 32, \"dtype\": \"float32\", \"shape\": [5, 7]}";
        assertBad(nf4Store().remove(key).add(key, DType.U8, new long[]{fp4Type.length()}, utf8(fp4Type)), "quant_type \"fp4\"");
        String noShape = "{\"quant_type\": \"nf4\", \"blocksize\": 32, \"dtype\": \"float32\"}";
        assertBad(nf4Store().remove(key).add(key, DType.U8, new long[]{noShape.length()}, utf8(noShape)), "\"shape\"");
        String badBlock = "{\"quant_type\": \"nf4\", \"blocksize\": \"64\", \"shape\": [5, 7]}";
        assertBad(nf4Store().remove(key).add(key, DType.U8, new long[]{badBlock.length()}, utf8(badBlock)), "\"blocksize\"");
        String noOffset = "{\"quant_type\": \"nf4\", \"blocksize\": 32, \"dtype\": \"float32\", \"shape\": [5, 7], \"nested_blocksize\": 256}";
        assertBad(nf4Store().remove(key).add(key, DType.U8, new long[]{noOffset.length()}, utf8(noOffset)), "nested_offset");
        assertBad(nf4Store().remove(key).add(key, DType.F32, new long[]{1}, new byte[4]), key, "expected U8");
    }

    @Test
    void badInt8AndDenseAreRejected() {
        var scb = new MemoryTensorStore().addAll(BnbLayout.tensors("m", int8(3, 4), "float32"))
                .remove("m.SCB").add("m.SCB", DType.F32, new long[]{4}, new byte[16]);
        assertBad(scb, "m.SCB", "4 entries");
        var cb = new MemoryTensorStore().addAll(BnbLayout.tensors("m", int8(3, 4), "float32"))
                .remove("m.weight").add("m.weight", DType.U8, new long[]{3, 4}, new byte[12]);
        assertBad(cb, "m.weight'", "must be I8");
        var fmt = new MemoryTensorStore().addAll(BnbLayout.tensors("m", int8(3, 4), "float32"))
                .remove("m.weight_format").add("m.weight_format", DType.U8, new long[0], new byte[]{2});
        assertBad(fmt, "m.weight_format", "row-major");
        assertBad(new MemoryTensorStore().add("m.weight", DType.I32, new long[]{2, 2}, new byte[16]), "m.weight", "I32");
        assertBad(new MemoryTensorStore().add("m.weight", DType.F32, new long[]{4}, new byte[16]), "rank 2");
    }

    @Test
    void blockwiseInt8HasNoBnbLayout() {
        var b = new BlockwiseInt8Weight(2, 2, 64, new float[256], randomBytes(4), new BlockScales.F32Scales(floats(1, 1, 2)));
        assertThrows(IllegalArgumentException.class, () -> BnbLayout.tensors("m", b, "float32"));
    }

    @Test
    void pythonFloatReprMatchesCPython() {
        // values printed by CPython 3: repr(float(numpy.float32(x)))
        assertEquals("0.10000000149011612", BnbLayout.pythonFloatRepr(0.1f));
        assertEquals("9.999999747378752e-06", BnbLayout.pythonFloatRepr(1e-5f));
        assertEquals("1.0", BnbLayout.pythonFloatRepr(1f));
        assertEquals("1.0000000272564224e+16", BnbLayout.pythonFloatRepr(1e16f));
        assertEquals("123456.0", BnbLayout.pythonFloatRepr(123456f));
        assertEquals("9.999999747378752e-05", BnbLayout.pythonFloatRepr(0.0001f));
        assertEquals("0.00011999999696854502", BnbLayout.pythonFloatRepr(0.00012f));
        assertEquals("-2.5", BnbLayout.pythonFloatRepr(-2.5f));
        assertEquals("0.003000000026077032", BnbLayout.pythonFloatRepr(3e-3f));
        assertEquals("0.0", BnbLayout.pythonFloatRepr(0f));
    }
}
