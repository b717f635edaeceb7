package dev.qlora4j.runtime.ops;

import dev.qlora4j.quant.kernel.KernelPool;

/**
 * When the memory-bound row ops ({@link Gelu}, {@link LayerNorm}, {@link Elementwise}) go to the shared
 * {@link KernelPool}: when the call is large enough to pay for waking the workers (a few microseconds). Their results
 * never depend on the choice: every element or row is computed the same way on any thread. Like every pool user,
 * they must not be called from inside a pool tile (the pool runs one job at a time).
 */
final class Parallel {
    private Parallel() {
    }

    /** Elements below which an op runs on the calling thread. */
    static final int MIN_ELEMENTS = 1 << 16;

    static boolean worthIt(long elements) {
        return elements >= MIN_ELEMENTS && KernelPool.shared().threads() > 1;
    }
}
