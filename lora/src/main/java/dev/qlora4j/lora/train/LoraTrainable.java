package dev.qlora4j.lora.train;

import dev.qlora4j.lora.adapter.AdapterWriter;
import dev.qlora4j.lora.adapter.LoraModel;
import dev.qlora4j.lora.params.ParamBuffer;
import dev.qlora4j.runtime.model.DecoderBackward;
import dev.qlora4j.runtime.model.DecoderModel;

import java.nio.file.Path;

/**
 * LoRA training: the adapter's A and B train, the base model (possibly quantized) stays frozen; with
 * {@code modules_to_save}, the LayerNorm copies train too (their gradients from the backward pass's LayerNorm
 * buffers, {@link dev.qlora4j.lora.adapter.ModulesToSave}).
 */
public record LoraTrainable(LoraModel lora) implements Trainable {

    public LoraTrainable {
        if (lora.merged()) throw new IllegalArgumentException("cannot train a merged adapter; unmerge it first");
        if (!lora.attached()) throw new IllegalArgumentException("cannot train a detached adapter");
    }

    @Override
    public DecoderModel model() {
        return lora.model();
    }

    @Override
    public ParamBuffer params() {
        return lora.params();
    }

    @Override
    public String kind() {
        return "lora";
    }

    @Override
    public void setTraining(boolean training) {
        lora.setTraining(training);
    }

    @Override
    public void setStep(long microStep) {
        lora.setStep(microStep);
    }

    @Override
    public void prepare(DecoderBackward backward) {
        lora.modulesToSave().prepare(backward);
    }

    @Override
    public void beginStep(DecoderBackward backward) {
        lora.modulesToSave().beginStep(backward);
    }

    @Override
    public void afterBackward(DecoderBackward backward, int[] inputs, int b, int t) {
        lora.modulesToSave().afterBackward(backward, inputs, b, t);
    }

    @Override
    public void endStep(DecoderBackward backward) {
        lora.modulesToSave().endStep(backward);
    }

    @Override
    public void paramsUpdated() {
        lora.paramsChanged();
    }

    @Override
    public void writeWeights(Path dir) {
        AdapterWriter.write(lora, dir);
    }

    @Override
    public void readWeights(Path dir) {
        Checkpoint.loadParams(lora.params(), dir.resolve(AdapterWriter.WEIGHTS));
        lora.paramsChanged();
    }
}
