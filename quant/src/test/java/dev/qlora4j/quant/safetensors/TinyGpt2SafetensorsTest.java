package dev.qlora4j.quant.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The real Hugging Face file {@code data/tiny-gpt2/model.safetensors} (sshleifer/tiny-gpt2, saved by transformers 4.52).
 * Names and shapes come from data/tiny-gpt2/SOURCE.md and config.json; values were read independently with
 * torch 1.13 from the same folder's {@code pytorch_model.bin} (bit-identical tensors) and are written as hex floats.
 */
class TinyGpt2SafetensorsTest {

    private static SafetensorsFile file;

    @BeforeAll
    static void open() {
        Path p = SafetensorsBytes.sharedDir().resolve("data/tiny-gpt2/model.safetensors");
        assumeTrue(Files.isRegularFile(p), "shared tiny-gpt2 checkpoint not present at " + p);
        file = SafetensorsFile.open(p);
    }

    @AfterAll
    static void close() {
        if (file != null) file.close();
    }

    /** SOURCE.md: 28 F32 tensors; Conv1D weights are [in, out]; n_embd 2, n_inner 8, vocab 50257, n_positions 1024. */
    private static Map<String, long[]> expectedShapes() {
        Map<String, long[]> m = new LinkedHashMap<>();
        m.put("transformer.wte.weight", new long[] {50257, 2});
        m.put("transformer.wpe.weight", new long[] {1024, 2});
        for (int l = 0; l < 2; l++) {
            String h = "transformer.h." + l + ".";
            m.put(h + "ln_1.weight", new long[] {2});
            m.put(h + "ln_1.bias", new long[] {2});
            m.put(h + "attn.c_attn.weight", new long[] {2, 6});
            m.put(h + "attn.c_attn.bias", new long[] {6});
            m.put(h + "attn.c_proj.weight", new long[] {2, 2});
            m.put(h + "attn.c_proj.bias", new long[] {2});
            m.put(h + "ln_2.weight", new long[] {2});
            m.put(h + "ln_2.bias", new long[] {2});
            m.put(h + "mlp.c_fc.weight", new long[] {2, 8});
            m.put(h + "mlp.c_fc.bias", new long[] {8});
            m.put(h + "mlp.c_proj.weight", new long[] {8, 2});
            m.put(h + "mlp.c_proj.bias", new long[] {2});
        }
        m.put("transformer.ln_f.weight", new long[] {2});
        m.put("transformer.ln_f.bias", new long[] {2});
        return m;
    }

    @Test
    void namesShapesAndDtypesMatchSourceMd() {
        Map<String, long[]> expected = expectedShapes();
        assertEquals(28, expected.size());
        assertEquals(expected.keySet(), new java.util.HashSet<>(file.names()));
        assertFalse(file.contains("lm_head.weight"), "tied to wte, not stored");
        for (var e : expected.entrySet()) {
            TensorInfo info = file.info(e.getKey());
            assertEquals(DType.F32, info.dtype(), e.getKey());
            assertArrayEquals(e.getValue(), info.shape(), e.getKey());
            assertEquals(info.elementCount() * 4, file.segment(e.getKey()).byteSize(), e.getKey());
        }
    }

    @Test
    void metadataAndSizes() {
        assertEquals(Map.of("format", "pt"), file.metadata());
        long data = 0;
        for (TensorInfo i : file.tensors()) data += i.byteSize();
        assertEquals(413_296L, 8 + file.headerLength() + data, "SOURCE.md file size");
        assertEquals(0, file.headerLength() % 8, "writer pads the header to a multiple of 8");
    }

    @Test
    void storageOrderIsTheLibrarysOrderForOneDtype() {
        // All F32, so the safetensors library lays them out by name; names() reports storage order.
        List<String> sorted = new ArrayList<>(file.names());
        sorted.sort(SafetensorsWriter::compareUtf8);
        assertEquals(sorted, file.names());
        long offset = 0;
        for (TensorInfo i : file.tensors()) {
            assertEquals(offset, i.begin(), i.name());
            offset = i.end();
        }
    }

    @Test
    void segmentsAreZeroCopyReadOnlyMappedSlices() {
        MemorySegment wte = file.segment("transformer.wte.weight");
        assertTrue(wte.isMapped());
        assertTrue(wte.isReadOnly());
        assertTrue(wte.isNative());
    }

    @Test
    void valuesMatchPytorchModelBin() {
        float[] wte = file.readFloats("transformer.wte.weight");
        assertEquals(50257 * 2, wte.length);
        assertArrayEquals(new float[] {0x1.c54314p-9f, -0x1.3b2068p-7f}, new float[] {wte[0], wte[1]});
        assertArrayEquals(new float[] {-0x1.687b88p-5f, -0x1.2a520ep-6f}, new float[] {wte[2 * 50256], wte[2 * 50256 + 1]});
        double sum = 0;
        for (float v : wte) sum += v;
        assertEquals(-0x1.dd786fede1c00p+3, sum, 1e-12, "sequential float64 sum of wte, from torch");

        float[] wpe = file.readFloats("transformer.wpe.weight");
        assertArrayEquals(new float[] {-0x1.31b31p-6f, -0x1.5ea3cep-8f}, new float[] {wpe[2 * 1023], wpe[2 * 1023 + 1]});

        assertArrayEquals(new float[] {
                -0x1.7e0966p-6f, -0x1.921a7p-6f, -0x1.ef165cp-8f, -0x1.f2daacp-8f, -0x1.88aabep-6f, -0x1.57bae4p-6f,
                -0x1.21afaap-8f, 0x1.ad7b96p-7f, -0x1.ed094ap-7f, -0x1.2b2d16p-10f, 0x1.3a34a2p-5f, -0x1.12e282p-6f},
                file.readFloats("transformer.h.0.attn.c_attn.weight"));
        assertArrayEquals(new float[] {0x1.e5a98ap-8f, 0x1.53f9cap-7f, 0x1.2d937ep-6f, -0x1.5926aap-6f},
                file.readFloats("transformer.h.1.attn.c_proj.weight"));
        float[] cproj = file.readFloats("transformer.h.1.mlp.c_proj.weight");
        assertEquals(0x1.bc424ep-7f, cproj[0]);
        assertEquals(0x1.c29582p-10f, cproj[15]);
        assertArrayEquals(new float[] {1f, 1f}, file.readFloats("transformer.ln_f.weight"));
        assertArrayEquals(new float[] {1f, 1f}, file.readFloats("transformer.h.0.ln_1.weight"));
        assertArrayEquals(new float[8], file.readFloats("transformer.h.1.mlp.c_fc.bias"));
    }

    @Test
    void openedThroughTensorStoresFromTheDirectory() {
        Path dir = file.path().getParent();
        try (TensorStore store = TensorStores.openSafetensors(dir)) {
            assertEquals(file.names(), store.names());
            assertEquals(file.path(), store.fileOf("transformer.wte.weight"));
        }
    }
}
