package dev.qlora4j.quant.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API twin of {@link SoftmaxKernels}: the same float operations lane by lane (no fused multiply-add, no
 * library exp), so every element is bit-identical to the scalar reference whatever the JIT tier. The sum of a row
 * runs in float vector lanes over blocks of {@link #BLOCK_VECTORS} vectors, each block's lanes added in a fixed order
 * ({@link VectorWidth#sum}) into a double.
 */
final class PanamaSoftmax {
    static final int BLOCK_VECTORS = 64;

    private final VectorWidth vw;

    PanamaSoftmax(VectorWidth vw) {
        this.vw = vw;
    }

    float max(float[] a, int off, int n) {
        VectorSpecies<Float> s = vw.f();
        int l = s.length(), j = 0;
        float m = Float.NEGATIVE_INFINITY;
        if (n >= l) {
            FloatVector acc = FloatVector.fromArray(s, a, off);
            for (j = l; j <= n - l; j += l) acc = acc.max(FloatVector.fromArray(s, a, off + j));
            m = acc.reduceLanes(VectorOperators.MAX); // exact: max does not round
        }
        for (; j < n; j++) m = Math.max(m, a[off + j]);
        return m;
    }

    double expInPlace(float[] a, int off, int n, float shift) {
        VectorSpecies<Float> s = vw.f();
        int l = s.length(), j = 0;
        double total = 0;
        FloatVector zero = FloatVector.zero(s);
        while (j <= n - l) {
            FloatVector acc = zero;
            int end = Math.min(n - l, j + (BLOCK_VECTORS - 1) * l);
            for (; j <= end; j += l) {
                FloatVector e = FastExp.exp(FloatVector.fromArray(s, a, off + j).sub(shift));
                e.intoArray(a, off + j);
                acc = acc.add(e);
            }
            total += vw.sum(acc);
        }
        for (; j < n; j++) {
            float e = FastExp.exp(a[off + j] - shift);
            a[off + j] = e;
            total += e;
        }
        return total;
    }
}
