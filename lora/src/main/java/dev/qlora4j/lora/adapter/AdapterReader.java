package dev.qlora4j.lora.adapter;

import dev.qlora4j.lora.params.ParamBuffer;
import dev.qlora4j.quant.safetensors.FloatTensorCodec;
import dev.qlora4j.quant.safetensors.SafetensorsException;
import dev.qlora4j.quant.safetensors.SafetensorsFile;
import dev.qlora4j.quant.safetensors.TensorInfo;
import dev.qlora4j.runtime.model.DecoderModel;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Loads a PEFT LoRA adapter directory onto a model: {@code adapter_config.json} decides the targets, ranks and
 * scalings; {@code adapter_model.safetensors} must hold exactly the {@code lora_A}/{@code lora_B} tensors those
 * targets imply, F32, F16 or BF16 (converted to fp32), with shapes {@code [r, in]} and {@code [out, r]}, and the
 * {@code <module path>.weight} / {@code .bias} of each LayerNorm {@code modules_to_save} selects ({@link ModulesToSave}).
 * Any mismatch is an {@link AdapterException} naming the file and the tensor; on failure the model is left as it was.
 */
public final class AdapterReader {

    private AdapterReader() {
    }

    /** Reads only the config. */
    public static LoraConfig readConfig(Path adapterDir) {
        Path cfg = adapterDir.resolve(AdapterConfigFile.NAME);
        if (!Files.isRegularFile(cfg)) throw new AdapterException(adapterDir + ": no " + AdapterConfigFile.NAME);
        return AdapterConfigFile.read(cfg);
    }

    static LoraModel load(DecoderModel model, Path dir, long seed) {
        if (!Files.isDirectory(dir)) throw new AdapterException(dir + ": adapter directory does not exist");
        LoraConfig cfg = readConfig(dir);
        Path weights = dir.resolve(AdapterWriter.WEIGHTS);
        if (!Files.isRegularFile(weights)) {
            String hint = Files.isRegularFile(dir.resolve("adapter_model.bin"))
                    ? " (found adapter_model.bin: re-save it with safe_serialization=True)" : "";
            throw new AdapterException(dir + ": no " + AdapterWriter.WEIGHTS + hint);
        }
        LoraModel m;
        try {
            m = LoraModel.build(model, cfg, seed);
        } catch (AdapterException | IllegalArgumentException e) {
            throw new AdapterException(dir.resolve(AdapterConfigFile.NAME) + ": " + e.getMessage(), e);
        }
        try (SafetensorsFile f = SafetensorsFile.open(weights)) {
            fill(m, f, weights);
            m.paramsChanged(); // the modules_to_save copies into the model
            return m;
        } catch (RuntimeException e) {
            m.detach();
            if (e instanceof SafetensorsException se) throw new AdapterException(se.getMessage(), se);
            throw e;
        }
    }

    private static void fill(LoraModel m, SafetensorsFile f, Path file) {
        ParamBuffer buf = m.params();
        List<String> missing = new ArrayList<>();
        for (ParamBuffer.Slice s : buf.slices()) {
            if (!f.contains(s.name())) {
                missing.add(s.name() + " " + s.shapeString());
                continue;
            }
            TensorInfo ti = f.info(s.name());
            if (!FloatTensorCodec.isFloat(ti.dtype())) {
                throw new AdapterException(file + ": tensor '" + s.name() + "' is " + ti.dtype()
                        + "; adapter weights must be F32, F16 or BF16");
            }
            long[] want = Arrays.stream(s.shape()).asLongStream().toArray();
            String saved = m.modulesToSave().moduleOf(s.name());
            if (!Arrays.equals(ti.shape(), want) && saved != null) {
                throw new AdapterException(file + ": tensor '" + s.name() + "' has shape " + ti.shapeString()
                        + ", expected " + Arrays.toString(want) + " (LayerNorm " + saved + " of modules_to_save)");
            }
            if (!Arrays.equals(ti.shape(), want)) {
                LoraHook h = hookOf(m, s.name());
                throw new AdapterException(file + ": tensor '" + s.name() + "' has shape " + ti.shapeString()
                        + ", expected " + Arrays.toString(want) + " (module " + h.path() + " is [out=" + h.out()
                        + ", in=" + h.in() + "], r=" + h.r() + " from adapter_config.json"
                        + (m.config().rankPattern().isEmpty() ? "" : " with rank_pattern") + ")");
            }
            buf.set(s, f.readFloats(s.name()));
        }
        if (!missing.isEmpty()) {
            throw new AdapterException(file + ": missing " + missing.size() + " tensor(s) the config's targets"
                    + (m.modulesToSave().isEmpty() ? "" : " and modules_to_save") + " imply: "
                    + String.join(", ", missing.subList(0, Math.min(6, missing.size())))
                    + (missing.size() > 6 ? ", ..." : "") + " (file holds " + f.names().size() + " tensors"
                    + (f.names().isEmpty() ? "" : ", e.g. '" + f.names().getFirst() + "'") + ")");
        }
        List<String> extra = new ArrayList<>();
        for (String n : f.names()) if (!buf.has(n)) extra.add(n);
        if (!extra.isEmpty()) {
            throw new AdapterException(file + ": " + extra.size() + " tensor(s) belong to no module the config targets: "
                    + String.join(", ", extra.subList(0, Math.min(6, extra.size()))) + (extra.size() > 6 ? ", ..." : ""));
        }
    }

    private static LoraHook hookOf(LoraModel m, String name) {
        for (LoraHook h : m.hooks()) if (h.sliceA().name().equals(name) || h.sliceB().name().equals(name)) return h;
        throw new AssertionError(name);
    }
}
