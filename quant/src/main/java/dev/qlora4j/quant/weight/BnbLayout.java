package dev.qlora4j.quant.weight;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.qlora4j.quant.safetensors.DType;
import dev.qlora4j.quant.safetensors.SafetensorsException;
import dev.qlora4j.quant.safetensors.TensorInfo;
import dev.qlora4j.quant.safetensors.TensorStore;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * bitsandbytes' serialized layout of a linear weight under a module prefix {@code P} (SPECS.md §1), as
 * {@code Linear4bit._save_to_state_dict} / {@code QuantState.as_dict(packed=True)} and {@code Linear8bitLt} write it:
 *
 * <pre>
 * 4-bit:  P.weight U8 [(N+1)/2, 1] · P.weight.absmax (U8 when nested, else F32) · P.weight.quant_map F32 [16]
 *         [· P.weight.nested_absmax F32 · P.weight.nested_quant_map F32 [256]]
 *         · P.weight.quant_state.bitsandbytes__nf4|__fp4 U8 (UTF-8 JSON)
 * int8:   P.weight I8 [out, in] · P.SCB F32 [out] · P.weight_format U8 [] = 0 (row-major)
 * dense:  P.weight F32|F16|BF16 [rows, cols]
 * </pre>
 *
 * {@link #tensors} turns a {@link StoredWeight} into those tensors (for a safetensors writer); {@link #read} turns
 * them back into a zero-copy {@link StoredWeight} over a {@link TensorStore}. {@code P.bias} is not part of the
 * weight's layout: callers copy it as stored.
 */
public final class BnbLayout {

    /** One serialized tensor: name, dtype, shape and its little-endian bytes. */
    public record Tensor(String name, DType dtype, long[] shape, MemorySegment data) {
        public Tensor {
            long n = 1;
            for (long d : shape) n *= d;
            if (n * dtype.bytes() != data.byteSize()) {
                throw new IllegalArgumentException(name + ": " + dtype + " " + Arrays.toString(shape) + " needs "
                        + n * dtype.bytes() + " bytes, data has " + data.byteSize());
            }
        }
    }

    public static final String WEIGHT = ".weight";
    public static final String ABSMAX = ".weight.absmax";
    public static final String QUANT_MAP = ".weight.quant_map";
    public static final String NESTED_ABSMAX = ".weight.nested_absmax";
    public static final String NESTED_QUANT_MAP = ".weight.nested_quant_map";
    public static final String QUANT_STATE = ".weight.quant_state.bitsandbytes__";
    public static final String SCB = ".SCB";
    public static final String WEIGHT_FORMAT = ".weight_format";

    private static final ValueLayout.OfFloat F32_LE = DenseWeight.F32_LE;
    private static final ObjectMapper JSON = new ObjectMapper();

    private BnbLayout() {
    }

    // ---------------------------------------------------------------------------------------------- write

    /**
     * The tensors that represent {@code w} under module prefix {@code prefix}, in bitsandbytes' state-dict order.
     *
     * @param dtype the torch dtype name of the original (unquantized) weight, written into the 4-bit quant state:
     *              {@code "float32"}, {@code "float16"} or {@code "bfloat16"}
     */
    public static List<Tensor> tensors(String prefix, StoredWeight w, String dtype) {
        List<Tensor> out = new ArrayList<>();
        long[] shape2 = {w.rows(), w.cols()};
        switch (w) {
            case DenseWeight d -> out.add(new Tensor(prefix + WEIGHT, dtypeOf(d.format()), shape2, d.data()));
            case FourBitWeight f -> {
                out.add(new Tensor(prefix + WEIGHT, DType.U8, new long[]{f.packed().byteSize(), 1}, f.packed()));
                String quantType = quantType(f.format());
                String json;
                switch (f.scales()) {
                    case BlockScales.F32Scales s -> {
                        out.add(new Tensor(prefix + ABSMAX, DType.F32, new long[]{s.blocks()}, s.absmax()));
                        out.add(new Tensor(prefix + QUANT_MAP, DType.F32, new long[]{16}, floatsLE(f.codeTable())));
                        json = quantStateJson(quantType, f.blocksize(), dtype, f.rows(), f.cols(), null);
                    }
                    case BlockScales.DoubleQuantScales s -> {
                        out.add(new Tensor(prefix + ABSMAX, DType.U8, new long[]{s.blocks()}, s.qabsmax()));
                        out.add(new Tensor(prefix + QUANT_MAP, DType.F32, new long[]{16}, floatsLE(f.codeTable())));
                        out.add(new Tensor(prefix + NESTED_ABSMAX, DType.F32, new long[]{s.nestedAbsmax().byteSize() / 4},
                                s.nestedAbsmax()));
                        out.add(new Tensor(prefix + NESTED_QUANT_MAP, DType.F32, new long[]{256}, floatsLE(s.nestedMap())));
                        json = quantStateJson(quantType, f.blocksize(), dtype, f.rows(), f.cols(), s);
                    }
                }
                byte[] bytes = json.getBytes(StandardCharsets.UTF_8);
                out.add(new Tensor(prefix + QUANT_STATE + quantType, DType.U8, new long[]{bytes.length},
                        MemorySegment.ofArray(bytes)));
            }
            case RowwiseInt8Weight r -> {
                out.add(new Tensor(prefix + WEIGHT, DType.I8, shape2, r.cb()));
                out.add(new Tensor(prefix + SCB, DType.F32, new long[]{r.rows()}, r.scb()));
                out.add(new Tensor(prefix + WEIGHT_FORMAT, DType.U8, new long[0], MemorySegment.ofArray(new byte[]{0})));
            }
            case BlockwiseInt8Weight b -> throw new IllegalArgumentException(prefix + WEIGHT
                    + ": bitsandbytes has no serialized layout for a blockwise 8-bit linear weight; use int8 row-wise");
        }
        return out;
    }

    /**
     * The packed quant state as {@code json.dumps} writes it in {@code pack_dict_to_tensor}: keys in
     * {@code QuantState.as_dict} order, {@code ", "} and {@code ": "} separators, Python float repr.
     */
    public static String quantStateJson(String quantType, int blocksize, String dtype, int rows, int cols,
                                        BlockScales.DoubleQuantScales nested) {
        StringBuilder sb = new StringBuilder(200);
        sb.append("{\"quant_type\": \"").append(quantType).append("\", \"blocksize\": ").append(blocksize)
                .append(", \"dtype\": \"").append(dtype).append("\", \"shape\": [").append(rows).append(", ")
                .append(cols).append(']');
        if (nested != null) {
            sb.append(", \"nested_blocksize\": ").append(nested.nestedBlocksize())
                    .append(", \"nested_dtype\": \"float32\", \"nested_offset\": ")
                    .append(pythonFloatRepr(nested.offset()));
        }
        return sb.append('}').toString();
    }

    /** Python's {@code repr(float(x))} of a float32 (what {@code tensor.item()} then {@code json.dumps} print). */
    public static String pythonFloatRepr(float x) {
        return pythonRepr(x);
    }

    /** Python's {@code repr(d)}: shortest round-trip digits, scientific below 1e-4 and from 1e16 ({@code 1e-05}). */
    public static String pythonRepr(double d) {
        if (Double.isNaN(d)) return "NaN";
        if (Double.isInfinite(d)) return d > 0 ? "Infinity" : "-Infinity";
        if (d == 0) return (Double.doubleToRawLongBits(d) < 0) ? "-0.0" : "0.0";
        BigDecimal bd = new BigDecimal(Double.toString(d)).stripTrailingZeros(); // shortest round-trip digits
        String digits = bd.unscaledValue().abs().toString();
        int exp = digits.length() - 1 - bd.scale(); // decimal exponent of the first digit
        String sign = bd.signum() < 0 ? "-" : "";
        if (exp >= -4 && exp < 16) {
            String plain = bd.abs().toPlainString();
            return sign + (plain.indexOf('.') < 0 ? plain + ".0" : plain);
        }
        String mant = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
        return sign + mant + "e" + (exp < 0 ? "-" : "+") + (Math.abs(exp) < 10 ? "0" : "") + Math.abs(exp);
    }

    public static String quantType(WeightFormat f) {
        return switch (f) {
            case NF4 -> "nf4";
            case FP4 -> "fp4";
            default -> throw new IllegalArgumentException("not a 4-bit format: " + f);
        };
    }

    /** Torch dtype name of a dense format, as the quant state's {@code "dtype"} field spells it. */
    public static String torchDtype(WeightFormat f) {
        return switch (f) {
            case F32 -> "float32";
            case F16 -> "float16";
            case BF16 -> "bfloat16";
            default -> throw new IllegalArgumentException("not a dense format: " + f);
        };
    }

    public static DType dtypeOf(WeightFormat f) {
        return switch (f) {
            case F32 -> DType.F32;
            case F16 -> DType.F16;
            case BF16 -> DType.BF16;
            default -> throw new IllegalArgumentException("not a dense format: " + f);
        };
    }

    private static MemorySegment floatsLE(float[] v) {
        MemorySegment s = MemorySegment.ofArray(new byte[v.length * 4]);
        for (int i = 0; i < v.length; i++) s.set(F32_LE, (long) i * 4, v[i]);
        return s;
    }

    // ----------------------------------------------------------------------------------------------- read

    /** How the weight under a prefix is stored, judged from the keys present. */
    public enum Kind { DENSE, FOUR_BIT, INT8_ROWWISE, ABSENT }

    public static Kind kind(TensorStore store, String prefix) {
        if (store.contains(prefix + QUANT_STATE + "nf4") || store.contains(prefix + QUANT_STATE + "fp4")
                || store.contains(prefix + ABSMAX)) {
            return Kind.FOUR_BIT;
        }
        if (store.contains(prefix + SCB)) return Kind.INT8_ROWWISE;
        return store.contains(prefix + WEIGHT) ? Kind.DENSE : Kind.ABSENT;
    }

    /**
     * If {@code name} is the key that marks a quantized module ({@code P.weight.quant_state.bitsandbytes__*} or
     * {@code P.SCB}), its prefix {@code P}; else {@code null}.
     */
    public static String quantizedPrefixOf(String name) {
        int i = name.lastIndexOf(QUANT_STATE);
        if (i > 0 && (name.endsWith("nf4") || name.endsWith("fp4"))
                && name.length() == i + QUANT_STATE.length() + 3) {
            return name.substring(0, i);
        }
        if (name.endsWith(SCB) && name.length() > SCB.length()) return name.substring(0, name.length() - SCB.length());
        return null;
    }

    /** The keys of the stored weight under {@code prefix} that are present in {@code store} (bias excluded). */
    public static List<String> componentNames(TensorStore store, String prefix) {
        List<String> names = new ArrayList<>();
        for (String suffix : new String[]{WEIGHT, ABSMAX, QUANT_MAP, NESTED_ABSMAX, NESTED_QUANT_MAP,
                QUANT_STATE + "nf4", QUANT_STATE + "fp4", SCB, WEIGHT_FORMAT}) {
            if (store.contains(prefix + suffix)) names.add(prefix + suffix);
        }
        return names;
    }

    /**
     * The weight stored under module prefix {@code prefix}: a {@link FourBitWeight} (tables read from
     * {@code quant_map} / {@code nested_quant_map}), a {@link RowwiseInt8Weight} or a {@link DenseWeight} (F32, F16,
     * BF16, rank 2, as stored: GPT-2's unquantized Conv1D weights stay {@code [in, out]}). Code and scale tensors are
     * zero-copy slices of the store.
     *
     * @throws SafetensorsException naming the file and tensor when the keys are missing, contradict each other or
     *                              have the wrong dtype or size
     */
    public static StoredWeight read(TensorStore store, String prefix) {
        return switch (kind(store, prefix)) {
            case FOUR_BIT -> readFourBit(store, prefix);
            case INT8_ROWWISE -> readInt8(store, prefix);
            case DENSE -> readDense(store, prefix);
            case ABSENT -> throw new SafetensorsException(store.source() + ": no tensor '" + prefix + WEIGHT + "'");
        };
    }

    private static StoredWeight readDense(TensorStore store, String prefix) {
        String name = prefix + WEIGHT;
        TensorInfo ti = store.info(name);
        WeightFormat f = switch (ti.dtype()) {
            case F32 -> WeightFormat.F32;
            case F16 -> WeightFormat.F16;
            case BF16 -> WeightFormat.BF16;
            default -> throw bad(store, name, "dtype " + ti.dtype() + " is not a dense weight dtype (F32, F16, BF16)"
                    + " and no quantization state (" + prefix + QUANT_STATE + "*, " + prefix + SCB + ") goes with it");
        };
        if (ti.rank() != 2) throw bad(store, name, "a linear weight needs rank 2, shape is " + ti.shapeString());
        return new DenseWeight(f, store.segment(name), toInt(store, name, ti.shape()[0]), toInt(store, name, ti.shape()[1]));
    }

    private static StoredWeight readInt8(TensorStore store, String prefix) {
        String wName = prefix + WEIGHT;
        String scbName = prefix + SCB;
        TensorInfo w = require(store, wName, prefix);
        if (w.dtype() != DType.I8) throw bad(store, wName, "is " + w.dtype() + "; with " + scbName + " it must be I8 (LLM.int8 CB)");
        if (w.rank() != 2) throw bad(store, wName, "LLM.int8 CB needs shape [out, in], is " + w.shapeString());
        TensorInfo scb = store.info(scbName);
        if (scb.dtype() != DType.F32) throw bad(store, scbName, "is " + scb.dtype() + ", expected F32");
        if (scb.elementCount() != w.shape()[0]) {
            throw bad(store, scbName, "has " + scb.elementCount() + " entries, expected one per row of " + wName
                    + " " + w.shapeString());
        }
        String fmtName = prefix + WEIGHT_FORMAT;
        if (store.contains(fmtName)) {
            TensorInfo fi = store.info(fmtName);
            MemorySegment fs = store.segment(fmtName);
            if (fi.elementCount() != 1 || fs.byteSize() < 1) throw bad(store, fmtName, "expected one value");
            int v = switch (fi.dtype()) {
                case U8, I8 -> fs.get(ValueLayout.JAVA_BYTE, 0);
                default -> throw bad(store, fmtName, "is " + fi.dtype() + ", expected U8");
            };
            if (v != 0) {
                throw bad(store, fmtName, "is " + v + " (a tiled GPU layout: col32/col_turing/col_ampere); only 0 (row-major) is supported");
            }
        }
        return new RowwiseInt8Weight(toInt(store, wName, w.shape()[0]), toInt(store, wName, w.shape()[1]),
                store.segment(wName), store.segment(scbName));
    }

    private static StoredWeight readFourBit(TensorStore store, String prefix) {
        boolean nf4 = store.contains(prefix + QUANT_STATE + "nf4");
        boolean fp4 = store.contains(prefix + QUANT_STATE + "fp4");
        if (nf4 && fp4) {
            throw bad(store, prefix + QUANT_STATE + "fp4", "both " + prefix + QUANT_STATE + "nf4 and __fp4 are present");
        }
        if (!nf4 && !fp4) {
            throw new SafetensorsException(store.source() + ": tensor '" + prefix + ABSMAX + "' has no quant state '"
                    + prefix + QUANT_STATE + "nf4' (or __fp4)");
        }
        String qsName = prefix + QUANT_STATE + (nf4 ? "nf4" : "fp4");
        TensorInfo qsInfo = store.info(qsName);
        if (qsInfo.dtype() != DType.U8) throw bad(store, qsName, "is " + qsInfo.dtype() + ", expected U8 (UTF-8 JSON)");
        MemorySegment qsSeg = store.segment(qsName);
        JsonNode qs;
        try {
            qs = JSON.readTree(new String(qsSeg.toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8));
        } catch (Exception e) {
            throw bad(store, qsName, "is not valid JSON: " + e.getMessage());
        }
        if (qs == null || !qs.isObject()) throw bad(store, qsName, "is not a JSON object");
        String quantType = text(store, qsName, qs, "quant_type");
        if (!quantType.equals(nf4 ? "nf4" : "fp4")) {
            throw bad(store, qsName, "says quant_type \"" + quantType + "\", but the key names " + (nf4 ? "nf4" : "fp4"));
        }
        int blocksize = intField(store, qsName, qs, "blocksize");
        if (blocksize <= 0) throw bad(store, qsName, "blocksize " + blocksize + " must be positive");
        JsonNode shapeNode = qs.get("shape");
        if (shapeNode == null || !shapeNode.isArray() || shapeNode.size() != 2
                || !shapeNode.get(0).canConvertToInt() || !shapeNode.get(1).canConvertToInt()) {
            throw bad(store, qsName, "\"shape\" must be [out, in], is " + shapeNode);
        }
        int rows = shapeNode.get(0).asInt();
        int cols = shapeNode.get(1).asInt();
        if (rows <= 0 || cols <= 0) throw bad(store, qsName, "\"shape\" " + shapeNode + " must be positive");
        long n = (long) rows * cols;
        long nblocks = (n + blocksize - 1) / blocksize;

        String wName = prefix + WEIGHT;
        TensorInfo w = require(store, wName, prefix);
        if (w.dtype() != DType.U8) throw bad(store, wName, "is " + w.dtype() + "; packed 4-bit codes must be U8");
        if (w.byteSize() != (n + 1) / 2) {
            throw bad(store, wName, "holds " + w.byteSize() + " bytes, " + (n + 1) / 2 + " expected for shape ["
                    + rows + ", " + cols + "] from " + qsName);
        }
        float[] codeTable = readTable(store, require(store, prefix + QUANT_MAP, prefix), 16);

        String aName = prefix + ABSMAX;
        TensorInfo a = require(store, aName, prefix);
        boolean nested = store.contains(prefix + NESTED_ABSMAX) || store.contains(prefix + NESTED_QUANT_MAP)
                || qs.has("nested_offset");
        BlockScales scales;
        if (nested) {
            if (a.dtype() != DType.U8) throw bad(store, aName, "is " + a.dtype() + "; with double quantization it must be U8");
            if (a.elementCount() != nblocks) {
                throw bad(store, aName, "has " + a.elementCount() + " blocks, " + nblocks + " expected for [" + rows + ", "
                        + cols + "] with blocksize " + blocksize);
            }
            String naName = prefix + NESTED_ABSMAX;
            TensorInfo na = require(store, naName, prefix);
            if (na.dtype() != DType.F32) throw bad(store, naName, "is " + na.dtype() + ", expected F32");
            float[] nestedMap = readTable(store, require(store, prefix + NESTED_QUANT_MAP, prefix), 256);
            int nestedBlocksize = intField(store, qsName, qs, "nested_blocksize");
            if (nestedBlocksize <= 0) throw bad(store, qsName, "nested_blocksize " + nestedBlocksize + " must be positive");
            JsonNode off = qs.get("nested_offset");
            if (off == null || !off.isNumber()) throw bad(store, qsName, "\"nested_offset\" missing or not a number");
            if (qs.has("nested_dtype") && !"float32".equals(qs.get("nested_dtype").asText())) {
                throw bad(store, qsName, "nested_dtype \"" + qs.get("nested_dtype").asText() + "\" is not supported (float32)");
            }
            long needNested = (nblocks + nestedBlocksize - 1) / nestedBlocksize;
            if (na.elementCount() != needNested) {
                throw bad(store, naName, "has " + na.elementCount() + " entries, " + needNested + " expected for "
                        + nblocks + " blocks with nested_blocksize " + nestedBlocksize);
            }
            scales = new BlockScales.DoubleQuantScales(store.segment(aName), store.segment(naName), nestedMap,
                    nestedBlocksize, (float) off.asDouble());
        } else {
            if (a.dtype() != DType.F32) throw bad(store, aName, "is " + a.dtype() + "; without nested_absmax it must be F32");
            if (a.elementCount() != nblocks) {
                throw bad(store, aName, "has " + a.elementCount() + " blocks, " + nblocks + " expected for [" + rows + ", "
                        + cols + "] with blocksize " + blocksize);
            }
            scales = new BlockScales.F32Scales(store.segment(aName));
        }
        WeightFormat format = nf4 ? WeightFormat.NF4 : WeightFormat.FP4;
        return new FourBitWeight(format, rows, cols, blocksize, codeTable, store.segment(wName), scales);
    }

    private static float[] readTable(TensorStore store, TensorInfo ti, int n) {
        if (ti.dtype() != DType.F32 || ti.elementCount() != n) {
            throw bad(store, ti.name(), "is " + ti.dtype() + " " + ti.shapeString() + ", expected F32 [" + n + "]");
        }
        MemorySegment s = store.segment(ti.name());
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = s.get(F32_LE, (long) i * 4);
        return v;
    }

    private static TensorInfo require(TensorStore store, String name, String prefix) {
        if (!store.contains(name)) {
            throw new SafetensorsException(store.source() + ": tensor '" + name + "' is missing from the serialized weight '"
                    + prefix + "' (found: " + componentNames(store, prefix) + ")");
        }
        return store.info(name);
    }

    private static String text(TensorStore store, String name, JsonNode qs, String field) {
        JsonNode v = qs.get(field);
        if (v == null || !v.isTextual()) throw bad(store, name, "\"" + field + "\" missing or not a string");
        return v.asText();
    }

    private static int intField(TensorStore store, String name, JsonNode qs, String field) {
        JsonNode v = qs.get(field);
        if (v == null || !v.isIntegralNumber() || !v.canConvertToInt()) {
            throw bad(store, name, "\"" + field + "\" missing or not an integer");
        }
        return v.asInt();
    }

    private static int toInt(TensorStore store, String name, long v) {
        if (v <= 0 || v > Integer.MAX_VALUE) throw bad(store, name, "dimension " + v + " out of range");
        return (int) v;
    }

    private static SafetensorsException bad(TensorStore store, String name, String what) {
        String where;
        try {
            where = String.valueOf(store.fileOf(name));
        } catch (RuntimeException e) {
            where = store.source();
        }
        return new SafetensorsException(where + ": tensor '" + name + "' " + what);
    }
}
