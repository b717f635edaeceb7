package dev.qlora4j.runtime.checkpoint;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import dev.qlora4j.quant.safetensors.SafetensorsException;
import dev.qlora4j.quant.safetensors.TensorInfo;
import dev.qlora4j.quant.safetensors.TensorStore;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * A sharded {@code pytorch_model.bin.index.json} checkpoint: a {@code weight_map} from tensor name to a shard file in
 * the same directory, each shard a {@link PytorchBinStore}. Names go shard by shard (shard names sorted), state_dict
 * order within a shard; only tensors the index lists are exposed.
 */
public final class ShardedPytorchBin implements TensorStore {

    public static final String INDEX_FILE = "pytorch_model.bin.index.json";

    private static final ObjectMapper JSON = JsonMapper.builder()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION).build();

    private final Path index;
    private final List<PytorchBinStore> shards;
    private final Map<String, PytorchBinStore> byTensor;
    private final List<String> names;

    private ShardedPytorchBin(Path index, List<PytorchBinStore> shards, Map<String, PytorchBinStore> byTensor) {
        this.index = index;
        this.shards = shards;
        this.byTensor = byTensor;
        this.names = List.copyOf(byTensor.keySet());
    }

    /** Opens the index file {@code index} and every shard it names. */
    public static ShardedPytorchBin open(Path index) {
        Map<String, List<String>> byShard = new TreeMap<>();
        readWeightMap(index).forEach((t, s) -> byShard.computeIfAbsent(s, k -> new ArrayList<>()).add(t));
        Path dir = index.toAbsolutePath().getParent();
        List<PytorchBinStore> shards = new ArrayList<>();
        try {
            Map<String, PytorchBinStore> byTensor = new LinkedHashMap<>();
            for (Map.Entry<String, List<String>> e : byShard.entrySet()) {
                String shardName = e.getKey();
                Path p = Path.of(shardName);
                if (p.isAbsolute() || p.getNameCount() != 1 || shardName.equals("..") || shardName.equals("."))
                    throw SafetensorsException.inFile(index, "shard '" + shardName
                            + "' is not a file name in the index's directory");
                Path shardPath = dir.resolve(p);
                if (!Files.isRegularFile(shardPath))
                    throw SafetensorsException.inFile(index, "shard file " + shardPath + " does not exist");
                PytorchBinStore shard = PytorchBinStore.open(shardPath);
                shards.add(shard);
                for (String t : e.getValue())
                    if (!shard.contains(t))
                        throw SafetensorsException.forTensor(index, t, "listed under shard '" + shardName + "', but "
                                + shardPath + " does not hold it");
                Set<String> listed = new HashSet<>(e.getValue());
                for (String t : shard.names()) if (listed.contains(t)) byTensor.put(t, shard);
            }
            return new ShardedPytorchBin(index, List.copyOf(shards), byTensor);
        } catch (RuntimeException e) {
            for (PytorchBinStore s : shards) s.close();
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
        JsonNode map = root == null ? null : root.get("weight_map");
        if (map == null || !map.isObject()) throw SafetensorsException.inFile(index, "index has no 'weight_map' object");
        Map<String, String> out = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = map.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (!e.getValue().isTextual())
                throw SafetensorsException.forTensor(index, e.getKey(), "weight_map value must be a shard file name, got "
                        + e.getValue());
            out.put(e.getKey(), e.getValue().asText());
        }
        return out;
    }

    private PytorchBinStore shard(String name) {
        PytorchBinStore s = byTensor.get(name);
        if (s == null) throw SafetensorsException.inFile(index, "no tensor named '" + name + "'");
        return s;
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
        return shard(name).info(name);
    }

    @Override
    public MemorySegment segment(String name) {
        return shard(name).segment(name);
    }

    @Override
    public Path fileOf(String name) {
        return shard(name).fileOf(name);
    }

    @Override
    public String source() {
        return index.toString();
    }

    @Override
    public float[] readFloats(String name) {
        return shard(name).readFloats(name);
    }

    @Override
    public void close() {
        for (PytorchBinStore s : shards) s.close();
    }

    @Override
    public String toString() {
        return "ShardedPytorchBin[" + index + ", " + shards.size() + " shards, " + names.size() + " tensors]";
    }
}
