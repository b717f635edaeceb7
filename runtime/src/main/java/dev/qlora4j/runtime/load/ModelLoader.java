package dev.qlora4j.runtime.load;

import dev.qlora4j.quant.kernel.Kernels;
import dev.qlora4j.quant.memory.HugePageArena;
import dev.qlora4j.quant.safetensors.PrivateCopyStore;
import dev.qlora4j.quant.safetensors.TensorInfo;
import dev.qlora4j.quant.safetensors.TensorStore;
import dev.qlora4j.quant.weight.BnbLayout;
import dev.qlora4j.quant.weight.DenseConvert;
import dev.qlora4j.quant.weight.DenseTranspose;
import dev.qlora4j.quant.weight.DenseWeight;
import dev.qlora4j.quant.weight.Quantizer;
import dev.qlora4j.quant.weight.StoredWeight;
import dev.qlora4j.quant.weight.WeightFormat;
import dev.qlora4j.runtime.checkpoint.HfModelDir;
import dev.qlora4j.runtime.checkpoint.ModelDirException;
import dev.qlora4j.runtime.config.BloomConfig;
import dev.qlora4j.runtime.config.Gpt2Config;
import dev.qlora4j.runtime.config.ModelConfig;
import dev.qlora4j.runtime.model.Architecture;
import dev.qlora4j.runtime.model.BlockWeights;
import dev.qlora4j.runtime.model.DecoderModel;
import dev.qlora4j.runtime.model.DecoderSpec;
import dev.qlora4j.runtime.model.DecoderWeights;
import dev.qlora4j.runtime.model.LayerNormParams;
import dev.qlora4j.runtime.model.Linear;

import java.lang.foreign.Arena;
import java.nio.file.Path;

/**
 * Builds a {@link DecoderModel} from a Hugging Face model directory (GPT-2 or BLOOM; safetensors, sharded, or
 * pytorch_model.bin; plain or written by {@code qlora quantize}). Embeddings stay as stored (zero-copy); linear
 * weights are used as stored, quantized at load, or read pre-quantized. GPT-2's Conv1D weights ({@code [in, out]})
 * are transposed once into off-heap memory when kept dense, since the kernels take {@code [out, in]}. With
 * {@link LoadOptions#noMmap()} the weights used as stored are copied into private off-heap memory instead.
 */
public final class ModelLoader {
    private ModelLoader() {
    }

    /** Load progress: transformer blocks done, blocks in all (called once per block, on the loading thread). */
    public interface Progress {
        void update(int done, int total);
    }

    public static LoadedModel load(Path dir, LoadOptions options, Kernels kernels) {
        return load(dir, options, kernels, null);
    }

    /** @param progress told after each transformer block (the bulk of the work when quantizing at load), or null */
    public static LoadedModel load(Path dir, LoadOptions options, Kernels kernels, Progress progress) {
        HfModelDir md = HfModelDir.open(dir);
        Arena arena = HugePageArena.ofShared(); // transposed, converted, quantized and copied weights
        try {
            DecoderWeights w = switch (md.config()) {
                case Gpt2Config g -> gpt2(md, g, options, arena, progress);
                case BloomConfig b -> bloom(md, b, options, arena, progress);
            };
            return new LoadedModel(md, new DecoderModel(w, kernels), arena);
        } catch (RuntimeException e) {
            arena.close();
            md.close();
            throw e;
        }
    }

    private static DecoderWeights gpt2(HfModelDir md, Gpt2Config cfg, LoadOptions o, Arena arena, Progress progress) {
        String act = cfg.activation();
        if (!act.equals("gelu_new") && !act.equals("gelu_pytorch_tanh")) {
            throw new ModelDirException(md.dir().resolve(HfModelDir.CONFIG) + ": activation_function '" + act
                    + "' is not supported (gelu_new, gelu_pytorch_tanh)");
        }
        checkCommon(md, cfg);
        DecoderSpec spec = new DecoderSpec(Architecture.GPT2, cfg.numLayers(), cfg.hiddenSize(), cfg.numHeads(),
                cfg.vocabSize(), cfg.maxPositions(), (float) cfg.layerNormEpsilon(), false);
        float eps = spec.eps();
        BlockWeights[] blocks = new BlockWeights[spec.l()];
        for (int i = 0; i < spec.l(); i++) {
            String p = "h." + i + ".";
            blocks[i] = new BlockWeights(ln(md, p + "ln_1", eps),
                    linear(md, p + "attn.c_attn", true, o, arena), linear(md, p + "attn.c_proj", true, o, arena),
                    ln(md, p + "ln_2", eps),
                    linear(md, p + "mlp.c_fc", true, o, arena), linear(md, p + "mlp.c_proj", true, o, arena));
            if (progress != null) progress.update(i + 1, spec.l());
        }
        return new DecoderWeights(spec, embedding(md, "wte.weight", o, arena), embedding(md, "wpe.weight", o, arena),
                null, blocks, ln(md, "ln_f", eps));
    }

