package dev.qlora4j.runtime.quantize;

import dev.qlora4j.runtime.config.PythonJson;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.qlora4j.quant.codec.Blocksize;
import dev.qlora4j.quant.safetensors.SafetensorsWriter;
import dev.qlora4j.quant.safetensors.TensorInfo;
import dev.qlora4j.quant.safetensors.TensorStore;
import dev.qlora4j.quant.weight.BnbLayout;
import dev.qlora4j.quant.weight.DenseWeight;
import dev.qlora4j.quant.weight.Quantizer;
import dev.qlora4j.quant.weight.StoredWeight;
import dev.qlora4j.quant.weight.WeightFormat;
import dev.qlora4j.runtime.checkpoint.HfModelDir;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * Quantizes a Hugging Face GPT-2 or BLOOM directory into a bitsandbytes-layout checkpoint, laid out as
 * transformers + bitsandbytes would save the model loaded with {@code BitsAndBytesConfig}: every linear weight
 * quantized under its module prefix ({@link BnbLayout}; GPT-2's Conv1D {@code [in, out]} weights transposed to
 * {@code [out, in]} first, as transformers does), embeddings, LayerNorms and biases copied as stored, GPT-2's
 * attention-mask buffers dropped, {@code config.json} with a {@code quantization_config}, and the tokenizer files
 * and {@code generation_config.json} copied.
 *
 * <p>Streaming: one linear weight at a time is transposed and quantized in a confined arena, appended to a scratch
 * file and released; the output is then written from the mmap'd scratch file and the mmap'd source, so neither the
 * model nor its quantized form is ever held in memory. Atomic: everything is written into a hidden directory next
 * to the target and renamed over it at the end; on failure the target is untouched.
 */
public final class CheckpointQuantizer {

    /** What to quantize to. */
    public record Options(WeightFormat format, int blocksize, boolean doubleQuant) {
        public Options {
            switch (format) {
                case NF4, FP4 -> Blocksize.checkFourBit(blocksize);
                case INT8_ROWWISE -> {
                    if (doubleQuant) throw new IllegalArgumentException("double quantization applies to nf4/fp4, not int8");
                }
                default -> throw new IllegalArgumentException("quantize to nf4, fp4 or int8 (LLM.int8 row-wise), not " + format);
            }
        }

        /** QLoRA's default: NF4, blocksize 64, double-quantized scales. */
        public static Options nf4() {
            return new Options(WeightFormat.NF4, Blocksize.FOUR_BIT_DEFAULT, true);
        }
    }

    /**
     * Sizes before and after.
     *
     * @param bytesBefore       the source weights file(s) on disk
     * @param bytesAfter        the written model.safetensors
     * @param linearParams      elements of the quantized linear weights (their logical {@code [out, in]} shapes)
     * @param linearBytesBefore those weights as stored in the source
     * @param linearBytesAfter  their serialized codes, scales, tables and quant states
     * @param linearTableBytes  the part of {@code linearBytesAfter} that is a per-tensor constant (quant_map,
     *                          nested_quant_map, the quant-state JSON, weight_format): negligible in a real model
     * @param dropped           stored names left out (attention-mask buffers, a tied LM head)
     */
    public record Report(Path output, String modelType, Options options, int tensorsIn, int tensorsOut,
                         int linearWeights, long linearParams, long linearBytesBefore, long linearBytesAfter,
                         long linearTableBytes, long bytesBefore, long bytesAfter, List<String> dropped, List<String> copiedFiles) {

        public double linearBitsPerParamBefore() {
            return linearParams == 0 ? 0 : linearBytesBefore * 8.0 / linearParams;
        }

        public double linearBitsPerParamAfter() {
            return linearParams == 0 ? 0 : linearBytesAfter * 8.0 / linearParams;
        }

        /** Codes and scales only: the bits/param a large model approaches (4.127 for NF4 + DQ at blocksize 64). */
        public double linearBitsPerParamWithoutTables() {
            return linearParams == 0 ? 0 : (linearBytesAfter - linearTableBytes) * 8.0 / linearParams;
        }
    }

    /** Files copied unchanged next to the weights when present. */
    static final List<String> COPIED_FILES = List.of("generation_config.json", "tokenizer.json", "tokenizer_config.json",
            "special_tokens_map.json", "added_tokens.json", "vocab.json", "merges.txt", "tokenizer.model");

    static final String OUTPUT_WEIGHTS = "model.safetensors";
    private static final ObjectMapper JSON = new ObjectMapper();

