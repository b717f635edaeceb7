package dev.qlora4j.quant.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Sharded checkpoints through model.safetensors.index.json, and {@link TensorStores#openSafetensors}. */
class ShardedSafetensorsTest {

    private static final String SHARD1 = "model-00001-of-00002.safetensors";
    private static final String SHARD2 = "model-00002-of-00002.safetensors";

    @TempDir
    Path dir;

    @BeforeEach
    void writeShards() {
        new SafetensorsWriter().add("wte", new long[] {2, 2}, new float[] {1, 2, 3, 4})
                .add("h.0.w", DType.BF16, new long[] {2}, new float[] {0.5f, -1}).write(dir.resolve(SHARD1));
        new SafetensorsWriter().add("h.1.w", new long[] {3}, new float[] {5, 6, 7})
                .add("ids", new long[] {2}, new int[] {9, 10}).write(dir.resolve(SHARD2));
    }

    private void writeIndex(String weightMapJson) throws IOException {
        Files.writeString(dir.resolve(ShardedSafetensors.INDEX_FILE),
                "{\"metadata\":{\"total_size\":36},\"weight_map\":" + weightMapJson + "}");
    }

    private static final String FULL_MAP = "{\"wte\":\"" + SHARD1 + "\",\"h.0.w\":\"" + SHARD1 + "\",\"h.1.w\":\"" + SHARD2
            + "\",\"ids\":\"" + SHARD2 + "\"}";

    private static String assertOpenFails(Path p, String... fragments) {
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> TensorStores.openSafetensors(p).close());
        for (String f : fragments) assertTrue(e.getMessage().contains(f), () -> "lacks '" + f + "': " + e.getMessage());
        return e.getMessage();
    }

    @Test
    void roundTripAcrossShards() throws IOException {
        writeIndex(FULL_MAP);
        try (TensorStore store = TensorStores.openSafetensors(dir)) {
            ShardedSafetensors sharded = assertInstanceOf(ShardedSafetensors.class, store);
            assertEquals(List.of("wte", "h.0.w", "h.1.w", "ids"), store.names());
            assertEquals(2, sharded.shards().size());
            assertArrayEquals(new float[] {1, 2, 3, 4}, store.readFloats("wte"));
            assertArrayEquals(new float[] {0.5f, -1}, store.readFloats("h.0.w"));
            assertArrayEquals(new float[] {5, 6, 7}, store.readFloats("h.1.w"));
            assertArrayEquals(new long[] {2}, store.info("ids").shape());
            assertEquals(dir.resolve(SHARD2).toAbsolutePath(), store.fileOf("ids").toAbsolutePath());
            assertEquals(8, store.segment("ids").byteSize());
            assertTrue(store.segment("wte").isMapped());
        }
    }

    @Test
    void indexFileOpensDirectly() throws IOException {
        writeIndex(FULL_MAP);
        try (TensorStore store = TensorStores.openSafetensors(dir.resolve(ShardedSafetensors.INDEX_FILE))) {
            assertEquals(4, store.names().size());
        }
    }

    @Test
    void missingShardNamesIndexAndShard() throws IOException {
        writeIndex("{\"wte\":\"" + SHARD1 + "\",\"x\":\"model-00003-of-00003.safetensors\"}");
        assertOpenFails(dir, ShardedSafetensors.INDEX_FILE, "model-00003-of-00003.safetensors", "does not exist", "'x'");
    }

    @Test
    void tensorListedButAbsentFromShard() throws IOException {
        writeIndex("{\"wte\":\"" + SHARD1 + "\",\"ghost\":\"" + SHARD1 + "\"}");
        assertOpenFails(dir, ShardedSafetensors.INDEX_FILE, "tensor 'ghost'", SHARD1, "does not hold it");
    }

    @Test
    void shardOutsideDirectoryRejected() throws IOException {
        writeIndex("{\"wte\":\"../" + SHARD1 + "\"}");
        assertOpenFails(dir, ShardedSafetensors.INDEX_FILE, "not a file name in the index's directory");
    }

    @Test
    void duplicateKeyInIndexRejected() throws IOException {
        writeIndex("{\"wte\":\"" + SHARD1 + "\",\"wte\":\"" + SHARD2 + "\"}");
        assertOpenFails(dir, ShardedSafetensors.INDEX_FILE, "not valid JSON", "wte");
    }

    @Test
    void indexWithoutWeightMap() throws IOException {
        Files.writeString(dir.resolve(ShardedSafetensors.INDEX_FILE), "{\"metadata\":{}}");
        assertOpenFails(dir, ShardedSafetensors.INDEX_FILE, "no 'weight_map'");
    }

    @Test
    void badShardErrorNamesTheShardFile() throws IOException {
        writeIndex(FULL_MAP);
        Files.write(dir.resolve(SHARD2), new byte[] {1, 2, 3});
        assertOpenFails(dir, SHARD2, "too short");
    }

    @Test
    void singleFileIsPreferredAndPlainFilesOpen() throws IOException {
        writeIndex(FULL_MAP);
        new SafetensorsWriter().add("only", new long[] {1}, new float[] {3}).write(dir.resolve(TensorStores.SINGLE_FILE));
        try (TensorStore store = TensorStores.openSafetensors(dir)) {
            assertInstanceOf(SafetensorsFile.class, store);
            assertEquals(List.of("only"), store.names());
        }
        try (TensorStore store = TensorStores.openSafetensors(dir.resolve(SHARD2))) {
            assertEquals(List.of("h.1.w", "ids"), store.names());
        }
    }

    @Test
    void directoryWithoutSafetensorsHasClearMessage() throws IOException {
        Path empty = Files.createDirectory(dir.resolve("empty"));
        Files.writeString(empty.resolve("pytorch_model.bin"), "x");
        assertOpenFails(empty, empty.toString(), "neither model.safetensors nor model.safetensors.index.json",
                "pytorch_model.bin");
        assertOpenFails(dir.resolve("nope"), "no such file or directory");
    }
}
