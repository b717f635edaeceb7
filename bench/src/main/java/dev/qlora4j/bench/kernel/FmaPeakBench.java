package dev.qlora4j.bench.kernel;

import java.util.concurrent.TimeUnit;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;
import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The machine's fp32 FMA peak as the Vector API reaches it: 12 independent FMA chains of the preferred species
 * (enough to cover FMA latency × FMA ports), on 1 and on 2 JMH threads. Score {@code flops} is GFLOP/s (ops/ns).
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class FmaPeakBench {

    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int ITER = 1 << 18;
    static final int CHAINS = 12;

    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    public static class Flops {
        public long flops;
    }

    @State(Scope.Thread)
    public static class In {
        float m = 0.999999f, c = 1e-7f;
    }

    static float chains(float mul, float add) {
        FloatVector m = FloatVector.broadcast(S, mul), c = FloatVector.broadcast(S, add);
        FloatVector a0 = FloatVector.broadcast(S, 1f), a1 = a0.add(1f), a2 = a0.add(2f), a3 = a0.add(3f),
                a4 = a0.add(4f), a5 = a0.add(5f), a6 = a0.add(6f), a7 = a0.add(7f), a8 = a0.add(8f), a9 = a0.add(9f),
                a10 = a0.add(10f), a11 = a0.add(11f);
        for (int i = 0; i < ITER; i++) {
            a0 = a0.fma(m, c); a1 = a1.fma(m, c); a2 = a2.fma(m, c); a3 = a3.fma(m, c);
            a4 = a4.fma(m, c); a5 = a5.fma(m, c); a6 = a6.fma(m, c); a7 = a7.fma(m, c);
            a8 = a8.fma(m, c); a9 = a9.fma(m, c); a10 = a10.fma(m, c); a11 = a11.fma(m, c);
        }
        return a0.add(a1).add(a2).add(a3).add(a4).add(a5).add(a6).add(a7).add(a8).add(a9).add(a10).add(a11)
                .reduceLanes(VectorOperators.ADD);
    }

    @Benchmark
    @Threads(1)
    public float fmaPeak1Thread(In in, Flops f) {
        f.flops += (long) ITER * CHAINS * S.length() * 2;
        return chains(in.m, in.c);
    }

    @Benchmark
    @Threads(2)
    public float fmaPeak2Threads(In in, Flops f) {
        f.flops += (long) ITER * CHAINS * S.length() * 2;
        return chains(in.m, in.c);
    }
}
