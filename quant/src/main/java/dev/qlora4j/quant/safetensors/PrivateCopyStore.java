package dev.qlora4j.quant.safetensors;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A view of a {@link TensorStore} whose {@link #segment} hands out private off-heap copies instead of slices of the
 * mapped file: llama.cpp's {@code --no-mmap}. Each tensor is copied once, on first request, into page-aligned memory
 * of the caller's arena (anonymous memory, not page cache), so only the tensors a model keeps as stored are copied.
 *
 * <p>Why: on the benchmark VM a GEMV streams freshly allocated anonymous memory faster than page-cache pages of the
 * same bytes (the fp32 LM head of GPT-2 124M: ~3.1 vs ~3.9 ms per decode token; bench/RESULTS.md, session 8). The
 * cost is RAM that other processes mapping the same checkpoint can no longer share.
 *
 * <p>Closing the view closes nothing: the underlying store and the arena belong to the caller.
 */
public final class PrivateCopyStore implements TensorStore {

    private static final long PAGE = 4096;

    private final TensorStore store;
    private final Arena arena;
    private final Map<String, MemorySegment> copies = new HashMap<>();

    /** @param arena where the copies live; they stay valid until it closes */
    public PrivateCopyStore(TensorStore store, Arena arena) {
        this.store = store;
        this.arena = arena;
    }

    /** Bytes copied so far. */
    public synchronized long copiedBytes() {
        long b = 0;
        for (MemorySegment s : copies.values()) b += s.byteSize();
        return b;
    }

    @Override
    public List<String> names() {
        return store.names();
    }

    @Override
    public boolean contains(String name) {
        return store.contains(name);
    }

    @Override
    public TensorInfo info(String name) {
        return store.info(name);
    }

    /** A private, read-only copy of tensor {@code name} (the same copy on every call). */
    @Override
    public synchronized MemorySegment segment(String name) {
        MemorySegment copy = copies.get(name);
        if (copy == null) {
            MemorySegment mapped = store.segment(name);
            copy = arena.allocate(Math.max(1, mapped.byteSize()), PAGE).asSlice(0, mapped.byteSize());
            copy.copyFrom(mapped);
            copy = copy.asReadOnly();
            copies.put(name, copy);
        }
        return copy;
    }

    @Override
    public Path fileOf(String name) {
        return store.fileOf(name);
    }

    @Override
    public String source() {
        return store.source();
    }

    @Override
    public float[] readFloats(String name) {
        return store.readFloats(name);
    }

    @Override
    public void close() {
    }
}