    private static DecoderWeights bloom(HfModelDir md, BloomConfig cfg, LoadOptions o, Arena arena, Progress progress) {
        checkCommon(md, cfg);
        DecoderSpec spec = new DecoderSpec(Architecture.BLOOM, cfg.numLayers(), cfg.hiddenSize(), cfg.numHeads(),
                cfg.vocabSize(), o.maxContext(), (float) cfg.layerNormEpsilon(),
                cfg.applyResidualConnectionPostLayernorm());
        float eps = spec.eps();
        BlockWeights[] blocks = new BlockWeights[spec.l()];
        for (int i = 0; i < spec.l(); i++) {
            String p = "h." + i + ".";
            blocks[i] = new BlockWeights(ln(md, p + "input_layernorm", eps),
                    linear(md, p + "self_attention.query_key_value", false, o, arena),
                    linear(md, p + "self_attention.dense", false, o, arena),
                    ln(md, p + "post_attention_layernorm", eps),
                    linear(md, p + "mlp.dense_h_to_4h", false, o, arena),
                    linear(md, p + "mlp.dense_4h_to_h", false, o, arena));
            if (progress != null) progress.update(i + 1, spec.l());
        }
        return new DecoderWeights(spec, embedding(md, "word_embeddings.weight", o, arena), null,
                ln(md, "word_embeddings_layernorm", eps), blocks, ln(md, "ln_f", eps));
    }

    private static void checkCommon(HfModelDir md, ModelConfig cfg) {
        String file = md.dir().resolve(HfModelDir.CONFIG).toString();
        if (cfg.intermediateSize() != 4 * cfg.hiddenSize()) {
            throw new ModelDirException(file + ": an MLP width of " + cfg.intermediateSize() + " (not 4 × "
                    + cfg.hiddenSize() + ") is not supported yet");
        }
        if (!cfg.tieWordEmbeddings() && md.has(HfModelDir.LM_HEAD)) {
            throw new ModelDirException(file + ": untied lm_head.weight is not supported yet (tie_word_embeddings)");
        }
    }

    private static LayerNormParams ln(HfModelDir md, String prefix, float eps) {
        return new LayerNormParams(md.readFloats(prefix + ".weight"), md.readFloats(prefix + ".bias"), eps);
    }

    /** An embedding table as stored (zero-copy) or converted off-heap to the requested dtype. */
    private static DenseWeight embedding(HfModelDir md, String name, LoadOptions o, Arena arena) {
        DenseWeight stored = dense(md, md.store(), name);
        DenseWeight w = o.embeddings() != null ? DenseConvert.convert(stored, o.embeddings(), arena) : stored;
        return o.noMmap() && w == stored ? dense(md, new PrivateCopyStore(md.store(), arena), name) : w;
    }

    /** An embedding table as {@code store} holds it (F32, F16 or BF16): zero-copy for the model directory's store. */
    private static DenseWeight dense(HfModelDir md, TensorStore store, String name) {
        TensorInfo ti = md.info(name);
        WeightFormat f = switch (ti.dtype()) {
            case F32 -> WeightFormat.F32;
            case F16 -> WeightFormat.F16;
            case BF16 -> WeightFormat.BF16;
            default -> throw new ModelDirException(md.weightsFile() + ": tensor '" + md.resolve(name) + "' is "
                    + ti.dtype() + "; embeddings must be F32, F16 or BF16");
        };
        if (ti.rank() != 2) {
            throw new ModelDirException(md.weightsFile() + ": tensor '" + md.resolve(name) + "' has shape "
                    + ti.shapeString() + ", expected rank 2");
        }
        return new DenseWeight(f, store.segment(md.resolve(name)), (int) ti.shape()[0], (int) ti.shape()[1]);
    }

    /** module prefix p (canonical, e.g. {@code h.0.attn.c_attn}) → Linear with weight [out, in] and fp32 bias */
    private static Linear linear(HfModelDir md, String p, boolean conv1d, LoadOptions o, Arena arena) {
        String stored = md.resolve(p + ".weight");
        String storedPrefix = stored.substring(0, stored.length() - ".weight".length());
        StoredWeight w = BnbLayout.read(md.store(), storedPrefix);
        boolean asStored = true; // still zero-copy slices of the mapped file
        if (w instanceof DenseWeight d) {
            if (conv1d) {
                d = DenseTranspose.transpose(d, arena);
                asStored = false;
            }
            w = d;
            if (o.quant() != null) {
                w = Quantizer.quantize(d, o.quant(), o.blocksize(),
                        o.doubleQuant() && (o.quant() == WeightFormat.NF4 || o.quant() == WeightFormat.FP4), arena);
                asStored = false;
            }
        }
        if (asStored && o.noMmap()) w = BnbLayout.read(new PrivateCopyStore(md.store(), arena), storedPrefix);
        float[] bias = md.has(p + ".bias") ? md.readFloats(p + ".bias") : null;
        return new Linear("transformer." + p, w, bias);
    }
}
