package dev.qlora4j.bench.e2e;

import dev.qlora4j.quant.safetensors.DType;
import dev.qlora4j.quant.weight.WeightFormat;
import dev.qlora4j.runtime.quantize.CheckpointQuantizer;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Writes the benchmark models under a directory (default /tmp/qlora-bench): {@code gpt2-124m-f32} and
 * {@code gpt2-124m-bf16} (random weights, GPT-2 124M shape) and their {@code qlora quantize} outputs
 * {@code gpt2-124m-nf4} (NF4 + DQ, blocksize 64) and {@code gpt2-124m-int8} (LLM.int8 row-wise).
 */
public final class PrepareModels {
    public static void main(String[] args) throws Exception {
        Path root = Path.of(args.length > 0 ? args[0] : "/tmp/qlora-bench");
        Path f32 = RandomGpt2Checkpoint.ensure(root.resolve("gpt2-124m-f32"), 12, 768, 12, 50257, 1024, DType.F32, 1);
        RandomGpt2Checkpoint.ensure(root.resolve("gpt2-124m-bf16"), 12, 768, 12, 50257, 1024, DType.BF16, 1);
        quantize(f32, root.resolve("gpt2-124m-nf4"), new CheckpointQuantizer.Options(WeightFormat.NF4, 64, true));
        quantize(f32, root.resolve("gpt2-124m-int8"), new CheckpointQuantizer.Options(WeightFormat.INT8_ROWWISE, 0, false));
        System.out.println("models ready under " + root);
    }

    private static void quantize(Path from, Path to, CheckpointQuantizer.Options o) {
        if (Files.exists(to.resolve("model.safetensors"))) return;
        CheckpointQuantizer.quantize(from, to, o, true, msg -> { });
    }
}
