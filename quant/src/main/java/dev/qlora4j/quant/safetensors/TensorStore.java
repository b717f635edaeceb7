package dev.qlora4j.quant.safetensors;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.List;

/**
 * Named tensors backed by memory-mapped files: one safetensors file, a sharded safetensors checkpoint
 * ({@code model.safetensors.index.json}) or a legacy {@code pytorch_model.bin}. Segments are zero-copy, read-only
 * slices valid until {@link #close()}; their bytes are little-endian, row-major.
 */
public interface TensorStore extends AutoCloseable {

    /** Tensor names in storage order. */
    List<String> names();

    boolean contains(String name);

    /** Header entry of {@code name}; throws {@link SafetensorsException} naming the file when absent. */
    TensorInfo info(String name);

    /** Zero-copy read-only slice holding tensor {@code name}. */
    MemorySegment segment(String name);

    /** The file that holds {@code name} (for error messages and inspect). */
    Path fileOf(String name);

    /** A short description of where the tensors come from (a file or a directory). */
    String source();

    /** Tensor {@code name} (F32, F16 or BF16) converted to float32 on the heap: only for small tensors. */
    float[] readFloats(String name);

    @Override
    void close();
}
