/**
 * Optimization over one contiguous trainable buffer: {@link dev.qlora4j.lora.optim.AdamW} (torch.optim.AdamW),
 * {@link dev.qlora4j.lora.optim.LrSchedule} (HF transformers' constant / constant_with_warmup / linear / cosine),
 * {@link dev.qlora4j.lora.optim.GradClip} (torch.nn.utils.clip_grad_norm_). Parameters are described by
 * {@link dev.qlora4j.lora.optim.ParamSlice}s (name, offset, length, decay). Checked against
 * {@code lora/src/test/python/optim_reference.py}'s committed torch output.
 */
package dev.qlora4j.lora.optim;
