package dev.qlora4j.lora.full;

import dev.qlora4j.lora.adapter.MergedCheckpointWriter;
import dev.qlora4j.lora.params.ParamBuffer;
import dev.qlora4j.lora.train.TrainException;
import dev.qlora4j.lora.train.Trainable;
import dev.qlora4j.quant.kernel.Kernels;
import dev.qlora4j.quant.safetensors.FloatTensorCodec;
import dev.qlora4j.quant.safetensors.SafetensorsException;
import dev.qlora4j.quant.safetensors.SafetensorsFile;
import dev.qlora4j.quant.safetensors.TensorInfo;
import dev.qlora4j.quant.weight.DenseWeight;
import dev.qlora4j.quant.weight.StoredWeight;
import dev.qlora4j.quant.weight.WeightFormat;
import dev.qlora4j.runtime.checkpoint.HfModelDir;
import dev.qlora4j.runtime.load.LoadedModel;
import dev.qlora4j.runtime.model.Architecture;
import dev.qlora4j.runtime.model.BlockWeights;
import dev.qlora4j.runtime.model.DecoderBackward;
import dev.qlora4j.runtime.model.DecoderModel;
import dev.qlora4j.runtime.model.DecoderSpec;
import dev.qlora4j.runtime.model.DecoderWeights;
import dev.qlora4j.runtime.model.LayerNormParams;
import dev.qlora4j.runtime.model.Linear;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Full-parameter training: every weight of a GPT-2 or BLOOM model trainable, unquantized, in fp32 (llm.c's
 * {@code params_memory}): one {@link ParamBuffer} whose slices carry transformers' state-dict names
 * ({@code transformer.wte.weight}, {@code transformer.h.0.attn.c_attn.weight}, ...). The model this class builds
 * reads its linear and embedding weights straight from that buffer (dense F32 views, no copies), so an optimizer
 * step changes the model in place; biases and LayerNorm parameters, which the model holds as small arrays, are
 * copied over after each step ({@link #paramsUpdated}).
 *
 * <p>Layouts: linear weights are held as the runtime uses them, {@code [out, in]}; GPT-2's Conv1D weights are
 * {@code [in, out]} in transformers, so {@link #writeWeights} / {@link #readWeights} transpose them (as
 * {@link #hfGradient} does for tests). Weight decay applies to the matrices (embeddings, linear weights), not to
 * biases and LayerNorm parameters — Hugging Face Trainer's grouping.
 *
 * <p>Gradients: every linear gets a {@link WeightGradHook} ({@code dW += dyᵀ·x}, {@code db += Σ dy}); the tied token
 * embedding collects the LM head's share ({@link #lmHeadGrad}) and the embedding lookup's
 * ({@link DecoderBackward#embeddingBackward}); LayerNorm gradients come from the backward pass's own buffers, copied
 * in at the end of the step.
 */
public final class FullModel implements Trainable {

    /** One small parameter the model holds as its own array: {@code params[offset, +len)} ↔ {@code target}. */
    private record Mirror(int offset, float[] target) {
    }

    /** One LayerNorm's γ and β slices and where the backward pass leaves their gradients. */
    private record LnGrad(int gammaOff, int betaOff, int c) {
    }

    private final DecoderModel model;
    private final ParamBuffer pb;
    private final Path sourceDir;
    private final boolean gpt2;
    private final List<Mirror> mirrors = new ArrayList<>();
    private final List<String> conv1d = new ArrayList<>(); // GPT-2 linear weight names, [in, out] in transformers
    private final int wteOff, wpeOff;      // slice offsets (wpe -1 for BLOOM)
    private final LnGrad[] ln1, ln2;       // per layer
    private final LnGrad lnF, embLn;       // embLn null for GPT-2
    private final float[] dEmbLnGamma, dEmbLnBeta; // (C) BLOOM's embedding LayerNorm grads, or null

    private FullModel(DecoderModel base, Path sourceDir) {
        this.sourceDir = sourceDir;
        DecoderWeights w = base.weights();
        DecoderSpec spec = w.spec();
        this.gpt2 = spec.arch() == Architecture.GPT2;
        int c = spec.c(), nl = spec.l();
        String p = HfModelDir.PREFIX;

        // layout: token embedding first (the LM head's dWte lands at offset 0), then as transformers orders them
        ParamBuffer.Builder b = ParamBuffer.builder();
        ParamBuffer.Slice sWte = b.add(p + (gpt2 ? "wte.weight" : "word_embeddings.weight"), true, spec.v(), c);
        ParamBuffer.Slice sWpe = w.wpe() == null ? null
                : b.add(p + "wpe.weight", true, w.wpe().rows(), w.wpe().cols());
        String embLnName = p + "word_embeddings_layernorm";
        ParamBuffer.Slice[] sEmbLn = w.embLn() == null ? null : lnSlices(b, embLnName, c);
        ParamBuffer.Slice[][] sLn1 = new ParamBuffer.Slice[nl][], sLn2 = new ParamBuffer.Slice[nl][];
        ParamBuffer.Slice[][] sW = new ParamBuffer.Slice[nl][4], sB = new ParamBuffer.Slice[nl][4];
        for (int l = 0; l < nl; l++) {
            BlockWeights bw = w.blocks()[l];
            String h = p + "h." + l + ".";
            sLn1[l] = lnSlices(b, h + (gpt2 ? "ln_1" : "input_layernorm"), c);
            Linear[] lin = linears(bw);
            for (int i = 0; i < 4; i++) {
                if (i == 2) sLn2[l] = lnSlices(b, h + (gpt2 ? "ln_2" : "post_attention_layernorm"), c);
                sW[l][i] = b.add(lin[i].path() + ".weight", true, lin[i].out(), lin[i].in());
                if (gpt2) conv1d.add(sW[l][i].name());
                sB[l][i] = lin[i].bias() == null ? null : b.add(lin[i].path() + ".bias", false, lin[i].out());
            }
        }
        ParamBuffer.Slice[] sLnF = lnSlices(b, p + "ln_f", c);
        this.pb = b.build();
        float[] params = pb.params();
        MemorySegment all = MemorySegment.ofArray(params);

        // copy (dequantize) every weight in, then build the model over views of the buffer
        copyIn(w.wte(), sWte);
        DenseWeight wte = view(all, sWte);
        DenseWeight wpe = null;
        if (sWpe != null) {
            copyIn(w.wpe(), sWpe);
            wpe = view(all, sWpe);
        }
        LayerNormParams embLnP = w.embLn() == null ? null : mirrorLn(w.embLn(), sEmbLn);
        BlockWeights[] blocks = new BlockWeights[nl];
        Kernels k = base.kernels();
        this.ln1 = new LnGrad[nl];
        this.ln2 = new LnGrad[nl];
        for (int l = 0; l < nl; l++) {
            BlockWeights bw = w.blocks()[l];
            Linear[] lin = linears(bw), out = new Linear[4];
            for (int i = 0; i < 4; i++) {
                copyIn(lin[i].weight(), sW[l][i]);
                float[] bias = null;
                if (sB[l][i] != null) {
                    System.arraycopy(lin[i].bias(), 0, params, sB[l][i].offset(), lin[i].out());
                    bias = pb.copyOf(sB[l][i]);
                    mirrors.add(new Mirror(sB[l][i].offset(), bias));
                }
                out[i] = new Linear(lin[i].path(), view(all, sW[l][i]), bias);
                out[i].addHook(new WeightGradHook(k, pb.grads(), sW[l][i].offset(),
                        sB[l][i] == null ? -1 : sB[l][i].offset(), lin[i].out(), lin[i].in()));
            }
            LayerNormParams l1 = mirrorLn(bw.ln1(), sLn1[l]), l2 = mirrorLn(bw.ln2(), sLn2[l]);
            ln1[l] = new LnGrad(sLn1[l][0].offset(), sLn1[l][1].offset(), c);
            ln2[l] = new LnGrad(sLn2[l][0].offset(), sLn2[l][1].offset(), c);
            blocks[l] = new BlockWeights(l1, out[0], out[1], l2, out[2], out[3]);
        }
        LayerNormParams lnFP = mirrorLn(w.lnF(), sLnF);
        this.lnF = new LnGrad(sLnF[0].offset(), sLnF[1].offset(), c);
        this.embLn = sEmbLn == null ? null : new LnGrad(sEmbLn[0].offset(), sEmbLn[1].offset(), c);
        this.dEmbLnGamma = sEmbLn == null ? null : new float[c];
        this.dEmbLnBeta = sEmbLn == null ? null : new float[c];
        this.wteOff = sWte.offset();
        this.wpeOff = sWpe == null ? -1 : sWpe.offset();
        this.model = new DecoderModel(new DecoderWeights(spec, wte, wpe, embLnP, blocks, lnFP), k);
    }

    /**
     * Every weight of {@code base} as trainable fp32 parameters (a quantized base is dequantized; F16/BF16 widened).
     * The base stays as it was; train, generate with and save {@link #model()}.
     */
    public static FullModel of(LoadedModel base) {
        return new FullModel(base.model(), base.dir().dir());
    }

    /** As {@link #of(LoadedModel)}; {@code sourceDir} supplies config.json and the tokenizer files when saving. */
    public static FullModel of(DecoderModel base, Path sourceDir) {
        return new FullModel(base, sourceDir);
    }

    private static Linear[] linears(BlockWeights bw) {
        return new Linear[]{bw.qkv(), bw.attnProj(), bw.fc(), bw.mlpProj()};
    }

    private static ParamBuffer.Slice[] lnSlices(ParamBuffer.Builder b, String prefix, int c) {
        return new ParamBuffer.Slice[]{b.add(prefix + ".weight", false, c), b.add(prefix + ".bias", false, c)};
    }

    private void copyIn(StoredWeight w, ParamBuffer.Slice s) {
        w.dequantize(0, s.length(), pb.params(), s.offset());
    }

    private static DenseWeight view(MemorySegment all, ParamBuffer.Slice s) {
        int[] shape = s.shape();
        return new DenseWeight(WeightFormat.F32, all.asSlice(4L * s.offset(), 4L * s.length()), shape[0], shape[1]);
    }

    /** Copies a LayerNorm's γ, β into the buffer; returns the model's own arrays, kept in sync by {@link #mirrors}. */
    private LayerNormParams mirrorLn(LayerNormParams ln, ParamBuffer.Slice[] s) {
        float[] params = pb.params();
        System.arraycopy(ln.gamma(), 0, params, s[0].offset(), s[0].length());
        System.arraycopy(ln.beta(), 0, params, s[1].offset(), s[1].length());
        float[] g = pb.copyOf(s[0]), bt = pb.copyOf(s[1]);
        mirrors.add(new Mirror(s[0].offset(), g));
        mirrors.add(new Mirror(s[1].offset(), bt));
        return new LayerNormParams(g, bt, ln.eps());
    }

    // ------------------------------------------------------------------------------------------ Trainable

    @Override
    public DecoderModel model() {
        return model;
    }

    @Override
    public ParamBuffer params() {
        return pb;
    }

    @Override
    public String kind() {
        return "full";
    }

    @Override
    public void prepare(DecoderBackward backward) {
        backward.collectLayerNormGrads();
    }

    @Override
    public void beginStep(DecoderBackward backward) {
        backward.zeroLayerNormGrads();
        if (dEmbLnGamma != null) {
            Arrays.fill(dEmbLnGamma, 0f);
            Arrays.fill(dEmbLnBeta, 0f);
        }
    }

    @Override
    public float[] lmHeadGrad() {
        return pb.grads();
    }

    @Override
    public int lmHeadGradOffset() {
        return wteOff;
    }

    @Override
    public void afterBackward(DecoderBackward backward, int[] inputs, int b, int t) {
        float[] g = pb.grads();
        backward.embeddingBackward(inputs, 0, b, t, g, wteOff, wpeOff < 0 ? null : g, Math.max(0, wpeOff),
                dEmbLnGamma, dEmbLnBeta);
    }

    @Override
    public void endStep(DecoderBackward backward) {
        float[] g = pb.grads();
        for (int l = 0; l < ln1.length; l++) {
            addLn(g, ln1[l], backward.dLn1Gamma()[l], backward.dLn1Beta()[l]);
            addLn(g, ln2[l], backward.dLn2Gamma()[l], backward.dLn2Beta()[l]);
        }
        addLn(g, lnF, backward.dLnFGamma(), backward.dLnFBeta());
        if (embLn != null) addLn(g, embLn, dEmbLnGamma, dEmbLnBeta);
    }

    private static void addLn(float[] g, LnGrad ln, float[] dGamma, float[] dBeta) {
        for (int i = 0; i < ln.c(); i++) {
            g[ln.gammaOff() + i] += dGamma[i];
            g[ln.betaOff() + i] += dBeta[i];
        }
    }

    @Override
    public void paramsUpdated() {
        float[] params = pb.params();
        for (Mirror m : mirrors) System.arraycopy(params, m.offset(), m.target(), 0, m.target().length);
    }

    /** config.json, model.safetensors (F32, transformers' names and layouts), tokenizer files. */
    @Override
    public void writeWeights(Path dir) throws IOException {
        writeWeights(dir, WeightFormat.F32);
    }

    /** As {@link #writeWeights(Path)} in F32, F16 or BF16. */
    public void writeWeights(Path dir, WeightFormat dtype) throws IOException {
        MergedCheckpointWriter.writeFiles(model.weights(), null, sourceDir, dir, dtype);
    }

    @Override
    public void readWeights(Path dir) {
        Path file = dir.resolve(HfModelDir.SAFETENSORS);
        if (!Files.isRegularFile(file)) throw new TrainException(dir + ": no " + HfModelDir.SAFETENSORS);
        float[] params = pb.params();
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            for (ParamBuffer.Slice s : pb.slices()) {
                if (!f.contains(s.name())) throw new TrainException(file + ": missing tensor '" + s.name() + "'");
                TensorInfo ti = f.info(s.name());
                int[] shape = s.shape();
                boolean transposed = conv1d.contains(s.name());
                long[] want = transposed ? new long[]{shape[1], shape[0]}
                        : Arrays.stream(shape).asLongStream().toArray();
                if (!FloatTensorCodec.isFloat(ti.dtype()) || !Arrays.equals(ti.shape(), want)) {
                    throw new TrainException(file + ": tensor '" + s.name() + "' is " + ti.dtype() + " "
                            + ti.shapeString() + ", expected a float tensor " + Arrays.toString(want));
                }
                float[] v = f.readFloats(s.name());
                if (transposed) {
                    transpose(v, shape[1], shape[0], params, s.offset()); // [in, out] → [out, in]
                } else {
                    System.arraycopy(v, 0, params, s.offset(), v.length);
                }
            }
        } catch (SafetensorsException e) {
            throw new TrainException(e.getMessage(), e);
        }
        paramsUpdated();
    }

    /** {@code src (rows, cols)} → {@code dst (cols, rows)} at dstOff. */
    private static void transpose(float[] src, int rows, int cols, float[] dst, int dstOff) {
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) dst[dstOff + c * rows + r] = src[r * cols + c];
        }
    }

    // ------------------------------------------------------------------------------------------ for tests and tools

    /** Number of trainable parameters (the tied LM head counted once, as transformers' {@code num_parameters}). */
    public long parameterCount() {
        return pb.size();
    }

    /** The gradient of parameter {@code name} in transformers' layout (Conv1D weights as {@code [in, out]}). */
    public float[] hfGradient(String name) {
        return hfLayout(name, pb.grads());
    }

    /** The value of parameter {@code name} in transformers' layout. */
    public float[] hfParam(String name) {
        return hfLayout(name, pb.params());
    }

    private float[] hfLayout(String name, float[] buf) {
        ParamBuffer.Slice s = pb.slice(name);
        float[] v = Arrays.copyOfRange(buf, s.offset(), s.end());
        if (!conv1d.contains(name)) return v;
        int[] shape = s.shape();
        float[] t = new float[v.length];
        transpose(v, shape[0], shape[1], t, 0); // [out, in] → [in, out]
        return t;
    }
}
