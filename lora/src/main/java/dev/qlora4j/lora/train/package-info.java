/**
 * The LoRA training loop: {@link dev.qlora4j.lora.train.Trainer} (allocation-free step: forward, chunked LM head +
 * cross-entropy, backward, clipping, AdamW; evaluation), {@link dev.qlora4j.lora.train.TrainConfig} (HF
 * TrainingArguments' knobs), {@link dev.qlora4j.lora.train.Checkpoint} (atomic, resumable
 * {@code checkpoint-<step>/} directories), {@link dev.qlora4j.lora.train.TrainingRun} (the loop with metrics,
 * evaluations, checkpoints and the final PEFT adapter) and {@link dev.qlora4j.lora.train.MetricsLog}
 * ({@code metrics.jsonl}).
 */
package dev.qlora4j.lora.train;
