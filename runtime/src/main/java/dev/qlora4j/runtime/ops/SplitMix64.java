package dev.qlora4j.runtime.ops;

/**
 * SplitMix64's finalizer: the one bit mixer behind every counter-based random stream of the project (dropout masks of
 * the base model and of LoRA, data shuffling), so masks can be recomputed instead of stored and are the same on any
 * JDK.
 */
public final class SplitMix64 {
    private SplitMix64() {
    }

    public static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
