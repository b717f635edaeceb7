package dev.qlora4j.lora.optim;

import dev.qlora4j.quant.safetensors.DType;
import dev.qlora4j.quant.safetensors.SafetensorsFile;
import dev.qlora4j.quant.safetensors.SafetensorsWriter;
import dev.qlora4j.quant.safetensors.TensorInfo;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

/**
 * AdamW exactly as {@code torch.optim.AdamW} (single-tensor path, amsgrad off) over one contiguous float buffer of
 * trainable params, its grad buffer, and the moments {@code m} ({@code exp_avg}) and {@code v}
 * ({@code exp_avg_sq}) this object owns. Per element, in float, in torch's order:
 *
 * <pre>
 *   step += 1
 *   p  *= 1 - lr·wd                      (decoupled decay; wd = 0 on slices with decay == false)
 *   m   = m·β1 + (1-β1)·g
 *   v   = v·β2 + (1-β2)·g·g
 *   p  += (-lr/(1-β1^step)) · m / (sqrt(v)/sqrt(1-β2^step) + eps)
 * </pre>
 * Scalars are computed in double (Python floats) and rounded to float where torch hands them to a float kernel.
 * {@link #step} allocates nothing. Elements outside every slice are left alone (frozen).
 */
public final class AdamW {

    /** β1, β2, eps and the decoupled weight decay applied to slices with {@code decay == true}. */
    public record Hyper(double beta1, double beta2, double eps, double weightDecay) {
        public Hyper {
            if (!(beta1 >= 0 && beta1 < 1)) throw new IllegalArgumentException("beta1 must be in [0, 1), got " + beta1);
            if (!(beta2 >= 0 && beta2 < 1)) throw new IllegalArgumentException("beta2 must be in [0, 1), got " + beta2);
            if (!(eps >= 0) || Double.isInfinite(eps)) throw new IllegalArgumentException("eps must be finite and >= 0, got " + eps);
            if (!(weightDecay >= 0) || Double.isInfinite(weightDecay)) throw new IllegalArgumentException("weight decay must be finite and >= 0, got " + weightDecay);
        }

        /** HF TrainingArguments' defaults: β (0.9, 0.999), eps 1e-8, weight decay 0. */
        public static Hyper hfDefaults() {
            return new Hyper(0.9, 0.999, 1e-8, 0.0);
        }

        public Hyper withWeightDecay(double wd) {
            return new Hyper(beta1, beta2, eps, wd);
        }
    }

    private static final String FORMAT = "qlora4j-adamw-v1";

    private final int size;
    private final Hyper hyper;
    private final List<ParamSlice> slices;
    private final float[] m; // (size) exp_avg
    private final float[] v; // (size) exp_avg_sq
    private long step;

    /**
     * @param size   length of the param/grad buffers this optimizer steps
     * @param slices the parameter tensors inside {@code [0, size)}: non-overlapping; each says whether it decays
     */
    public AdamW(int size, Hyper hyper, List<ParamSlice> slices) {
        if (size < 0) throw new IllegalArgumentException("size must be >= 0, got " + size);
        this.size = size;
        this.hyper = hyper;
        List<ParamSlice> sorted = new ArrayList<>(slices);
        sorted.sort(Comparator.comparingInt(ParamSlice::offset));
        int end = 0;
        for (ParamSlice s : sorted) {
            if (s.offset() < end) throw new IllegalArgumentException("param slice '" + s.name() + "' at " + s.offset() + " overlaps the one before (ends at " + end + ")");
            if (s.end() > size || s.end() < 0) throw new IllegalArgumentException("param slice '" + s.name() + "' [" + s.offset() + ", " + s.end() + ") exceeds the buffer of " + size);
            end = s.end();
        }
        this.slices = List.copyOf(sorted);
        this.m = new float[size];
        this.v = new float[size];
    }

    /** One slice covering the whole buffer, decayed. */
    public static AdamW overWhole(int size, Hyper hyper) {
        return new AdamW(size, hyper, List.of(new ParamSlice("params", 0, size, true)));
    }

    /**
     * One optimizer step with learning rate {@code lr} (from {@link LrSchedule#lr} of the 0-based step index,
     * which is {@link #stepCount()} before this call). Reads {@code grads}, updates {@code params} in place.
     */
    public void step(float[] params, float[] grads, double lr) {
        if (params.length < size || grads.length < size)
            throw new IllegalArgumentException("params (" + params.length + ") and grads (" + grads.length + ") must hold " + size + " floats");
        step++;
        double bc1 = 1 - Math.pow(hyper.beta1, step);
        double bc2 = 1 - Math.pow(hyper.beta2, step);
        float b1 = (float) hyper.beta1, oneMinusB1 = (float) (1 - hyper.beta1);
        float b2 = (float) hyper.beta2, oneMinusB2 = (float) (1 - hyper.beta2);
        float negStepSize = (float) -(lr / bc1);
        float bc2Sqrt = (float) Math.sqrt(bc2);
        float eps = (float) hyper.eps;
        float decayMul = (float) (1 - lr * hyper.weightDecay);
        for (int s = 0, n = slices.size(); s < n; s++) {
            ParamSlice slice = slices.get(s);
            boolean decay = slice.decay() && hyper.weightDecay != 0;
            for (int i = slice.offset(), e = slice.end(); i < e; i++) {
                float g = grads[i];
                float p = decay ? params[i] * decayMul : params[i];
                float mi = Math.fma(oneMinusB1, g, m[i] * b1); // torch's add_(alpha) kernel is an fmadd
                float vi = v[i] * b2 + oneMinusB2 * g * g;     // addcmul_: self + value·t1·t2
                m[i] = mi;
                v[i] = vi;
                float denom = (float) Math.sqrt(vi) / bc2Sqrt + eps;
                params[i] = p + negStepSize * mi / denom;      // addcdiv_: self + value·t1/t2
            }
        }
    }

