package dev.qlora4j.runtime.model;

import dev.qlora4j.quant.safetensors.SafetensorsFile;
import dev.qlora4j.quant.safetensors.TensorInfo;

import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;

/** Reads the PyTorch reference outputs (runtime/src/test/python/reference_models.py) from a safetensors file. */
final class ReferenceFile implements AutoCloseable {
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private final SafetensorsFile file;

    ReferenceFile(Path path) {
        this.file = SafetensorsFile.open(path);
    }

    boolean has(String name) {
        return file.contains(name);
    }

    TensorInfo info(String name) {
        return file.info(name);
    }

    float[] floats(String name) {
        return file.readFloats(name);
    }

    int[] ints(String name) {
        var seg = file.segment(name);
        int n = (int) (seg.byteSize() / 8);
        int[] out = new int[n];
        for (int i = 0; i < n; i++) out[i] = Math.toIntExact(seg.get(I64, i * 8L));
        return out;
    }

    @Override
    public void close() {
        file.close();
    }

    static Path referenceDir() {
        return Path.of("src/test/resources/reference").toAbsolutePath();
    }

    static Path sharedDir() {
        return Path.of(System.getProperty("qlora.shared", "../../shared")).toAbsolutePath().normalize();
    }
}
