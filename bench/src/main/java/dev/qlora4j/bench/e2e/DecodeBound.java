package dev.qlora4j.bench.e2e;

import dev.qlora4j.bench.kernel.ReadBandwidthBench;
import dev.qlora4j.quant.kernel.KernelPool;
import dev.qlora4j.runtime.model.DecoderModel;
import dev.qlora4j.runtime.model.DecoderSpec;
import dev.qlora4j.quant.weight.BlockwiseInt8Weight;
import dev.qlora4j.quant.weight.DenseWeight;
import dev.qlora4j.quant.weight.FourBitWeight;
import dev.qlora4j.quant.weight.RowwiseInt8Weight;
import dev.qlora4j.quant.weight.StoredWeight;
import dev.qlora4j.runtime.model.Linear;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The memory-bandwidth bound of a decode step, measured in the same process right after the decode it is compared
 * with (the shared box's DRAM bandwidth drifts by 2× over minutes, so a figure from another run is no bound):
 * the bytes one token must read — every linear weight as stored, the tied LM head, and the K/V cache at the mean
 * context of the decode — divided by the read bandwidth of the kernel pool's threads streaming a 1 GiB off-heap
 * buffer. The buffer is read as 1, 2 and 4 interleaved sequential streams per thread (the dense GEMV kernels read
 * four rows at once) and the best of the three medians is the bound: on the Zen 4 box of session 11 two streams
 * read 25 GB/s while the four-stream F32 GEMV itself read ~40, so a single stream count can put the bound below
 * what the kernel achieves. The same sums also stream the model's own weight bytes where they are mapped
 * ({@link #modelReadBandwidth}); the bound takes the faster of the two rates, since on the shared Zen 4 box the F32
 * decode has read its mapped weights at ~45 GB/s while the fresh buffer streamed at 31–36 (bench/RESULTS.md,
 * session 12).
 */
final class DecodeBound {

    private static final long BUFFER = 1L << 30;

    private DecodeBound() {
    }

    /** Bytes read per decode token at a mean context of {@code meanT} positions. */
    static long bytesPerToken(DecoderModel m, double meanT) {
        long b = m.weights().wte().storedBytes(); // the tied LM head, read for every token's logits
        for (Linear l : m.weights().linears()) b += l.weight().storedBytes();
        DecoderSpec s = m.spec();
        return b + (long) (2.0 * s.l() * s.c() * meanT * 4); // K and V, fp32, every layer
    }

    /** Read bandwidth in bytes/s of a fresh 1 GiB off-heap buffer: {@link #bestMedian} over it. */
    static double readBandwidth(KernelPool pool) {
        try (Arena arena = Arena.ofShared()) {
            MemorySegment seg = arena.allocate(BUFFER, 4096); // (BUFFER) bytes, touched so its pages exist
            for (long o = 0; o < BUFFER; o += 4096) seg.set(ValueLayout.JAVA_FLOAT_UNALIGNED, o, 1f);
            return bestMedian(List.of(seg), pool);
        }
    }

    /** Over 1, 2 and 4 streams per thread, the best median of 5 {@link #readOnce} passes (after one to warm up). */
    private static double bestMedian(List<MemorySegment> segs, KernelPool pool) {
        double best = 0;
        for (int streams : new int[] {1, 2, 4}) {
            double[] bw = new double[5];
            for (int r = -1; r < bw.length; r++) { // r = -1 warms up (and compiles)
                double b = readOnce(segs, pool, streams);
                if (r >= 0) bw[r] = b;
            }
            Arrays.sort(bw);
            best = Math.max(best, bw[bw.length / 2]);
        }
        return best;
    }

    /**
     * Read bandwidth in bytes/s over the model's own weight bytes, as mapped: the main segment of every linear weight
     * (dense data, packed 4-bit codes, int8 codes) and the LM head, each split evenly over the pool's threads and
     * summed as {@link #bestMedian} does. Nothing is allocated off-heap, and the pages are the ones the decode streams
     * (page cache for a mapped checkpoint), so this bound does not depend on where a fresh buffer's pages land.
     */
    static double modelReadBandwidth(DecoderModel m, KernelPool pool) {
        return bestMedian(weightSegments(m), pool);
    }

    /** The main segment of every linear weight and the LM head: what {@link #readOnce} streams. */
    static List<MemorySegment> weightSegments(DecoderModel m) {
        List<MemorySegment> segs = new ArrayList<>();
        segs.add(mainSegment(m.weights().wte()));
        for (Linear l : m.weights().linears()) segs.add(mainSegment(l.weight()));
        return segs;
    }

    /** One pass with 1 and one with 4 streams per thread over {@code segs}: the faster, in bytes/s. */
    static double readOnceBest(List<MemorySegment> segs, KernelPool pool) {
        return Math.max(readOnce(segs, pool, 1), readOnce(segs, pool, 4));
    }

    /** One pass over {@code segs}, each split evenly over the pool's threads, {@code streams} per thread: bytes/s. */
    static double readOnce(List<MemorySegment> segs, KernelPool pool, int streams) {
        long total = 0;
        for (MemorySegment s : segs) total += s.byteSize();
        int tiles = pool.threads();
        float[] sink = new float[tiles * 16]; // (threads, 16) one padded slot per tile
        long t0 = System.nanoTime();
        for (MemorySegment seg : segs) {
            long share = seg.byteSize() / tiles / 4096 * 4096; // whole pages per thread; the rest: the last tile
            pool.run(tiles, (tile, slot) -> {
                long from = tile * share, len = tile == tiles - 1 ? seg.byteSize() - from : share;
                sink[tile * 16] += ReadBandwidthBench.sum(seg.asSlice(from, len), streams);
            });
        }
        long t1 = System.nanoTime();
        return total / ((t1 - t0) / 1e9);
    }

    private static MemorySegment mainSegment(StoredWeight w) {
        return switch (w) {
            case DenseWeight d -> d.data();
            case FourBitWeight q -> q.packed();
            case RowwiseInt8Weight q -> q.cb();
            case BlockwiseInt8Weight q -> q.codes();
        };
    }
}
