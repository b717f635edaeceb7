/**
 * Training data: files → tokens → (input, target) examples of length T → seeded batches.
 *
 * <ul>
 *   <li>{@link dev.qlora4j.lora.data.Dataset#load} reads plain text, JSONL ({@code text} or
 *       {@code prompt}/{@code completion} keys, or keys named in a {@link dev.qlora4j.lora.data.DataSpec}) and
 *       CSV (RFC 4180, named columns, {@link dev.qlora4j.lora.data.CsvReader}). Text mode packs documents with
 *       EOS between them into windows of T+1 tokens; prompt/completion mode makes one padded example per row with
 *       loss on the completion only ({@link dev.qlora4j.lora.data.Examples#IGNORE} = -100 elsewhere).
 *   <li>{@link dev.qlora4j.lora.data.EvalSplit} holds out a seeded fraction or count for evaluation.
 *   <li>{@link dev.qlora4j.lora.data.Batches} shuffles per epoch (order = f(seed, epoch)) and fills reusable
 *       B×T {@link dev.qlora4j.lora.data.Batch}es; {@link dev.qlora4j.lora.data.DataPosition} saves and restores
 *       the exact place.
 * </ul>
 * Errors are {@link dev.qlora4j.lora.data.DataException}s naming file, line and column.
 */
package dev.qlora4j.lora.data;
