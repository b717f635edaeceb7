package dev.qlora4j.cli;

import dev.qlora4j.runtime.eval.Perplexity;
import dev.qlora4j.runtime.load.LoadedModel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/** {@code qlora eval}: mean loss and perplexity of a model over a text file (HF perplexity-guide windows). */
@Command(name = "eval", mixinStandardHelpOptions = true, usageHelpAutoWidth = true,
        description = {"Mean token loss and perplexity over a UTF-8 text file, in windows of --seq tokens moved by "
                + "--stride (Hugging Face's perplexity guide: with stride = seq the windows are disjoint and each "
                + "scores its tokens 1..seq-1; with a smaller stride only the last 'stride' tokens of each window "
                + "are scored)."})
final class EvalCommand extends Subcommand {
    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--data", required = true, paramLabel = "FILE", description = "UTF-8 text file.")
    Path data;

    @Option(names = "--adapter", paramLabel = "DIR",
            description = "Apply a PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors), e.g. from 'qlora train'.")
    Path adapter;

    @Option(names = "--seq", paramLabel = "N", description = "Window length in tokens (default: the model's context, at most 1024).")
    Integer seq;

    @Option(names = "--stride", paramLabel = "N", description = "Window step in tokens (default: --seq).")
    Integer stride;

    @Option(names = "--max-tokens", paramLabel = "N", description = "Evaluate only the first N tokens of the file.")
    Integer maxTokens;

    @Option(names = "--json", description = "Print one JSON object: loss, perplexity, tokens, windows, seq, stride.")
    boolean json;

    @Override
    int run() throws IOException {
        if (!Files.isRegularFile(data)) throw new CliError("--data " + data + ": no such file");
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().decode(java.nio.ByteBuffer.wrap(Files.readAllBytes(data))).toString();
        } catch (CharacterCodingException e) {
            throw new CliError("--data " + data + ": not valid UTF-8 text");
        }
        try (LoadedModel lm = modelOptions.load("none", json ? null : err(), true)) {
            if (adapter != null) ModelOptions.loadAdapter(lm, adapter);
            int window = seq != null ? seq : Math.min(1024, lm.model().spec().maxT());
            if (window < 2 || window > lm.model().spec().maxT()) {
                throw new CliError("--seq must be in [2, " + lm.model().spec().maxT() + "], got " + window);
            }
            int step = stride != null ? stride : window;
            if (step < 1 || step > window) throw new CliError("--stride must be in [1, --seq=" + window + "], got " + step);
            int[] ids = lm.tokenizer().encode(text);
            if (maxTokens != null) {
                if (maxTokens < 2) throw new CliError("--max-tokens must be at least 2, got " + maxTokens);
                ids = java.util.Arrays.copyOf(ids, Math.min(ids.length, maxTokens));
            }
            if (ids.length < 2) throw new CliError("--data " + data + ": fewer than 2 tokens to evaluate");
            long t0 = System.nanoTime();
            Progress bar = Progress.of(err(), "eval", "windows").quiet(2 * Progress.SECOND);
            Progress.Fields tokensPerSecond = (line, done) ->
                    line.append(String.format(Locale.ROOT, "%.0f tok/s", bar.rate(done) * window));
            Perplexity.Result r;
            try {
                r = Perplexity.evaluate(lm.model(), ids, window, step, 64,
                        json ? null : (done, total) -> bar.update(done, total, tokensPerSecond));
            } finally {
                bar.close();
            }
            double s = (System.nanoTime() - t0) / 1e9;
            if (json) {
                out().printf(Locale.ROOT, "{\"loss\":%.6f,\"perplexity\":%.4f,\"tokens\":%d,\"windows\":%d,\"seq\":%d,"
                                + "\"stride\":%d,\"seconds\":%.2f}%n", r.loss(), r.perplexity(), r.tokens(), r.windows(),
                        window, step, s);
            } else {
                out().printf(Locale.ROOT, "loss %.4f  perplexity %.3f  over %d scored tokens (%d windows, seq %d, "
                        + "stride %d) in %.1f s%n", r.loss(), r.perplexity(), r.tokens(), r.windows(), window, step, s);
            }
            out().flush();
        }
        return QloraCommand.EXIT_OK;
    }
}
