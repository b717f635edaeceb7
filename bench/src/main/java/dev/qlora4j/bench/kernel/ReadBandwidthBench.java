package dev.qlora4j.bench.kernel;

import dev.qlora4j.quant.memory.HugePageArena;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.concurrent.TimeUnit;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The machine's DRAM read bandwidth as the Vector API sees it: each JMH thread sums its own {@code size} MiB
 * off-heap buffer (far beyond any cache) with four accumulator chains of the preferred species, the way a GEMV
 * streams W, walking it as {@code streams} interleaved sequential streams (the paired GEMV kernels read two rows
 * at once; more streams keep more hardware prefetchers busy). This is the bound a memory-bound decode step is
 * measured against. Score {@code bytes} = GB/s (bytes/ns), summed over the threads.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class ReadBandwidthBench {

    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    @State(Scope.Thread)
    public static class Buffer {
        @Param({"512"})
        public int size; // MiB per thread
        @Param({"1", "2", "4"})
        public int streams;
        @Param({"small"})
        public String pages; // small: an ordinary shared arena (4 KiB pages where THP is madvise); huge: HugePageArena
        Arena arena;
        MemorySegment seg; // (size MiB) floats, filled so the pages are really mapped

        @Setup(Level.Trial)
        public void setup() {
            arena = pages.equals("huge") ? new HugePageArena(true) : Arena.ofShared();
            seg = arena.allocate((long) size << 20, 4096);
            for (long o = 0; o < seg.byteSize(); o += 4) seg.set(ValueLayout.JAVA_FLOAT_UNALIGNED, o, (o >> 2) % 7);
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            arena.close();
        }
    }

    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    public static class Bytes {
        public long bytes;
    }

    /** Bytes {@link #sum} reads of {@code seg}: whole steps of two vectors per part. */
    public static long bytesRead(MemorySegment seg, int streams) {
        return seg.byteSize() / streams / (2L * S.vectorByteSize()) * (2L * S.vectorByteSize()) * streams;
    }

    /** Sums {@code seg} as {@code streams} equal parts read side by side, two vectors of each part per step. */
    public static float sum(MemorySegment seg, int streams) {
        int step = S.vectorByteSize();
        long part = seg.byteSize() / streams / (2L * step) * (2L * step);
        FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
        for (long o = 0; o < part; o += 2L * step) {
            for (int s = 0; s < streams; s += 2) {
                long p = s * part + o;
                a0 = a0.add(FloatVector.fromMemorySegment(S, seg, p, LE));
                a1 = a1.add(FloatVector.fromMemorySegment(S, seg, p + step, LE));
                if (s + 1 < streams) {
                    a2 = a2.add(FloatVector.fromMemorySegment(S, seg, p + part, LE));
                    a3 = a3.add(FloatVector.fromMemorySegment(S, seg, p + part + step, LE));
                }
            }
        }
        return a0.add(a1).add(a2).add(a3).lane(0);
    }

    @Benchmark
    @Threads(1)
    public float read1Thread(Buffer b, Bytes c) {
        c.bytes += bytesRead(b.seg, b.streams);
        return sum(b.seg, b.streams);
    }

    @Benchmark
    @Threads(2)
    public float read2Threads(Buffer b, Bytes c) {
        c.bytes += bytesRead(b.seg, b.streams);
        return sum(b.seg, b.streams);
    }
}