    private CheckpointQuantizer() {
    }

    /**
     * Quantizes the model in {@code modelDir} into {@code outDir}.
     *
     * @param overwrite replace an existing {@code outDir} (only one that is empty or holds a config.json)
     * @param progress  receives one line per step (for {@code --verbose})
     */
    public static Report quantize(Path modelDir, Path outDir, Options options, boolean overwrite,
                                  Consumer<String> progress) {
        return quantize(modelDir, outDir, options, overwrite, progress, null);
    }

    /** Progress: linear weights quantized, linear weights in all (called once per weight). */
    public interface Progress {
        void update(int done, int total);
    }

    /**
     * As {@link #quantize(Path, Path, Options, boolean, Consumer)}, telling {@code counter} (may be null) after each
     * linear weight.
     */
    public static Report quantize(Path modelDir, Path outDir, Options options, boolean overwrite,
                                  Consumer<String> progress, Progress counter) {
        Path out = outDir.toAbsolutePath().normalize();
        checkTarget(modelDir.toAbsolutePath().normalize(), out, overwrite);
        try (HfModelDir model = HfModelDir.open(modelDir)) {
            LinearWeights linears = LinearWeights.of(model.config().modelType());
            Path parent = out.getParent();
            Files.createDirectories(parent);
            Path tmp = parent.resolve("." + out.getFileName() + ".tmp-" + Long.toHexString(ThreadLocalRandom.current().nextLong()));
            Files.createDirectory(tmp);
            try {
                Report r = write(model, linears, tmp, out, options, progress, counter);
                copyConfigAndFiles(model.dir(), tmp, options, r.copiedFiles());
                replace(tmp, out, overwrite);
                progress.accept("wrote " + out);
                return r;
            } catch (RuntimeException | IOException | Error e) {
                deleteTree(tmp, e);
                throw e;
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void checkTarget(Path model, Path out, boolean overwrite) {
        if (out.equals(model)) throw new QuantizeException(out + ": the output directory is the model directory itself");
        if (out.getParent() == null) throw new QuantizeException(out + ": cannot write the output to a file-system root");
        if (Files.exists(out)) {
            if (!Files.isDirectory(out)) throw new QuantizeException(out + ": exists and is not a directory");
            if (!overwrite) throw new QuantizeException(out + ": the output directory exists (use --force to replace it)");
            if (!Files.isRegularFile(out.resolve(HfModelDir.CONFIG)) && !isEmpty(out)) {
                throw new QuantizeException(out + ": exists and is not a model directory (no config.json); refusing to replace it");
            }
        }
    }

    private static Report write(HfModelDir model, LinearWeights linears, Path tmp, Path out, Options options,
                                Consumer<String> progress, Progress counter) throws IOException {
        TensorStore store = model.store();
        Set<String> kept = new LinkedHashSet<>();
        for (String c : model.canonicalNames()) kept.add(model.resolve(c));
        List<String> dropped = new ArrayList<>();
        for (String n : store.names()) if (!kept.contains(n)) dropped.add(n);

        // 1. quantize linear weights one at a time into a scratch file: (name, dtype, shape, offset, length)
        record Spilled(String name, dev.qlora4j.quant.safetensors.DType dtype, long[] shape, long offset, long length) {
        }
        List<Spilled> spilled = new ArrayList<>();
        Set<String> quantized = new LinkedHashSet<>();
        long linearParams = 0, linearBefore = 0, linearAfter = 0, linearTables = 0;
        int linearCount = 0;
        int linearTotal = 0;
        for (String stored : kept) if (linears.isLinearWeight(HfModelDir.canonical(stored))) linearTotal++;
        Path scratch = tmp.resolve(".quantized.scratch");
        try (FileChannel ch = FileChannel.open(scratch, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE,
                StandardOpenOption.READ)) {
            long pos = 0;
            for (String stored : kept) {
                String canonical = HfModelDir.canonical(stored);
                if (!linears.isLinearWeight(canonical)) continue;
                TensorInfo ti = store.info(stored);
                String prefix = stored.substring(0, stored.length() - BnbLayout.WEIGHT.length());
                try (Arena arena = Arena.ofConfined()) {
                    DenseWeight src = dense(store, stored, ti);
                    DenseWeight w = linears.conv1d ? transpose(src, arena) : src;
                    StoredWeight q = Quantizer.quantize(w, options.format(), options.blocksize(), options.doubleQuant(), arena);
                    for (BnbLayout.Tensor t : BnbLayout.tensors(prefix, q, BnbLayout.torchDtype(src.format()))) {
                        long len = t.data().byteSize();
                        long written = 0;
                        while (written < len) {
                            written += ch.write(t.data().asSlice(written).asByteBuffer(), pos + written);
                        }
                        spilled.add(new Spilled(t.name(), t.dtype(), t.shape(), pos, len));
                        pos += len;
                        linearAfter += len;
                        if (isTable(t.name())) linearTables += len;
                    }
                    linearParams += w.elementCount();
                    linearBefore += ti.byteSize();
                    linearCount++;
                    quantized.add(stored);
                    progress.accept(String.format(java.util.Locale.ROOT, "quantized %s %s %s -> %s [%d, %d]", stored,
                            ti.dtype(), ti.shapeString(), options.format(), w.rows(), w.cols()));
                    if (counter != null) counter.update(linearCount, linearTotal);
                }
            }
            if (linearCount == 0) {
                throw new QuantizeException(model.weightsFile() + ": no linear weights of a " + model.config().modelType()
                        + " model found (expected names like h.0." + (linears.conv1d ? "attn.c_attn" : "self_attention.query_key_value") + ".weight)");
            }
            ch.force(true);

            // 2. write model.safetensors from the mmap'd scratch file and the mmap'd source
            try (Arena mapped = Arena.ofShared()) {
                MemorySegment spill = pos == 0 ? MemorySegment.NULL
                        : ch.map(FileChannel.MapMode.READ_ONLY, 0, pos, mapped);
                SafetensorsWriter writer = new SafetensorsWriter().metadata("format", "pt");
                for (String stored : kept) {
                    if (!quantized.contains(stored)) writer.copyFrom(store, stored);
                }
                for (Spilled s : spilled) writer.add(s.name(), s.dtype(), s.shape(), spill.asSlice(s.offset(), s.length()));
                progress.accept("writing " + out.resolve(OUTPUT_WEIGHTS));
                writer.write(tmp.resolve(OUTPUT_WEIGHTS));
            }
        } finally {
            Files.deleteIfExists(scratch);
        }

        long before = 0;
        Set<Path> sources = new LinkedHashSet<>();
        for (String n : store.names()) sources.add(store.fileOf(n));
        for (Path p : sources) before += Files.size(p);
        int tensorsOut = kept.size() - linearCount + spilled.size();
        List<String> copied = new ArrayList<>();
        for (String f : COPIED_FILES) if (Files.isRegularFile(model.dir().resolve(f))) copied.add(f);
        return new Report(out, model.config().modelType(), options, store.names().size(), tensorsOut, linearCount,
                linearParams, linearBefore, linearAfter, linearTables, before, Files.size(tmp.resolve(OUTPUT_WEIGHTS)),
                List.copyOf(dropped), List.copyOf(copied));
    }

    private static boolean isTable(String name) {
        return name.endsWith(BnbLayout.QUANT_MAP) || name.endsWith(BnbLayout.NESTED_QUANT_MAP)
                || name.contains(BnbLayout.QUANT_STATE) || name.endsWith(BnbLayout.WEIGHT_FORMAT);
    }

    private static DenseWeight dense(TensorStore store, String name, TensorInfo ti) {
        WeightFormat f = switch (ti.dtype()) {
            case F32 -> WeightFormat.F32;
            case F16 -> WeightFormat.F16;
            case BF16 -> WeightFormat.BF16;
            default -> throw new QuantizeException(store.fileOf(name) + ": tensor '" + name + "' is " + ti.dtype()
                    + "; only F32, F16 and BF16 linear weights can be quantized (is the checkpoint already quantized?)");
        };
        if (ti.rank() != 2 || ti.shape()[0] <= 0 || ti.shape()[1] <= 0 || ti.shape()[0] > Integer.MAX_VALUE
                || ti.shape()[1] > Integer.MAX_VALUE) {
            throw new QuantizeException(store.fileOf(name) + ": tensor '" + name + "' has shape " + ti.shapeString()
                    + "; a linear weight needs two positive dimensions");
        }
        return new DenseWeight(f, store.segment(name), (int) ti.shape()[0], (int) ti.shape()[1]);
    }

    /** {@code W [rows, cols]} → {@code Wᵀ [cols, rows]} in the same dtype, in 64×64 tiles. */
    static DenseWeight transpose(DenseWeight w, Arena arena) {
        int rows = w.rows(), cols = w.cols();
        int e = DenseWeight.bytesPerElement(w.format());
        MemorySegment src = w.data();
        MemorySegment dst = arena.allocate((long) rows * cols * e, 16); // (cols, rows)
        final int tile = 64;
        for (int r0 = 0; r0 < rows; r0 += tile) {
            int r1 = Math.min(rows, r0 + tile);
            for (int c0 = 0; c0 < cols; c0 += tile) {
                int c1 = Math.min(cols, c0 + tile);
                for (int r = r0; r < r1; r++) {
                    for (int c = c0; c < c1; c++) {
                        long from = ((long) r * cols + c) * e;
                        long to = ((long) c * rows + r) * e;
                        if (e == 4) dst.set(ValueLayout.JAVA_INT_UNALIGNED, to, src.get(ValueLayout.JAVA_INT_UNALIGNED, from));
                        else dst.set(ValueLayout.JAVA_SHORT_UNALIGNED, to, src.get(ValueLayout.JAVA_SHORT_UNALIGNED, from));
                    }
                }
            }
        }
        return new DenseWeight(w.format(), dst, cols, rows);
    }

    /** config.json with {@code quantization_config}, plus the tokenizer and generation files, into {@code tmp}. */
    private static void copyConfigAndFiles(Path modelDir, Path tmp, Options options, List<String> files) throws IOException {
        Path configFile = modelDir.resolve(HfModelDir.CONFIG);
        JsonNode config = JSON.readTree(configFile.toFile());
        if (!(config instanceof ObjectNode obj)) throw new QuantizeException(configFile + ": not a JSON object");
        obj.set("quantization_config", JSON.valueToTree(quantizationConfig(options)));
        Files.writeString(tmp.resolve(HfModelDir.CONFIG), PythonJson.dumps(obj) + "\n", StandardCharsets.UTF_8);
        for (String f : files) Files.copy(modelDir.resolve(f), tmp.resolve(f));
    }

    /** {@code BitsAndBytesConfig.to_dict()} as transformers writes it into a quantized model's config.json. */
    static Map<String, Object> quantizationConfig(Options o) {
        boolean fourBit = o.format() != WeightFormat.INT8_ROWWISE;
        Map<String, Object> q = new java.util.TreeMap<>();
        q.put("_load_in_4bit", fourBit);
        q.put("_load_in_8bit", !fourBit);
        q.put("bnb_4bit_compute_dtype", "float32");
        q.put("bnb_4bit_quant_storage", "uint8");
        q.put("bnb_4bit_quant_type", fourBit ? BnbLayout.quantType(o.format()) : "fp4");
        q.put("bnb_4bit_use_double_quant", o.doubleQuant());
        q.put("llm_int8_enable_fp32_cpu_offload", false);
        q.put("llm_int8_has_fp16_weight", false);
        q.put("llm_int8_skip_modules", null);
        q.put("llm_int8_threshold", 6.0);
        q.put("load_in_4bit", fourBit);
        q.put("load_in_8bit", !fourBit);
        q.put("quant_method", "bitsandbytes");
        return q;
    }

    /** Renames {@code tmp} to {@code out}; an existing {@code out} is moved aside first and deleted after. */
    private static void replace(Path tmp, Path out, boolean overwrite) throws IOException {
        if (Files.exists(out)) {
            if (!overwrite) throw new QuantizeException(out + ": the output directory appeared while quantizing");
            Path old = out.resolveSibling("." + out.getFileName() + ".old-" + Long.toHexString(ThreadLocalRandom.current().nextLong()));
            Files.move(out, old, StandardCopyOption.ATOMIC_MOVE);
            try {
                Files.move(tmp, out, StandardCopyOption.ATOMIC_MOVE);
            } catch (IOException e) {
                Files.move(old, out, StandardCopyOption.ATOMIC_MOVE); // put the original back
                throw e;
            }
            deleteTree(old, null);
        } else {
            try {
                Files.move(tmp, out, StandardCopyOption.ATOMIC_MOVE);
            } catch (DirectoryNotEmptyException e) {
                throw new QuantizeException(out + ": the output directory appeared while quantizing");
            }
        }
    }

    private static boolean isEmpty(Path dir) {
        try (Stream<Path> s = Files.list(dir)) {
            return s.findAny().isEmpty();
        } catch (IOException e) {
            return false;
        }
    }

    private static void deleteTree(Path dir, Throwable primary) {
        if (!Files.exists(dir)) return;
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        } catch (IOException e) {
            if (primary != null) primary.addSuppressed(e);
        }
    }
}
