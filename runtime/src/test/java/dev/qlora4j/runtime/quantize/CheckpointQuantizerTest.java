package dev.qlora4j.runtime.quantize;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.qlora4j.quant.safetensors.DType;
import dev.qlora4j.quant.safetensors.SafetensorsFile;
import dev.qlora4j.quant.safetensors.SafetensorsWriter;
import dev.qlora4j.quant.safetensors.TensorInfo;
import dev.qlora4j.quant.safetensors.TensorStore;
import dev.qlora4j.quant.weight.BlockScales;
import dev.qlora4j.quant.weight.BnbLayout;
import dev.qlora4j.quant.weight.FourBitWeight;
import dev.qlora4j.quant.weight.RowwiseInt8Weight;
import dev.qlora4j.quant.weight.StoredWeight;
import dev.qlora4j.quant.weight.WeightFormat;
import dev.qlora4j.runtime.checkpoint.HfModelDir;
import dev.qlora4j.runtime.checkpoint.PytorchBinStore;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

class CheckpointQuantizerTest {

    static final Path TINY = Path.of(System.getProperty("qlora.shared", "../../shared"), "data", "tiny-gpt2");
    static final List<String> GPT2_LINEARS = List.of("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj");
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path tmp;

    static CheckpointQuantizer.Report quantize(Path model, Path out, WeightFormat f, int bs, boolean dq) {
        return CheckpointQuantizer.quantize(model, out, new CheckpointQuantizer.Options(f, bs, dq), false, s -> { });
    }

    /** Largest distance from a point in [-1, 1] to the nearest code value: half the widest gap. */
    static float halfGap(float[] table) {
        float[] t = table.clone();
        java.util.Arrays.sort(t);
        float g = 0;
        for (int i = 1; i < t.length; i++) g = Math.max(g, t[i] - t[i - 1]);
        return g / 2;
    }

