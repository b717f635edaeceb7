package dev.qlora4j.lora.params;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * All trainable parameters in one contiguous fp32 array, carved into named slices, with a gradient array of the same
 * layout (llm.c's {@code params_memory} / {@code grads_memory}). Optimizer state (AdamW moments) can be laid out the
 * same way: one array of {@link #size()} floats indexed by the slices' offsets.
 *
 * <p>Build with {@link #builder()}: {@code add} slices in order, then {@link Builder#build()} allocates once.
 */
public final class ParamBuffer {

    /**
     * One parameter tensor: {@code params[offset, offset + length)} row-major with {@code shape}.
     *
     * @param decay whether decoupled weight decay applies (matrices yes, biases no)
     */
    public record Slice(String name, int offset, int[] shape, boolean decay) {
        public Slice {
            shape = shape.clone();
        }

        public int length() {
            int n = 1;
            for (int d : shape) n *= d;
            return n;
        }

        public int end() {
            return offset + length();
        }

        @Override
        public int[] shape() {
            return shape.clone();
        }

        public String shapeString() {
            return Arrays.toString(shape);
        }
    }

    private final float[] params; // (size)
    private final float[] grads;  // (size)
    private final List<Slice> slices;
    private final Map<String, Slice> byName;

    private ParamBuffer(List<Slice> slices, int size) {
        this.params = new float[size];
        this.grads = new float[size];
        this.slices = List.copyOf(slices);
        Map<String, Slice> m = new LinkedHashMap<>();
        for (Slice s : slices) m.put(s.name(), s);
        this.byName = Collections.unmodifiableMap(m);
    }

    public static Builder builder() {
        return new Builder();
    }

    /** The parameter values (shared, not copied). */
    public float[] params() {
        return params;
    }

    /** The gradients, same layout as {@link #params()} (shared, not copied). */
    public float[] grads() {
        return grads;
    }

    public int size() {
        return params.length;
    }

    /** Slices in layout order. */
    public List<Slice> slices() {
        return slices;
    }

    public Slice slice(String name) {
        Slice s = byName.get(name);
        if (s == null) throw new IllegalArgumentException("no parameter slice '" + name + "'");
        return s;
    }

    public boolean has(String name) {
        return byName.containsKey(name);
    }

    public void zeroGrads() {
        Arrays.fill(grads, 0f);
    }

    /** A copy of slice {@code s}'s values. */
    public float[] copyOf(Slice s) {
        return Arrays.copyOfRange(params, s.offset(), s.end());
    }

    /** Overwrites slice {@code s} with {@code values} (exactly {@code s.length()} floats). */
    public void set(Slice s, float[] values) {
        if (values.length != s.length()) {
            throw new IllegalArgumentException("slice '" + s.name() + "' " + s.shapeString() + " holds " + s.length()
                    + " values, got " + values.length);
        }
        System.arraycopy(values, 0, params, s.offset(), values.length);
    }

    /** Lays out slices back to back; {@link #build()} allocates the two arrays once. */
    public static final class Builder {
        private final List<Slice> slices = new ArrayList<>();
        private final Map<String, Slice> names = new LinkedHashMap<>();
        private long size;

        private Builder() {
        }

        public Slice add(String name, boolean decay, int... shape) {
            if (name == null || name.isEmpty()) throw new IllegalArgumentException("a parameter slice needs a name");
            if (names.containsKey(name)) throw new IllegalArgumentException("duplicate parameter slice '" + name + "'");
            long n = 1;
            for (int d : shape) {
                if (d <= 0) throw new IllegalArgumentException("slice '" + name + "': bad shape " + Arrays.toString(shape));
                n *= d;
            }
            if (size + n > Integer.MAX_VALUE - 8) {
                throw new IllegalArgumentException("trainable parameters exceed one Java array (" + (size + n) + ")");
            }
            Slice s = new Slice(name, (int) size, shape, decay);
            slices.add(s);
            names.put(name, s);
            size += n;
            return s;
        }

        public ParamBuffer build() {
            return new ParamBuffer(slices, (int) size);
        }
    }
}
