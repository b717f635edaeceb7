package dev.qlora4j.quant.kernel;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * The holder of every Vector API constant the Panama kernels use (Lucene's pattern), one subclass per vector
 * width: 128, 256 or 512 bits. Each subclass returns {@code static final} species, so once C2 inlines the
 * (monomorphic) accessor the species is a compile-time constant and the vector operations are intrinsified. A
 * process normally loads one subclass ({@code -Dqlora.vectorBits}, default the CPU's preferred width); tests load
 * all three in one JVM, where the kernels stay correct but may run slower.
 *
 * <p>Lane count {@code L = bits / 32}. Width-specific decoders turn stored codes into {@code L} floats in element
 * order.
 */
abstract sealed class VectorWidth permits VectorWidth.W128, VectorWidth.W256, VectorWidth.W512 {

    static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt I32_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong I64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private final VectorShuffle<Float>[] halves = rotations(); // rotate by L/2, L/4, ..., 1 (subclass species are static)
    private final VectorShuffle<Float>[] inHalves = halfRotations(); // rotate by L/4, ..., 1 within each half
    private final VectorMask<Float> upperHalf = VectorMask.fromLong(f(), ((1L << f().length() / 2) - 1) << f().length() / 2);
    // lanes L/2 .. L-1

    /**
     * Sum of the lanes in a fixed order (a tree of lanewise adds), unlike {@code reduceLanes(ADD)} whose order is
     * unspecified and differs between the interpreter and C2: the same inputs always give the same bits, so two
     * identical forward passes give identical outputs in any JIT tier.
     */
    final float sum(FloatVector v) {
        for (VectorShuffle<Float> r : halves) v = v.add(v.rearrange(r));
        return v.lane(0);
    }

    /**
     * {@link #sum} of two vectors at once: {@code out[outOff] = sum(a)}, {@code out[outOff + 1] = sum(b)}, bit for bit
     * (the same tree of adds per vector, fp addition being commutative), for about half the shuffles: after the first
     * rotate-and-add the lower half of {@code a} and the upper half of {@code b} are blended into one vector whose
     * halves are reduced side by side.
     */
    final void sum2(FloatVector a, FloatVector b, float[] out, int outOff) {
        VectorShuffle<Float> h = halves[0];
        FloatVector v = a.add(a.rearrange(h)).blend(b.add(b.rearrange(h)), upperHalf);
        for (VectorShuffle<Float> r : inHalves) v = v.add(v.rearrange(r));
        out[outOff] = v.lane(0);
        out[outOff + 1] = v.lane(f().length() / 2);
    }

    @SuppressWarnings("unchecked")
    private VectorShuffle<Float>[] halfRotations() {
        int lanes = f().length(), half = lanes / 2;
        VectorShuffle<Float>[] h = new VectorShuffle[Integer.numberOfTrailingZeros(half)];
        for (int i = 0, k = half / 2; k >= 1; i++, k /= 2) {
            int[] src = new int[lanes];
            for (int lane = 0; lane < lanes; lane++) src[lane] = lane / half * half + (lane % half + k) % half;
            h[i] = VectorShuffle.fromValues(f(), src);
        }
        return h;
    }

    @SuppressWarnings("unchecked")
    private VectorShuffle<Float>[] rotations() {
        int lanes = f().length();
        VectorShuffle<Float>[] h = new VectorShuffle[Integer.numberOfTrailingZeros(lanes)];
        for (int i = 0, k = lanes / 2; k >= 1; i++, k /= 2) h[i] = VectorShuffle.iota(f(), k, 1, true);
        return h;
    }

    /** {@code -Dqlora.vectorBits}, else the preferred float species width capped at 512. */
    static int defaultBits() {
        Integer forced = Integer.getInteger("qlora.vectorBits");
        if (forced != null) return forced;
        return Math.min(512, Math.max(128, FloatVector.SPECIES_PREFERRED.vectorBitSize()));
    }

    static VectorWidth of(int bits) {
        return switch (bits) {
            case 128 -> new W128();
            case 256 -> new W256();
            case 512 -> new W512();
            default -> throw new IllegalArgumentException("qlora.vectorBits=" + bits + ": expected 128, 256 or 512");
        };
    }

    abstract int bits();

    /** Float species, {@code L} lanes. */
    abstract VectorSpecies<Float> f();

    /** Int species, {@code L} lanes. */
    abstract VectorSpecies<Integer> i();

    /** {@code L} BF16 values at {@code byteOff} as floats. */
    abstract FloatVector bf16(MemorySegment seg, long byteOff);

    /** {@code L} signed bytes at {@code byteOff} as floats. */
    abstract FloatVector s8(MemorySegment seg, long byteOff);

    /**
     * The 4-bit codes of elements {@code 2·byteOff .. 2·byteOff + L} (high nibble first within a byte, as
     * bitsandbytes packs them), one per int lane, in element order, <em>top-aligned</em>: the code sits in bits
     * 28..31 (so its bit 3 is the lane's sign bit, a free blend mask) and the low bits are garbage.
     */
    abstract IntVector nibbles(MemorySegment seg, long byteOff);

    /**
     * 16-entry table lookup: lane {@code j} of the result is {@code table[top[j] >>> 28]} for top-aligned codes
     * from {@link #nibbles}; the table is given as its float bits in {@code 16 / L} int vectors ({@code t2},
     * {@code t3} only used at 128 bits, {@code t1} not at 512). At 256 bits: 2 single-table permutes and a blend on
     * the sign bit (7 instructions per 8 codes with the decode, against 10 for the two-table {@code selectFrom}).
     */
    abstract FloatVector lookup16(IntVector top, IntVector t0, IntVector t1, IntVector t2, IntVector t3);

    /** Part {@code p} ({@code L} lanes) of the 16-entry table as float bits. */
    final IntVector tablePart(int[] tableBits, int p) {
        int l = i().length();
        return p * l < 16 ? IntVector.fromArray(i(), tableBits, p * l) : IntVector.zero(i());
    }

    static final class W128 extends VectorWidth {
        static final VectorSpecies<Float> F = FloatVector.SPECIES_128;
        static final VectorSpecies<Integer> I = IntVector.SPECIES_128;
        static final VectorSpecies<Short> S = ShortVector.SPECIES_64;
        static final IntVector NIBBLE_SHIFTS = IntVector.fromArray(I, new int[] {24, 28, 16, 20}, 0); // to bits 28..31
        static final IntVector BYTE_SHIFTS = IntVector.fromArray(I, new int[] {24, 16, 8, 0}, 0);

        @Override int bits() { return 128; }
        @Override VectorSpecies<Float> f() { return F; }
        @Override VectorSpecies<Integer> i() { return I; }

        @Override
        FloatVector bf16(MemorySegment seg, long byteOff) {
            return ((IntVector) ShortVector.fromMemorySegment(S, seg, byteOff, LE).convertShape(VectorOperators.S2I, I, 0))
                    .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
        }


        @Override
        FloatVector s8(MemorySegment seg, long byteOff) {
            // 4 bytes, little-endian: byte j sits at bits 8j; shift it to the top, then arithmetic-shift down
            return (FloatVector) IntVector.broadcast(I, seg.get(I32_LE, byteOff)).lanewise(VectorOperators.LSHL, BYTE_SHIFTS)
                    .lanewise(VectorOperators.ASHR, 24).convert(VectorOperators.I2F, 0);
        }

        @Override
        IntVector nibbles(MemorySegment seg, long byteOff) {
            return IntVector.broadcast(I, seg.get(I16_LE, byteOff)).lanewise(VectorOperators.LSHL, NIBBLE_SHIFTS);
        }

        @Override
        FloatVector lookup16(IntVector top, IntVector t0, IntVector t1, IntVector t2, IntVector t3) {
            IntVector idx = top.lanewise(VectorOperators.LSHR, 28); // selectFrom wraps it mod 4
            VectorMask<Integer> bit2 = top.lanewise(VectorOperators.LSHL, 1).compare(VectorOperators.LT, 0);
            IntVector lo = idx.selectFrom(t0).blend(idx.selectFrom(t1), bit2);
            IntVector hi = idx.selectFrom(t2).blend(idx.selectFrom(t3), bit2);
            return lo.blend(hi, top.compare(VectorOperators.LT, 0)).reinterpretAsFloats();
        }
    }

    static final class W256 extends VectorWidth {
        static final VectorSpecies<Float> F = FloatVector.SPECIES_256;
        static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
        static final VectorSpecies<Short> S = ShortVector.SPECIES_128;
        static final VectorSpecies<Byte> B = ByteVector.SPECIES_64;
        static final IntVector NIBBLE_SHIFTS = IntVector.fromArray(I, new int[] {24, 28, 16, 20, 8, 12, 0, 4}, 0);

        @Override int bits() { return 256; }
        @Override VectorSpecies<Float> f() { return F; }
        @Override VectorSpecies<Integer> i() { return I; }

        @Override
        FloatVector bf16(MemorySegment seg, long byteOff) {
            return ((IntVector) ShortVector.fromMemorySegment(S, seg, byteOff, LE).convertShape(VectorOperators.S2I, I, 0))
                    .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
        }


        @Override
        FloatVector s8(MemorySegment seg, long byteOff) {
            return (FloatVector) ByteVector.fromMemorySegment(B, seg, byteOff, LE).convertShape(VectorOperators.B2F, F, 0);
        }

        @Override
        IntVector nibbles(MemorySegment seg, long byteOff) {
            return IntVector.broadcast(I, seg.get(I32_LE, byteOff)).lanewise(VectorOperators.LSHL, NIBBLE_SHIFTS);
        }

        @Override
        FloatVector lookup16(IntVector top, IntVector t0, IntVector t1, IntVector t2, IntVector t3) {
            IntVector idx = top.lanewise(VectorOperators.LSHR, 28); // selectFrom wraps it mod 8
            return idx.selectFrom(t0).blend(idx.selectFrom(t1), top.compare(VectorOperators.LT, 0)).reinterpretAsFloats();
        }
    }

    static final class W512 extends VectorWidth {
        static final VectorSpecies<Float> F = FloatVector.SPECIES_512;
        static final VectorSpecies<Integer> I = IntVector.SPECIES_512;
        static final VectorSpecies<Short> S = ShortVector.SPECIES_256;
        static final VectorSpecies<Byte> B = ByteVector.SPECIES_128;
        static final VectorSpecies<Long> LG = LongVector.SPECIES_512;
        static final IntVector NIBBLE_SHIFTS = IntVector.fromArray(I,
                new int[] {24, 28, 16, 20, 8, 12, 0, 4, 24, 28, 16, 20, 8, 12, 0, 4}, 0);
        // LongVector.broadcast(word).reinterpretAsInts() = [lo, hi, lo, hi, ...]: lanes 0..7 read lo, 8..15 hi
        static final VectorShuffle<Integer> HALVES = VectorShuffle.fromValues(I,
                0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);

        @Override int bits() { return 512; }
        @Override VectorSpecies<Float> f() { return F; }
        @Override VectorSpecies<Integer> i() { return I; }

        @Override
        FloatVector bf16(MemorySegment seg, long byteOff) {
            return ((IntVector) ShortVector.fromMemorySegment(S, seg, byteOff, LE).convertShape(VectorOperators.S2I, I, 0))
                    .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
        }


        @Override
        FloatVector s8(MemorySegment seg, long byteOff) {
            return (FloatVector) ByteVector.fromMemorySegment(B, seg, byteOff, LE).convertShape(VectorOperators.B2F, F, 0);
        }

        @Override
        IntVector nibbles(MemorySegment seg, long byteOff) {
            IntVector words = LongVector.broadcast(LG, seg.get(I64_LE, byteOff)).reinterpretAsInts();
            return words.rearrange(HALVES).lanewise(VectorOperators.LSHL, NIBBLE_SHIFTS);
        }

        @Override
        FloatVector lookup16(IntVector top, IntVector t0, IntVector t1, IntVector t2, IntVector t3) {
            return top.lanewise(VectorOperators.LSHR, 28).selectFrom(t0).reinterpretAsFloats();
        }
    }
}
