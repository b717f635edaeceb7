package dev.qlora4j.lora.train;

import dev.qlora4j.lora.params.ParamBuffer;
import dev.qlora4j.runtime.model.DecoderBackward;
import dev.qlora4j.runtime.model.DecoderModel;

import java.io.IOException;
import java.nio.file.Path;

/**
 * What a {@link Trainer} trains: a {@link DecoderModel} plus the trainable parameters in one {@link ParamBuffer}, with
 * the few places where a kind of training differs from another. {@link LoraTrainable} (a PEFT adapter, the base
 * frozen) and {@code dev.qlora4j.lora.full.FullModel} (every weight) implement it.
 *
 * <p>Per optimizer step the trainer calls: {@code params().zeroGrads()}, {@link #beginStep}, then per micro-batch
 * {@link #setStep}, the forward, the LM head loss (accumulating into {@link #lmHeadGrad()} when non-null), the
 * backward and {@link #afterBackward}; then {@link #endStep}, clipping, the optimizer step and
 * {@link #paramsUpdated}. None of these may allocate.
 */
public interface Trainable {

    /** The model the trainer runs (for a full fine-tune, the one whose weights are {@link #params()}). */
    DecoderModel model();

    /** The trainable parameters and their gradients. */
    ParamBuffer params();

    /** "lora" or "full": recorded in checkpoints, checked on resume. */
    String kind();

    /** Train mode (dropout of the trainable layers) on or off. */
    default void setTraining(boolean training) {
    }

    /** The global micro-step about to run (keys dropout masks). */
    default void setStep(long microStep) {
    }

    /** Called once by the trainer with its backward pass, before the first step. */
    default void prepare(DecoderBackward backward) {
    }

    /** After the grads were zeroed, before the first micro-batch of a step. */
    default void beginStep(DecoderBackward backward) {
    }

    /** Where the LM head's share of the (tied) token-embedding gradient goes, or null when it is frozen. */
    default float[] lmHeadGrad() {
        return null;
    }

    /** Offset of the {@code (V, C)} token-embedding gradient in {@link #lmHeadGrad()}. */
    default int lmHeadGradOffset() {
        return 0;
    }

    /** After a micro-batch's backward. @param inputs (B, T) the micro-batch's input ids */
    default void afterBackward(DecoderBackward backward, int[] inputs, int b, int t) {
    }

    /** After all micro-batches of a step, before clipping: gradients collected elsewhere go into {@code params()}. */
    default void endStep(DecoderBackward backward) {
    }

    /** After the optimizer changed {@code params()}, or after they were restored. */
    default void paramsUpdated() {
    }

    /**
     * Writes the trained weights as a usable artifact into the existing directory {@code dir}: a PEFT adapter, or a
     * Hugging Face model's files. Each file atomically.
     */
    void writeWeights(Path dir) throws IOException;

    /** Reads back into {@code params()} what {@link #writeWeights} wrote to {@code dir}, then {@link #paramsUpdated}. */
    void readWeights(Path dir);
}
