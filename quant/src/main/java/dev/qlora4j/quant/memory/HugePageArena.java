package dev.qlora4j.quant.memory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * An {@link Arena} whose large allocations are carved out of 2 MiB-aligned anonymous slabs marked
 * {@code madvise(MADV_HUGEPAGE)}, so the kernel backs them with transparent huge pages where it can: the weights a
 * decode step streams then cost one TLB entry per 2 MiB instead of one per 4 KiB (the fp32 decode GEMV streamed
 * 1.18–1.28× faster from DRAM so; bench/RESULTS.md, session 24). Any large allocation gets that on a host whose THP
 * mode is {@code always}; on one set to {@code madvise} (the common default, and the benchmark VM's) only memory
 * marked with an explicit {@code madvise} does.
 *
 * <p>Allocations under {@link #MIN_CARVED} bytes, and all of them where {@link HugePages#available()} is false,
 * come from an ordinary shared arena, which also owns the slabs: closing this arena unmaps them. Slabs are never
 * reused, so every allocation is zero-filled as {@link Arena#allocate} promises (fresh anonymous pages are).
 * Thread-safe: allocation is synchronized; the segments are shared-arena segments.
 */
public final class HugePageArena implements Arena {

    /** Smaller allocations go to the plain arena: a huge page would mostly hold other tensors' bytes anyway. */
    public static final long MIN_CARVED = 64 << 10;
    /** Slab size: big enough that carving wastes little, small enough that the unused tail costs little. */
    static final long SLAB = 32L << 20;

    private final Arena inner = Arena.ofShared();
    private final boolean huge;
    private MemorySegment slab = MemorySegment.NULL; // (SLAB) bytes: the slab being carved; NULL (0 bytes) at first
    private long used; // bytes of slab handed out
    private long mapped; // bytes mapped in slabs, all of them

    /** @param huge false: every allocation is an ordinary one (the {@code -Dqlora.hugePages=false} switch) */
    public HugePageArena(boolean huge) {
        this.huge = huge && HugePages.available();
    }

    /** An arena that uses huge pages where {@link HugePages#enabled()} says so. */
    public static Arena ofShared() {
        return new HugePageArena(HugePages.enabled());
    }

    /** Whether large allocations really go to madvised slabs (false off Linux, with THP off, or switched off). */
    public boolean huge() {
        return huge;
    }

    /** Bytes of address space mapped for slabs so far (resident only where touched). */
    public synchronized long slabBytes() {
        return mapped;
    }

    @Override
    public synchronized MemorySegment allocate(long byteSize, long byteAlignment) {
        if (byteSize < 0) throw new IllegalArgumentException("negative size " + byteSize);
        if (byteAlignment <= 0 || Long.bitCount(byteAlignment) != 1) {
            throw new IllegalArgumentException("alignment " + byteAlignment + " is not a power of two");
        }
        if (!huge || byteSize < MIN_CARVED || byteAlignment > HugePages.SIZE) return inner.allocate(byteSize, byteAlignment);
        long at = (used + byteAlignment - 1) & -byteAlignment;
        if (at + byteSize > slab.byteSize()) { // also true of the empty NULL slab before the first carve
            long size = Math.max(SLAB, (byteSize + HugePages.SIZE - 1) & -HugePages.SIZE);
            MemorySegment fresh = HugePages.map(size, inner);
            if (fresh == null) return inner.allocate(byteSize, byteAlignment); // mmap refused: plain memory still works
            mapped += size;
            if (size > SLAB) return fresh.asSlice(0, byteSize); // a tensor of its own: keep carving the current slab
            slab = fresh;
            at = 0;
        }
        used = at + byteSize;
        return slab.asSlice(at, byteSize);
    }

    @Override
    public MemorySegment.Scope scope() {
        return inner.scope();
    }

    @Override
    public void close() {
        inner.close();
    }
}
