package dev.qlora4j.runtime.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.qlora4j.quant.safetensors.DType;
import dev.qlora4j.quant.safetensors.SafetensorsFile;
import dev.qlora4j.quant.safetensors.SafetensorsWriter;
import dev.qlora4j.quant.safetensors.TensorInfo;
import dev.qlora4j.runtime.checkpoint.HfModelDir.WeightsFormat;
import dev.qlora4j.runtime.config.ConfigException;
import dev.qlora4j.runtime.config.Gpt2Config;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class HfModelDirTest {

    private static final String P = HfModelDir.PREFIX;

    /** tiny-gpt2 ships model.safetensors and a legacy pytorch_model.bin with identical tensors: both read the same. */
    @Test
    void tinyGpt2SafetensorsAndBinHoldTheSameTensors() {
        Path dir = Fixtures.tinyGpt2();
        try (SafetensorsFile st = SafetensorsFile.open(dir.resolve("model.safetensors"));
             PytorchBinStore bin = PytorchBinStore.open(dir.resolve("pytorch_model.bin"))) {
            assertEquals(28, st.names().size());
            for (String name : st.names()) {
                assertTrue(bin.contains(name), name);
                TensorInfo a = st.info(name), b = bin.info(name);
                assertEquals(a.dtype(), b.dtype(), name);
                assertArrayEquals(a.shape(), b.shape(), name);
                assertEquals(-1, st.segment(name).mismatch(bin.segment(name)), name + ": bytes differ");
                assertArrayEquals(st.readFloats(name), bin.readFloats(name), name);
            }
            Set<String> extra = new TreeSet<>(bin.names());
            extra.removeAll(st.names());
            assertEquals(new TreeSet<>(List.of("lm_head.weight", P + "h.0.attn.bias", P + "h.0.attn.masked_bias",
                    P + "h.1.attn.bias", P + "h.1.attn.masked_bias")), extra);
            assertEquals(-1, bin.segment("lm_head.weight").mismatch(bin.segment(P + "wte.weight")), "tied head");
            TensorInfo mask = bin.info(P + "h.0.attn.bias");
            assertEquals(DType.U8, mask.dtype());
            assertArrayEquals(new long[]{1, 1, 1024, 1024}, mask.shape());
            assertEquals(P + "wte.weight", bin.names().getFirst(), "state_dict order");
        }
    }

    @Test
    void opensTinyGpt2PreferringSafetensors() {
        Path dir = Fixtures.tinyGpt2();
        try (HfModelDir m = HfModelDir.open(dir)) {
            assertEquals(WeightsFormat.SAFETENSORS, m.weightsFormat());
            assertEquals(dir.resolve("model.safetensors"), m.weightsFile());
            Gpt2Config c = assertInstanceOf(Gpt2Config.class, m.config());
            assertEquals(2, c.hiddenSize());
            assertEquals(2, c.numLayers());
            assertEquals(50257, c.vocabSize());
            assertEquals(List.of(50256), m.generationConfig().orElseThrow().eosTokenIds());
            assertEquals(P + "wte.weight", m.resolve("wte.weight"));
            assertEquals(P + "wte.weight", m.resolve(P + "wte.weight"));
            assertArrayEquals(new long[]{50257, 2}, m.info("wte.weight").shape());
            assertEquals(28, m.canonicalNames().size());
            assertTrue(m.canonicalNames().stream().noneMatch(n -> n.startsWith(P)));
            assertTrue(m.hasTokenizerJson());
            assertTrue(m.hasBpeFiles());
            assertEquals(dir, m.tokenizerDir());
            ModelDirException e = assertThrows(ModelDirException.class, () -> m.resolve("h.9.ln_1.weight"));
            assertTrue(e.getMessage().contains("h.9.ln_1.weight") && e.getMessage().contains("model.safetensors"),
                    e.getMessage());
        }
    }

    @Test
    void opensTinyGpt2FromItsBinAlone(@TempDir Path tmp) throws IOException {
        Path dir = Fixtures.tinyGpt2();
        for (String f : List.of("config.json", "generation_config.json", "pytorch_model.bin"))
            Files.createSymbolicLink(tmp.resolve(f), dir.resolve(f).toAbsolutePath());
        try (HfModelDir bin = HfModelDir.open(tmp); HfModelDir st = HfModelDir.open(dir)) {
            assertEquals(WeightsFormat.PYTORCH_BIN, bin.weightsFormat());
            assertFalse(bin.hasTokenizerJson());
            // buffers and the tied head are left out, so both list the same 28 weights
            assertEquals(new TreeSet<>(st.canonicalNames()), new TreeSet<>(bin.canonicalNames()));
            assertTrue(bin.has("lm_head.weight"), "the tied head is still resolvable");
            for (String c : st.canonicalNames())
                assertEquals(-1, st.segment(c).mismatch(bin.segment(c)), c);
        }
    }

    /** A sharded safetensors checkpoint saved from the bare model (no prefix) resolves the same canonical names. */
    @Test
    void opensShardedSafetensorsWithoutPrefix(@TempDir Path tmp) throws IOException {
        Path dir = Fixtures.tinyGpt2();
        Files.copy(dir.resolve("config.json"), tmp.resolve("config.json"));
        try (SafetensorsFile src = SafetensorsFile.open(dir.resolve("model.safetensors"))) {
            SafetensorsWriter[] shards = {new SafetensorsWriter(), new SafetensorsWriter()};
            Map<String, String> weightMap = new TreeMap<>();
            List<String> names = src.names();
            for (int i = 0; i < names.size(); i++) {
                String bare = HfModelDir.canonical(names.get(i));
                int s = i % 2;
                TensorInfo info = src.info(names.get(i));
                shards[s].add(bare, info.dtype(), info.shape(), src.segment(names.get(i)));
                weightMap.put(bare, "model-0000" + (s + 1) + "-of-00002.safetensors");
            }
            shards[0].write(tmp.resolve("model-00001-of-00002.safetensors"));
            shards[1].write(tmp.resolve("model-00002-of-00002.safetensors"));
            new ObjectMapper().writeValue(tmp.resolve(HfModelDir.SAFETENSORS_INDEX).toFile(),
                    Map.of("metadata", Map.of(), "weight_map", weightMap));
            try (HfModelDir m = HfModelDir.open(tmp)) {
                assertEquals(WeightsFormat.SHARDED_SAFETENSORS, m.weightsFormat());
                assertEquals("wte.weight", m.resolve(P + "wte.weight"));
                assertEquals(new TreeSet<>(weightMap.keySet()), new TreeSet<>(m.canonicalNames()));
                for (String n : names) assertEquals(-1, src.segment(n).mismatch(m.segment(n)), n);
                assertTrue(m.generationConfig().isEmpty());
            }
        }
    }

    @Test
    void opensShardedBin() throws IOException {
        Path dir = Fixtures.resource("sharded_bin");
        JsonNode expected = new ObjectMapper().readTree(dir.resolve("expected.json").toFile());
        try (HfModelDir m = HfModelDir.open(dir)) {
            assertEquals(WeightsFormat.SHARDED_PYTORCH_BIN, m.weightsFormat());
            assertEquals(4, m.config().hiddenSize());
            List<String> want = new ArrayList<>();
            expected.fieldNames().forEachRemaining(n -> want.add(HfModelDir.canonical(n)));
            assertEquals(want, m.canonicalNames());
            Set<Path> files = new HashSet<>();
            for (String n : want) {
                JsonNode e = expected.get(P + n);
                float[] got = m.readFloats(n);
                assertEquals(e.get("values").size(), got.length, n);
                for (int i = 0; i < got.length; i++) assertEquals((float) e.get("values").get(i).asDouble(), got[i], n);
                files.add(m.store().fileOf(m.resolve(n)));
            }
            assertEquals(2, files.size(), "two shards");
        }
    }

    @Test
    void errorsNameTheDirectory(@TempDir Path tmp) throws IOException {
        Path missing = tmp.resolve("nowhere");
        assertMessage(assertThrows(ModelDirException.class, () -> HfModelDir.open(missing)), missing, "does not exist");
        Path file = Files.writeString(tmp.resolve("file.txt"), "x");
        assertMessage(assertThrows(ModelDirException.class, () -> HfModelDir.open(file)), file, "not a directory");
        Path empty = Files.createDirectory(tmp.resolve("empty"));
        assertMessage(assertThrows(ModelDirException.class, () -> HfModelDir.open(empty)), empty, "no config.json");
        Files.writeString(empty.resolve("config.json"), "{\"model_type\":\"gpt2\",\"n_embd\":4,\"n_head\":2,"
                + "\"n_layer\":1,\"vocab_size\":11}");
        assertMessage(assertThrows(ModelDirException.class, () -> HfModelDir.open(empty)), empty, "no weights found");
        Files.writeString(empty.resolve("config.json"), "{\"model_type\":\"llama\"}");
        assertMessage(assertThrows(ConfigException.class, () -> HfModelDir.open(empty)), empty.resolve("config.json"),
                "unsupported model_type 'llama'");
        Files.writeString(empty.resolve("config.json"), "{\"model_type\":\"gpt2\",\"n_embd\":4,\"n_head\":2,"
                + "\"n_layer\":1,\"vocab_size\":11}");
        Files.copy(Fixtures.resource("evil_os_system.bin"), empty.resolve("pytorch_model.bin"));
        assertThrows(UnsafePickleException.class, () -> HfModelDir.open(empty));
    }

    private static void assertMessage(RuntimeException e, Path path, String text) {
        assertTrue(e.getMessage().contains(path.toString()), e.getMessage());
        assertTrue(e.getMessage().contains(text), e.getMessage());
    }
}
