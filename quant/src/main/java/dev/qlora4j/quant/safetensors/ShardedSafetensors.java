package dev.qlora4j.quant.safetensors;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A sharded checkpoint: {@code model.safetensors.index.json} with a {@code weight_map} (tensor name → shard file name in
 * the same directory). Each shard is opened as a {@link SafetensorsFile}, mapped once. Only the tensors the index lists
 * are exposed; {@link #names()} is shard by shard (shard files sorted by name), storage order within a shard.
 */
public final class ShardedSafetensors implements TensorStore {

    public static final String INDEX_FILE = "model.safetensors.index.json";

    private static final ObjectMapper JSON = JsonMapper.builder()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .build();

    private final Path index;
    private final Map<String, SafetensorsFile> shards; // shard file name → file, sorted by name
    private final Map<String, SafetensorsFile> byTensor;
    private final List<String> names;

    private ShardedSafetensors(Path index, Map<String, SafetensorsFile> shards, Map<String, SafetensorsFile> byTensor,
                               List<String> names) {
        this.index = index;
        this.shards = shards;
        this.byTensor = byTensor;
        this.names = names;
    }

    /** Opens {@code dirOrIndex}: a directory holding {@value #INDEX_FILE}, or the index file itself. */
    public static ShardedSafetensors open(Path dirOrIndex) {
        Path index = Files.isDirectory(dirOrIndex) ? dirOrIndex.resolve(INDEX_FILE) : dirOrIndex;
        Map<String, String> weightMap = readWeightMap(index);
        Path dir = index.toAbsolutePath().getParent();
        Map<String, List<String>> tensorsByShard = new TreeMap<>();
        weightMap.forEach((tensor, shard) -> tensorsByShard.computeIfAbsent(shard, s -> new ArrayList<>()).add(tensor));

        Map<String, SafetensorsFile> shards = new LinkedHashMap<>();
        try {
            Map<String, SafetensorsFile> byTensor = new LinkedHashMap<>();
            List<String> names = new ArrayList<>(weightMap.size());
            for (Map.Entry<String, List<String>> e : tensorsByShard.entrySet()) {
                String shardName = e.getKey();
                Path shardPath = resolveShard(index, dir, shardName, e.getValue().getFirst());
                SafetensorsFile shard = SafetensorsFile.open(shardPath);
                shards.put(shardName, shard);
                for (String tensor : e.getValue()) {
                    if (!shard.contains(tensor)) {
                        throw SafetensorsException.forTensor(index, tensor, "listed in weight_map under shard '" + shardName
                                + "', but " + shardPath + " does not hold it");
                    }
                }
                for (String tensor : shard.names()) {
                    if (shardName.equals(weightMap.get(tensor))) {
                        byTensor.put(tensor, shard);
                        names.add(tensor);
                    }
                }
            }
            return new ShardedSafetensors(index, shards, byTensor, List.copyOf(names));
        } catch (RuntimeException | Error e) {
            for (SafetensorsFile s : shards.values()) s.close();
            throw e;
        }
    }

    private static Map<String, String> readWeightMap(Path index) {
        if (!Files.isRegularFile(index)) throw SafetensorsException.inFile(index, "index file does not exist");
        JsonNode root;
        try {
            root = JSON.readTree(index.toFile());
        } catch (JsonProcessingException e) {
            throw new SafetensorsException(index + ": index is not valid JSON: " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new SafetensorsException(index + ": cannot read index: " + e, e);
        }
        if (root == null || !root.isObject()) throw SafetensorsException.inFile(index, "index is not a JSON object");
        JsonNode map = root.get("weight_map");
        if (map == null || !map.isObject()) throw SafetensorsException.inFile(index, "index has no 'weight_map' object");
        Map<String, String> weightMap = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = map.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (!e.getValue().isTextual()) {
                throw SafetensorsException.forTensor(index, e.getKey(), "weight_map value must be a shard file name, got "
                        + e.getValue());
            }
            weightMap.put(e.getKey(), e.getValue().asText());
        }
        return weightMap;
    }

    /** The shard path, which must be a plain file name inside the index's directory. */
    private static Path resolveShard(Path index, Path dir, String shardName, String someTensor) {
        Path name;
        try {
            name = Path.of(shardName);
        } catch (InvalidPathException e) {
            name = null;
        }
        if (name == null || shardName.isEmpty() || name.isAbsolute() || name.getNameCount() != 1 || shardName.equals("..")
                || shardName.equals(".")) {
            throw SafetensorsException.forTensor(index, someTensor, "shard '" + shardName
                    + "' is not a file name in the index's directory");
        }
        Path shard = dir.resolve(name);
        if (!Files.isRegularFile(shard)) {
            throw SafetensorsException.forTensor(index, someTensor, "shard file " + shard + " does not exist");
        }
        return shard;
    }

    public Path indexFile() {
        return index;
    }

    /** The opened shards, keyed by file name as the index spells it, sorted. */
    public Map<String, SafetensorsFile> shards() {
        return Collections.unmodifiableMap(shards);
    }

    @Override
    public List<String> names() {
        return names;
    }

    @Override
    public boolean contains(String name) {
        return byTensor.containsKey(name);
    }

    @Override
    public TensorInfo info(String name) {
        return shardOf(name).info(name);
    }

    @Override
    public MemorySegment segment(String name) {
        return shardOf(name).segment(name);
    }

    @Override
    public Path fileOf(String name) {
        return shardOf(name).path();
    }

    @Override
    public String source() {
        return index.toString();
    }

    @Override
    public float[] readFloats(String name) {
        return shardOf(name).readFloats(name);
    }

    @Override
    public void close() {
        for (SafetensorsFile s : shards.values()) s.close();
    }

    @Override
    public String toString() {
        return "ShardedSafetensors[" + index + ", " + shards.size() + " shards, " + names.size() + " tensors]";
    }

    private SafetensorsFile shardOf(String name) {
        SafetensorsFile s = byTensor.get(name);
        if (s == null) throw SafetensorsException.forTensor(index, name, "no such tensor in this checkpoint");
        return s;
    }
}