    @ParameterizedTest
    @CsvSource({"NF4, 64, true", "NF4, 64, false", "FP4, 64, true", "FP4, 32, false", "NF4, 4096, true", "INT8_ROWWISE, 0, false"})
    void tinyGpt2RoundTripsWithinTheFormatsErrorBound(WeightFormat format, int blocksize, boolean dq) throws IOException {
        Path out = tmp.resolve("out");
        CheckpointQuantizer.Report r = quantize(TINY, out, format, blocksize, dq);
        assertEquals(8, r.linearWeights());
        assertEquals(96, r.linearParams()); // 2 layers × (2·6 + 2·2 + 2·8 + 8·2)
        assertEquals(96 * 4, r.linearBytesBefore());
        assertEquals(Files.size(out.resolve("model.safetensors")), r.bytesAfter());
        assertEquals(Files.size(TINY.resolve("model.safetensors")), r.bytesBefore());

        try (SafetensorsFile src = SafetensorsFile.open(TINY.resolve("model.safetensors"));
             SafetensorsFile dst = SafetensorsFile.open(out.resolve("model.safetensors"))) {
            assertEquals("pt", dst.metadata().get("format"));
            Set<String> expectedNames = new HashSet<>();
            for (String n : src.names()) {
                String canonical = HfModelDir.canonical(n);
                boolean linear = GPT2_LINEARS.stream().anyMatch(l -> canonical.matches("h\\.\\d+\\." + l.replace(".", "\\.") + "\\.weight"));
                if (!linear) {
                    // embeddings, LayerNorms, biases: byte-identical
                    expectedNames.add(n);
                    TensorInfo a = src.info(n), b = dst.info(n);
                    assertEquals(a.dtype(), b.dtype(), n);
                    assertArrayEquals(a.shape(), b.shape(), n);
                    assertEquals(-1, src.segment(n).mismatch(dst.segment(n)), n + " bytes differ");
                    continue;
                }
                String p = n.substring(0, n.length() - ".weight".length());
                StoredWeight w = BnbLayout.read(dst, p);
                List<String> parts = BnbLayout.componentNames(dst, p);
                expectedNames.addAll(parts);
                assertEquals(format, w.format(), n);
                // Conv1D [in, out] was transposed: the quantized weight is [out, in]
                TensorInfo ti = src.info(n);
                int in = (int) ti.shape()[0], outF = (int) ti.shape()[1];
                assertEquals(outF, w.rows(), n);
                assertEquals(in, w.cols(), n);
                float[] orig = src.readFloats(n);
                float[] wt = new float[in * outF]; // (out, in)
                for (int i = 0; i < in; i++) for (int o = 0; o < outF; o++) wt[o * in + i] = orig[i * outF + o];
                float[] deq = new float[wt.length];
                w.dequantize(0, wt.length, deq, 0);
                assertWithinBound(w, wt, deq, n);
                if (w instanceof FourBitWeight f) {
                    assertEquals(blocksize, f.blocksize());
                    assertEquals(dq, f.scales() instanceof BlockScales.DoubleQuantScales, n);
                    String qs = new String(dst.segment(p + ".weight.quant_state.bitsandbytes__" + BnbLayout.quantType(format))
                            .toArray(ValueLayout.JAVA_BYTE), java.nio.charset.StandardCharsets.UTF_8);
                    assertTrue(qs.startsWith("{\"quant_type\": \"" + BnbLayout.quantType(format) + "\", \"blocksize\": "
                            + blocksize + ", \"dtype\": \"float32\", \"shape\": [" + outF + ", " + in + "]"), qs);
                }
            }
            assertEquals(expectedNames, new HashSet<>(dst.names()));
            assertEquals(expectedNames.size(), r.tensorsOut());
        }

        // config.json: the original plus quantization_config
        JsonNode orig = JSON.readTree(TINY.resolve("config.json").toFile());
        ObjectNode written = (ObjectNode) JSON.readTree(out.resolve("config.json").toFile());
        JsonNode q = written.remove("quantization_config");
        assertEquals(orig, written);
        assertEquals("bitsandbytes", q.get("quant_method").asText());
        boolean fourBit = format != WeightFormat.INT8_ROWWISE;
        assertEquals(fourBit, q.get("load_in_4bit").asBoolean());
        assertEquals(!fourBit, q.get("load_in_8bit").asBoolean());
        assertEquals("float32", q.get("bnb_4bit_compute_dtype").asText());
        if (fourBit) {
            assertEquals(BnbLayout.quantType(format), q.get("bnb_4bit_quant_type").asText());
            assertEquals(dq, q.get("bnb_4bit_use_double_quant").asBoolean());
        }
        String text = Files.readString(out.resolve("config.json"));
        assertTrue(text.contains("\"layer_norm_epsilon\": 1e-05,\n"), "python float repr kept");
        assertTrue(text.contains("\n  \"quantization_config\": {\n    \"_load_in_4bit\": "), text);

        // tokenizer and generation files copied byte for byte
        for (String f : List.of("generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                "vocab.json", "merges.txt")) {
            assertEquals(-1, Files.mismatch(TINY.resolve(f), out.resolve(f)), f);
        }
        assertEquals(List.of("out"), listNames(tmp), "no temporary or scratch files left");
        assertFalse(Files.exists(out.resolve(".quantized.scratch")));

        // and the output reads back as a model directory
        try (HfModelDir back = HfModelDir.open(out)) {
            assertEquals("gpt2", back.config().modelType());
        }
    }

    static void assertWithinBound(StoredWeight w, float[] x, float[] deq, String name) {
        switch (w) {
            case FourBitWeight f -> {
                float half = halfGap(f.codeTable());
                int bs = f.blocksize();
                float maxAbs = 0;
                for (float v : x) maxAbs = Math.max(maxAbs, Math.abs(v));
                for (int b = 0; b * bs < x.length; b++) {
                    float absmax = 0;
                    for (int i = b * bs; i < Math.min(x.length, (b + 1) * bs); i++) absmax = Math.max(absmax, Math.abs(x[i]));
                    // 4-bit rounding, plus (with double quant) the 8-bit error of the scale itself
                    float tol = half * absmax * 1.0001f + (f.scales() instanceof BlockScales.DoubleQuantScales ? 0.01f * maxAbs : 0) + 1e-7f;
                    for (int i = b * bs; i < Math.min(x.length, (b + 1) * bs); i++) {
                        assertTrue(Math.abs(deq[i] - x[i]) <= tol, name + "[" + i + "]: " + deq[i] + " vs " + x[i] + " (tol " + tol + ")");
                    }
                }
            }
            case RowwiseInt8Weight r -> {
                for (int row = 0; row < r.rows(); row++) {
                    float rowmax = 0;
                    for (int c = 0; c < r.cols(); c++) rowmax = Math.max(rowmax, Math.abs(x[row * r.cols() + c]));
                    float tol = rowmax / 127f * 0.5001f + 1e-7f;
                    for (int c = 0; c < r.cols(); c++) {
                        int i = row * r.cols() + c;
                        assertTrue(Math.abs(deq[i] - x[i]) <= tol, name + "[" + i + "]: " + deq[i] + " vs " + x[i]);
                    }
                }
            }
            default -> fail("unexpected " + w);
        }
    }

    static List<String> listNames(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void pytorchBinSourceGivesTheSameQuantizedTensors() throws IOException {
        Path binOnly = tmp.resolve("bin-model");
        Files.createDirectory(binOnly);
        Files.copy(TINY.resolve("config.json"), binOnly.resolve("config.json"));
        Files.copy(TINY.resolve("pytorch_model.bin"), binOnly.resolve("pytorch_model.bin"));
        CheckpointQuantizer.Report fromBin = quantize(binOnly, tmp.resolve("a"), WeightFormat.NF4, 64, true);
        quantize(TINY, tmp.resolve("b"), WeightFormat.NF4, 64, true);
        List<String> buffers;
        try (PytorchBinStore bin = PytorchBinStore.open(binOnly.resolve("pytorch_model.bin"))) {
            buffers = bin.names().stream().filter(n -> n.matches("(transformer\\.)?h\\.\\d+\\.attn\\.(bias|masked_bias)")).toList();
        }
        assertEquals(4, buffers.size(), "tiny-gpt2's bin holds attn.bias and attn.masked_bias for 2 layers");
        assertTrue(fromBin.dropped().containsAll(buffers), fromBin.dropped() + " should contain " + buffers);
        assertTrue(fromBin.dropped().contains("lm_head.weight"), "the tied LM head is not saved, as transformers does");
        try (SafetensorsFile a = SafetensorsFile.open(tmp.resolve("a/model.safetensors"));
             SafetensorsFile b = SafetensorsFile.open(tmp.resolve("b/model.safetensors"))) {
            for (String n : b.names()) {
                String an = a.contains(n) ? n : HfModelDir.canonical(n);
                assertTrue(a.contains(an), n);
                assertEquals(-1, a.segment(an).mismatch(b.segment(n)), n);
            }
            assertEquals(b.names().size(), a.names().size(), "same tensors from the bin as from the safetensors file");
        }
        assertEquals(List.of("a", "b", "bin-model"), listNames(tmp));
    }

    @Test
    void existingOutputIsRefusedUnlessOverwriteAndThenReplaced() throws IOException {
        Path out = tmp.resolve("out");
        quantize(TINY, out, WeightFormat.NF4, 64, true);
        QuantizeException e = assertThrows(QuantizeException.class, () -> quantize(TINY, out, WeightFormat.FP4, 64, false));
        assertTrue(e.getMessage().contains(out.toString()) && e.getMessage().contains("exists"), e.getMessage());
        CheckpointQuantizer.quantize(TINY, out, new CheckpointQuantizer.Options(WeightFormat.FP4, 64, false), true, s -> { });
        try (SafetensorsFile f = SafetensorsFile.open(out.resolve("model.safetensors"))) {
            assertTrue(f.contains("transformer.h.0.attn.c_attn.weight.quant_state.bitsandbytes__fp4"));
        }
        assertEquals(List.of("out"), listNames(tmp));
        // a directory that is not a model is never replaced
        Path precious = tmp.resolve("precious");
        Files.createDirectories(precious);
        Files.writeString(precious.resolve("notes.txt"), "keep me");
        e = assertThrows(QuantizeException.class, () -> CheckpointQuantizer.quantize(TINY, precious,
                CheckpointQuantizer.Options.nf4(), true, s -> { }));
        assertTrue(e.getMessage().contains("not a model directory"), e.getMessage());
        assertEquals("keep me", Files.readString(precious.resolve("notes.txt")));
        e = assertThrows(QuantizeException.class, () -> CheckpointQuantizer.quantize(TINY, TINY,
                CheckpointQuantizer.Options.nf4(), true, s -> { }));
        assertTrue(e.getMessage().contains("model directory itself"), e.getMessage());
    }

    @Test
    void failureLeavesNoOutputAndNoTemporaryDirectory() throws IOException {
        Path bad = tmp.resolve("bad");
        Files.createDirectory(bad);
        Files.copy(TINY.resolve("config.json"), bad.resolve("config.json"));
        try (SafetensorsFile src = SafetensorsFile.open(TINY.resolve("model.safetensors"))) {
            SafetensorsWriter w = new SafetensorsWriter();
            for (String n : src.names()) {
                if (n.equals("transformer.h.1.mlp.c_fc.weight")) w.add(n, DType.I32, new long[]{2, 8}, new byte[64]);
                else w.copyFrom(src, n);
            }
            w.write(bad.resolve("model.safetensors"));
        }
        Path out = tmp.resolve("out");
        QuantizeException e = assertThrows(QuantizeException.class, () -> quantize(bad, out, WeightFormat.NF4, 64, true));
        assertTrue(e.getMessage().contains("transformer.h.1.mlp.c_fc.weight") && e.getMessage().contains("I32")
                && e.getMessage().contains(bad.resolve("model.safetensors").toString()), e.getMessage());
        assertEquals(List.of("bad"), listNames(tmp));
    }

    @Test
    void optionsAreValidated() {
        assertThrows(IllegalArgumentException.class, () -> new CheckpointQuantizer.Options(WeightFormat.NF4, 100, true));
        assertThrows(IllegalArgumentException.class, () -> new CheckpointQuantizer.Options(WeightFormat.NF4, 8192, true));
        assertThrows(IllegalArgumentException.class, () -> new CheckpointQuantizer.Options(WeightFormat.INT8_ROWWISE, 0, true));
        assertThrows(IllegalArgumentException.class, () -> new CheckpointQuantizer.Options(WeightFormat.F16, 64, false));
        assertThrows(IllegalArgumentException.class, () -> new CheckpointQuantizer.Options(WeightFormat.INT8_BLOCKWISE, 64, false));
    }

    /** A synthetic BLOOM: its [out, in] linear weights are quantized as stored, not transposed. */
    @Test
    void bloomLinearsAreQuantizedAsStored() throws IOException {
        int c = 8, v = 16;
        Path bloom = tmp.resolve("bloom");
        Files.createDirectory(bloom);
        Files.writeString(bloom.resolve("config.json"), "{\"model_type\": \"bloom\", \"hidden_size\": " + c
                + ", \"n_head\": 2, \"n_layer\": 1, \"vocab_size\": " + v + ", \"layer_norm_epsilon\": 1e-05}");
        Random rnd = new Random(7);
        SafetensorsWriter w = new SafetensorsWriter();
        List<String[]> lin = List.of(new String[]{"self_attention.query_key_value", "" + 3 * c, "" + c},
                new String[]{"self_attention.dense", "" + c, "" + c}, new String[]{"mlp.dense_h_to_4h", "" + 4 * c, "" + c},
                new String[]{"mlp.dense_4h_to_h", "" + c, "" + 4 * c});
        List<float[]> originals = new ArrayList<>();
        for (String[] l : lin) {
            int o = Integer.parseInt(l[1]), i = Integer.parseInt(l[2]);
            float[] x = new float[o * i];
            for (int k = 0; k < x.length; k++) x[k] = (float) rnd.nextGaussian() * 0.02f;
            originals.add(x);
            w.add("transformer.h.0." + l[0] + ".weight", new long[]{o, i}, x);
            w.add("transformer.h.0." + l[0] + ".bias", new long[]{o}, new float[o]);
        }
        w.add("transformer.word_embeddings.weight", DType.BF16, new long[]{v, c}, new float[v * c]);
        for (String ln : List.of("word_embeddings_layernorm", "h.0.input_layernorm", "h.0.post_attention_layernorm", "ln_f")) {
            w.add("transformer." + ln + ".weight", new long[]{c}, new float[c]);
            w.add("transformer." + ln + ".bias", new long[]{c}, new float[c]);
        }
        w.write(bloom.resolve("model.safetensors"));

        Path out = tmp.resolve("bloom-int8");
        CheckpointQuantizer.Report r = quantize(bloom, out, WeightFormat.INT8_ROWWISE, 0, false);
        assertEquals(4, r.linearWeights());
        try (TensorStore dst = SafetensorsFile.open(out.resolve("model.safetensors"))) {
            for (int k = 0; k < lin.size(); k++) {
                String p = "transformer.h.0." + lin.get(k)[0];
                StoredWeight q = BnbLayout.read(dst, p);
                assertEquals(Integer.parseInt(lin.get(k)[1]), q.rows(), p);
                assertEquals(Integer.parseInt(lin.get(k)[2]), q.cols(), p);
                float[] deq = new float[(int) q.elementCount()];
                q.dequantize(0, deq.length, deq, 0);
                assertWithinBound(q, originals.get(k), deq, p);
                assertEquals(DType.U8, dst.info(p + ".weight_format").dtype());
                assertEquals(0, dst.info(p + ".weight_format").rank());
            }
            assertEquals(DType.BF16, dst.info("transformer.word_embeddings.weight").dtype());
        }
    }
}
