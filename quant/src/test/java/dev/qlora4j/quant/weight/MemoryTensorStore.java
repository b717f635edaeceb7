package dev.qlora4j.quant.weight;

import dev.qlora4j.quant.safetensors.DType;
import dev.qlora4j.quant.safetensors.SafetensorsException;
import dev.qlora4j.quant.safetensors.TensorInfo;
import dev.qlora4j.quant.safetensors.TensorStore;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** A {@link TensorStore} over heap segments, for layout tests that need no file. */
final class MemoryTensorStore implements TensorStore {
    private final Map<String, BnbLayout.Tensor> tensors = new LinkedHashMap<>();
    private final Map<String, TensorInfo> infos = new LinkedHashMap<>();
    private long offset;

    MemoryTensorStore add(BnbLayout.Tensor t) {
        tensors.put(t.name(), t);
        infos.put(t.name(), new TensorInfo(t.name(), t.dtype(), t.shape(), offset, offset + t.data().byteSize()));
        offset += t.data().byteSize();
        return this;
    }

    MemoryTensorStore addAll(List<BnbLayout.Tensor> ts) {
        ts.forEach(this::add);
        return this;
    }

    MemoryTensorStore add(String name, DType dtype, long[] shape, byte[] data) {
        return add(new BnbLayout.Tensor(name, dtype, shape, MemorySegment.ofArray(data)));
    }

    MemoryTensorStore remove(String name) {
        tensors.remove(name);
        infos.remove(name);
        return this;
    }

    @Override public List<String> names() { return new ArrayList<>(tensors.keySet()); }
    @Override public boolean contains(String name) { return tensors.containsKey(name); }

    @Override public TensorInfo info(String name) {
        TensorInfo i = infos.get(name);
        if (i == null) throw new SafetensorsException("mem.safetensors: no tensor '" + name + "'");
        return i;
    }

    @Override public MemorySegment segment(String name) { info(name); return tensors.get(name).data().asReadOnly(); }
    @Override public Path fileOf(String name) { info(name); return Path.of("mem.safetensors"); }
    @Override public String source() { return "mem.safetensors"; }
    @Override public float[] readFloats(String name) { throw new UnsupportedOperationException(); }
    @Override public void close() { }
}
