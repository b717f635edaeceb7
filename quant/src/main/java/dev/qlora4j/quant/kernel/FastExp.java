package dev.qlora4j.quant.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * fp32 {@code exp} as a Cephes-style polynomial (within 2e-7 relative of {@link Math#exp} on [-87, 88], clamped
 * outside): {@code z = n·ln2 + r}, {@code exp(z) = 2^n · p(r)}. The scalar {@link #exp(float)} is the reference; the
 * lane-wise {@link #exp(FloatVector)} performs the same float operations in the same order (no fused multiply-add,
 * no library exp), so both give bit-identical results whatever the JIT tier. Used by the softmax rows of the LM head
 * and by GELU.
 */
public final class FastExp {
    private FastExp() {
    }

    /**
     * The float species of the process's kernel width ({@code -Dqlora.vectorBits}, else the CPU's preferred, capped at
     * 512), for lane-wise callers outside this package (GELU): {@link #exp(FloatVector)} then sees one vector class,
     * the one the Panama kernels use, and stays intrinsified where C2 does not inline it.
     */
    public static final VectorSpecies<Float> SPECIES =
            VectorSpecies.of(float.class, VectorShape.forBitSize(VectorWidth.defaultBits()));

    static final float LOG2E = 1.44269504088896341f, MAGIC = 12582912f; // 1.5·2^23: rounds to an integer
    static final float LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f;
    static final float EXP_MIN = -87f, EXP_MAX = 88f;
    static final float P0 = 1.9875691500E-4f, P1 = 1.3981999507E-3f, P2 = 8.3334519073E-3f, P3 = 4.1665795894E-2f,
            P4 = 1.6666665459E-1f, P5 = 5.0000001201E-1f;

    /** fp32 {@code exp(z)}, z clamped to [-87, 88]. */
    public static float exp(float z) {
        float c = Math.max(EXP_MIN, Math.min(EXP_MAX, z));
        float t = c * LOG2E + MAGIC;                  // the low bits hold n + 0x400000
        float n = t - MAGIC;
        float r = c - n * LN2_HI - n * LN2_LO;
        float p = P0;
        p = p * r + P1;
        p = p * r + P2;
        p = p * r + P3;
        p = p * r + P4;
        p = p * r + P5;
        p = p * r * r + r + 1f;
        return p * Float.intBitsToFloat((Float.floatToRawIntBits(t) + 127) << 23);
    }

    /** {@link #exp(float)} lane-wise. */
    public static FloatVector exp(FloatVector z) {
        FloatVector c = z.max(EXP_MIN).min(EXP_MAX);
        FloatVector t = c.mul(LOG2E).add(MAGIC);
        FloatVector n = t.sub(MAGIC);
        FloatVector r = c.sub(n.mul(LN2_HI)).sub(n.mul(LN2_LO));
        FloatVector p = r.mul(P0).add(P1);
        p = p.mul(r).add(P2);
        p = p.mul(r).add(P3);
        p = p.mul(r).add(P4);
        p = p.mul(r).add(P5);
        p = p.mul(r).mul(r).add(r).add(1f);
        IntVector bits = ((IntVector) t.reinterpretAsInts()).add(127).lanewise(VectorOperators.LSHL, 23);
        return p.mul(bits.reinterpretAsFloats());
    }
}
