package dev.qlora4j.runtime.ops;

import dev.qlora4j.quant.weight.DenseWeight;
import dev.qlora4j.quant.weight.WeightFormat;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.fail;

/** Helpers for finite-difference gradient checks: random tensors, heap-backed weights, error bookkeeping. */
public final class GradCheck {
    static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private GradCheck() {
    }

    /** n floats ~ N(0, scale²), exactly representable so a float64 reference sees the same inputs. */
    public static float[] randn(Random r, int n, double scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (r.nextGaussian() * scale);
        return a;
    }

    public static double[] toDouble(float[] a) {
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) d[i] = a[i];
        return d;
    }

    /** A writable F32 {@link DenseWeight} [rows, cols] on the heap. */
    public static DenseWeight dense(float[] w, int rows, int cols) {
        MemorySegment seg = MemorySegment.ofArray(new byte[w.length * 4]);
        for (int i = 0; i < w.length; i++) seg.set(F32_LE, 4L * i, w[i]);
        return new DenseWeight(WeightFormat.F32, seg, rows, cols);
    }

    /** A writable heap F32 copy of any dense weight. */
    public static DenseWeight copy(DenseWeight w) {
        float[] all = new float[Math.toIntExact(w.elementCount())];
        w.dequantize(0, all.length, all, 0);
        return dense(all, w.rows(), w.cols());
    }

    public static void set(DenseWeight w, long i, float v) {
        w.data().set(F32_LE, 4L * i, v);
    }

    /**
     * Max relative error of {@code got} against {@code want}, each error measured against
     * {@code max(|want|, floorFrac · max|want|)} so entries near zero do not dominate.
     */
    public static final class Errors {
        private final String name;
        private final double floorFrac;
        private double maxRel, maxAbsWant;
        private String worst = "";
        private int count;
        private final java.util.List<double[]> pairs = new java.util.ArrayList<>();
        private final java.util.List<String> labels = new java.util.ArrayList<>();

        public Errors(String name, double floorFrac) {
            this.name = name;
            this.floorFrac = floorFrac;
        }

        public void add(String what, double want, double got) {
            pairs.add(new double[]{want, got});
            labels.add(what);
            maxAbsWant = Math.max(maxAbsWant, Math.abs(want));
        }

        /** Computes the max relative error, prints it, and fails above {@code tol}. */
        public double check(double tol) {
            double floor = floorFrac * maxAbsWant;
            if (maxAbsWant == 0) fail(name + ": every reference gradient is zero, the check proves nothing");
            for (int i = 0; i < pairs.size(); i++) {
                double want = pairs.get(i)[0], got = pairs.get(i)[1];
                double rel = Math.abs(got - want) / Math.max(Math.abs(want), floor);
                if (!(rel <= maxRel) || Double.isNaN(rel)) {
                    maxRel = Double.isNaN(rel) ? Double.POSITIVE_INFINITY : rel;
                    worst = labels.get(i) + " want " + want + " got " + got;
                }
                count++;
            }
            System.out.printf("[gradcheck] %-55s n=%5d max|g|=%.3e maxRelErr=%.3e (%s)%n", name, count, maxAbsWant,
                    maxRel, worst);
            if (!(maxRel <= tol)) fail(name + ": max relative error " + maxRel + " > " + tol + " at " + worst);
            return maxRel;
        }
    }
}