    /** One step at the schedule's lr for this step ({@code schedule.lr(stepCount())}); returns that lr. */
    public double step(float[] params, float[] grads, LrSchedule schedule) {
        double lr = schedule.lr(step);
        step(params, grads, lr);
        return lr;
    }

    public long stepCount() {
        return step;
    }

    public int size() {
        return size;
    }

    public Hyper hyper() {
        return hyper;
    }

    public List<ParamSlice> slices() {
        return slices;
    }

    /** The first moment (live view, {@code exp_avg}). */
    public float[] expAvg() {
        return m;
    }

    /** The second moment (live view, {@code exp_avg_sq}). */
    public float[] expAvgSq() {
        return v;
    }

    /** Zeroes the moments and the step count. */
    public void reset() {
        Arrays.fill(m, 0);
        Arrays.fill(v, 0);
        step = 0;
    }

    // ---------------------------------------------------------------- state IO

    /**
     * Adds the state to a checkpoint being written: tensors {@code <prefix>exp_avg} and {@code <prefix>exp_avg_sq}
     * (F32 [size], copied now), and metadata {@code <prefix>format}, {@code <prefix>step}, {@code <prefix>slices}.
     */
    public SafetensorsWriter addTo(SafetensorsWriter w, String prefix) {
        w.add(prefix + "exp_avg", new long[] {size}, m);
        w.add(prefix + "exp_avg_sq", new long[] {size}, v);
        w.metadata(prefix + "format", FORMAT);
        w.metadata(prefix + "step", Long.toString(step));
        w.metadata(prefix + "slices", layoutString());
        w.metadata(prefix + "hyper", hyper.beta1 + "," + hyper.beta2 + "," + hyper.eps + "," + hyper.weightDecay);
        return w;
    }

    /** Writes the state alone to {@code file} (atomically, via {@link SafetensorsWriter}). */
    public void save(Path file) {
        addTo(new SafetensorsWriter(), "").write(file);
    }

    /** Reads state written by {@link #save}; the slice layout must match this optimizer's. */
    public void load(Path file) throws IOException {
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            loadFrom(f, f.metadata(), "", file.toString());
        } catch (dev.qlora4j.quant.safetensors.SafetensorsException e) {
            throw new IOException(e.getMessage(), e);
        }
    }

    /** Reads state added by {@link #addTo} with the same prefix. */
    public void loadFrom(SafetensorsFile f, Map<String, String> metadata, String prefix, String where) throws IOException {
        String format = metadata.get(prefix + "format");
        if (!FORMAT.equals(format)) throw new IOException(where + ": not AdamW state (metadata " + prefix + "format = " + format + ", expected " + FORMAT + ")");
        String layout = metadata.get(prefix + "slices");
        if (!layoutString().equals(layout))
            throw new IOException(where + ": AdamW state was saved for params [" + layout + "], this optimizer has [" + layoutString() + "]");
        long savedStep;
        try {
            savedStep = Long.parseLong(metadata.getOrDefault(prefix + "step", ""));
        } catch (NumberFormatException e) {
            throw new IOException(where + ": bad " + prefix + "step metadata '" + metadata.get(prefix + "step") + "'");
        }
        if (savedStep < 0) throw new IOException(where + ": negative step " + savedStep);
        float[] sm = readVector(f, prefix + "exp_avg", where);
        float[] sv = readVector(f, prefix + "exp_avg_sq", where);
        System.arraycopy(sm, 0, m, 0, size);
        System.arraycopy(sv, 0, v, 0, size);
        step = savedStep;
    }

    private float[] readVector(SafetensorsFile f, String name, String where) throws IOException {
        if (!f.contains(name)) throw new IOException(where + ": missing tensor " + name);
        TensorInfo info = f.info(name);
        if (info.dtype() != DType.F32 || info.shape().length != 1 || info.shape()[0] != size)
            throw new IOException(where + ": tensor " + name + " is " + info.dtype() + " " + Arrays.toString(info.shape()) + ", expected F32 [" + size + "]");
        return f.readFloats(name);
    }

    private String layoutString() {
        StringBuilder sb = new StringBuilder().append(size);
        for (ParamSlice s : slices) sb.append(';').append(s.name()).append(':').append(s.offset()).append(':').append(s.length()).append(':').append(s.decay() ? 'd' : 'n');
        return sb.toString();
    }
}
