package dev.qlora4j.quant.weight;

import java.lang.foreign.MemorySegment;

/**
 * One segment class for every weight the kernels read. A zero-copy slice of an mmap'd file is a
 * {@code MappedMemorySegmentImpl}; a weight transposed, converted or quantized at load, or copied by
 * {@code --no-mmap}, is a {@code NativeMemorySegmentImpl}. A GPT-2 F32 model has both at one kernel call site (its
 * Conv1D linears are transposed at load, its tied LM head is the mapped embedding), and when C2 compiled that site
 * with both in the profile, {@code FloatVector.fromMemorySegment} was not intrinsified: the loads ran through the
 * per-lane Java fallback ({@code ldLongOp} → {@code VarHandleSegmentAsFloats.get}, JFR) and decode ran at 46–55
 * instead of 83–95 tok/s, in some JVMs only (bench/RESULTS.md, session 8).
 *
 * <p>{@link #plain} gives a mapped slice as a plain native segment over the same pages: same address, size,
 * lifetime (scope) and read-only flag, nothing copied. Only {@link MemorySegment#isMapped()} differs, so the
 * weight records normalize their segments here and the model loader tells a zero-copy weight by its address.
 * {@code reinterpret} is a restricted method: the launcher, the tests and the benchmarks run with
 * {@code --enable-native-access=ALL-UNNAMED}; without it the JDK prints one warning.
 */
public final class KernelSegments {
    private KernelSegments() {
    }

    /** {@code s} itself, or for a mapped native segment the same memory as a plain native segment. */
    public static MemorySegment plain(MemorySegment s) {
        return s != null && s.isNative() && s.isMapped() ? s.reinterpret(s.byteSize()) : s;
    }
}
